package engine

import (
	"context"
	"sync"
	"time"
)

// Clock is the time source of an engine. Every execution reads its start
// time from it; what happens after that depends on the kind of clock:
//
//   - The virtual clock (NewVirtualClock) never sleeps. Each execution runs
//     a discrete-event scheduler of its own: states, branches and Map
//     iterations run one at a time, and virtual time moves forward only when
//     every one of them is blocked (in a Wait, a retry back-off, a task token
//     wait). Time then jumps to the earliest timer. This makes a run fully
//     deterministic given the definition, the input, the start time and the
//     task results, and it makes event timestamps advance exactly as on AWS
//     (a 90-day Wait moves Now by 90 days), however many branches run.
//   - Any other clock (NewRealClock, or one of yours) is real: branches run
//     on their own goroutines, and waits call Sleep.
type Clock interface {
	Now() time.Time
	// Sleep blocks for d, or until ctx is done (then it returns ctx.Err()).
	Sleep(ctx context.Context, d time.Duration) error
}

// VirtualClock is a Clock whose time moves only when told to. The engine
// recognises it and runs executions on virtual time (see Clock).
type VirtualClock struct {
	mu  sync.Mutex
	now time.Time
}

// NewVirtualClock returns a virtual clock that reads start until advanced.
func NewVirtualClock(start time.Time) *VirtualClock {
	return &VirtualClock{now: start.UTC()}
}

// Now returns the clock's current time.
func (c *VirtualClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.now
}

// Advance moves the clock forward by d; executions started later start then.
func (c *VirtualClock) Advance(d time.Duration) {
	c.mu.Lock()
	c.now = c.now.Add(d)
	c.mu.Unlock()
}

// Sleep advances the clock by d and returns at once.
func (c *VirtualClock) Sleep(ctx context.Context, d time.Duration) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	c.Advance(d)
	return nil
}

type realClock struct{}

// NewRealClock returns the wall clock: waits really wait.
func NewRealClock() Clock { return realClock{} }

func (realClock) Now() time.Time { return time.Now().UTC() }

func (realClock) Sleep(ctx context.Context, d time.Duration) error {
	if d <= 0 {
		return ctx.Err()
	}
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

// AfterFunc runs fn once d has passed on c, and returns what cancels it. A
// clock may say how (a faster clock for demos); else d is real time. A
// virtual clock never gets there by itself: do not use it with one.
func AfterFunc(c Clock, d time.Duration, fn func()) func() bool {
	if a, ok := c.(interface {
		AfterFunc(time.Duration, func()) func() bool
	}); ok {
		return a.AfterFunc(d, fn)
	}
	return time.AfterFunc(max(d, 0), fn).Stop
}

// ScaledClock is a real clock that runs faster by Scale, from a start: a
// 90-day Wait ends in 90 days/Scale of real time, while the times an
// execution records advance by the full 90 days. For demos of
// `keyflow serve --time-scale N`.
type ScaledClock struct {
	scale float64
	base  time.Time // real time at the start
	at    time.Time // clock time at the start
}

// NewScaledClock returns a clock that starts at the real now and runs
// scale times as fast; scale must be positive.
func NewScaledClock(scale float64) *ScaledClock {
	now := time.Now().UTC()
	return &ScaledClock{scale: scale, base: now, at: now}
}

// Now returns the scaled time.
func (c *ScaledClock) Now() time.Time {
	return c.at.Add(time.Duration(float64(time.Since(c.base)) * c.scale)).UTC()
}

// Sleep blocks for d of clock time.
func (c *ScaledClock) Sleep(ctx context.Context, d time.Duration) error {
	return NewRealClock().Sleep(ctx, c.real(d))
}

// AfterFunc runs fn after d of clock time.
func (c *ScaledClock) AfterFunc(d time.Duration, fn func()) func() bool {
	return time.AfterFunc(c.real(d), fn).Stop
}

// RealDuration is how much real time d of clock time takes.
func RealDuration(c Clock, d time.Duration) time.Duration {
	if sc, ok := c.(*ScaledClock); ok {
		return sc.real(d)
	}
	return d
}

func (c *ScaledClock) real(d time.Duration) time.Duration {
	return max(time.Duration(float64(d)/c.scale), 0)
}
