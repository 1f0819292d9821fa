package service

import (
	"context"
	"fmt"
	"time"

	"github.com/keyflow/keyflow/engine"
)

// A key lifecycle spends 90 days in Waits and an approval waits for a
// person: most executions of a store have nothing to do for a long time.
// Holding each of them in memory (its goroutines, its history) would cap a
// process at a few tens of thousands, so an execution that has nothing to
// do for longer than Options.UnloadAfter is dormant: its state is in the
// store (parked, with the time it wakes), and the process holds nothing of
// it. The service resumes a dormant execution from its stored history
// (engine.Machine.Resume) when its wake time comes, when one of its tokens
// is answered, or when it is stopped.

// DefaultUnloadAfter is how long, in real time, an execution may have
// nothing to do before it is unloaded, unless Options.UnloadAfter says.
const DefaultUnloadAfter = 2 * time.Second

// maxWaking bounds the executions the wake loop holds in memory at once:
// when 100,000 wake together they are resumed as earlier ones finish or
// park again, not all at once.
const maxWaking = 2000

// unloadAfter is the option, defaulted: negative keeps every execution in
// memory.
func unloadAfter(o Options) time.Duration {
	if o.UnloadAfter == 0 {
		return DefaultUnloadAfter
	}
	return o.UnloadAfter
}

// shouldUnload is the engine's Unload hook: an execution is unloaded when
// it waits only on tokens, or when its next timer is further away than
// the threshold. One whose token is being answered stays (pinned).
func (l *Local) shouldUnload(x *engine.Execution, wakeAt time.Time) bool {
	if l.unloadAfter < 0 {
		return false
	}
	l.mu.Lock()
	pinned := l.pins[x.Arn()] > 0
	l.mu.Unlock()
	if pinned {
		return false
	}
	if !wakeAt.IsZero() {
		if engine.RealDuration(l.clock, wakeAt.Sub(l.clock.Now())) <= l.unloadAfter {
			return false
		}
		l.wakeBy(wakeAt)
	}
	return true
}

// Loaded is how many executions the process holds in memory; the dormant
// ones are not counted.
func (l *Local) Loaded() int {
	l.mu.Lock()
	defer l.mu.Unlock()
	return len(l.live)
}

// pin keeps an execution in memory while a caller works on it.
func (l *Local) pin(arn string) (unpin func()) {
	l.mu.Lock()
	l.pins[arn]++
	l.mu.Unlock()
	return func() {
		l.mu.Lock()
		if l.pins[arn]--; l.pins[arn] <= 0 {
			delete(l.pins, arn)
		}
		l.mu.Unlock()
	}
}

// ensureLive returns the execution arn running in this process, resuming
// it from the store when it is dormant, once its replay is over (its
// tokens can be answered). It is nil when the execution is no longer
// running.
func (l *Local) ensureLive(ctx context.Context, arn string) (*engine.Execution, error) {
	x, err := l.takeBack(ctx, arn)
	if err != nil || x == nil {
		return nil, err
	}
	select {
	case <-x.Settled():
		return x, nil
	case <-ctx.Done():
		return nil, ctx.Err()
	}
}

// takeBack returns the execution arn as this process runs it, resumed
// from the store if it is dormant; nil when it is no longer running.
func (l *Local) takeBack(ctx context.Context, arn string) (*engine.Execution, error) {
	l.resumeMu.Lock()
	defer l.resumeMu.Unlock()
	if x := l.liveExecution(arn); x != nil {
		if !x.Detached() {
			return x, nil
		}
		// It is letting go: wait until it has, then take it back.
		select {
		case <-x.Done():
		case <-ctx.Done():
			return nil, ctx.Err()
		}
		l.forget(x)
	}
	r, err := l.store.execution(ctx, arn)
	if err != nil {
		return nil, err
	}
	if r.status != engine.StatusRunning {
		return nil, nil
	}
	return l.resumeRow(ctx, r)
}

// forget drops x from the live set once it has let go.
func (l *Local) forget(x *engine.Execution) {
	l.mu.Lock()
	if l.live[x.Arn()] == x {
		delete(l.live, x.Arn())
		l.liveCond.Broadcast()
	}
	l.mu.Unlock()
}

// wakeBy makes sure the wake loop looks again at or before at.
func (l *Local) wakeBy(at time.Time) {
	l.mu.Lock()
	kick := l.nextWake.IsZero() || at.Before(l.nextWake)
	if kick {
		l.nextWake = at
	}
	l.mu.Unlock()
	if kick {
		select {
		case l.kick <- struct{}{}:
		default:
		}
	}
}

// wakeLoop resumes dormant executions when they are due. It sleeps on one
// timer, armed for the earliest parked wake time in the store; an
// execution unloaded with an earlier one moves it (wakeBy).
func (l *Local) wakeLoop() {
	defer close(l.wakeDone)
	for {
		next, err := l.resumeDue(l.wakeCtx)
		if err != nil && l.wakeCtx.Err() == nil {
			l.log.Error("resuming due executions failed; trying again in a second", "error", err.Error())
			next = l.clock.Now().Add(time.Second)
		}
		// An earlier wake time that came meanwhile left a kick: the loop
		// comes round at once and finds it in the store.
		l.mu.Lock()
		l.nextWake = next
		l.mu.Unlock()
		fired := make(chan struct{}, 1)
		stop := func() bool { return false }
		if !next.IsZero() {
			stop = engine.AfterFunc(l.clock, next.Sub(l.clock.Now()), func() { fired <- struct{}{} })
		}
		select {
		case <-l.wakeCtx.Done():
			stop()
			return
		case <-fired:
		case <-l.kick:
			stop()
		}
	}
}

// resumeDue resumes the parked executions whose wake time has come and
// that this process does not hold, and returns the next wake time after
// now (zero when none).
func (l *Local) resumeDue(ctx context.Context) (time.Time, error) {
	now := ms(l.clock.Now())
	lastMS, lastArn := int64(-1<<62), ""
	for {
		rows, err := l.store.db.QueryContext(ctx, `SELECT `+execCols+`, wake_ms FROM sfn_executions
			WHERE status = 'RUNNING' AND parked = 1 AND wake_ms <= ? AND (wake_ms > ? OR (wake_ms = ? AND arn > ?))
			ORDER BY wake_ms, arn LIMIT 500`, now, lastMS, lastMS, lastArn)
		if err != nil {
			return time.Time{}, err
		}
		var due []*execRow
		for rows.Next() {
			var wake int64
			r, err := scanExecWith(rows, &wake)
			if err != nil {
				rows.Close()
				return time.Time{}, err
			}
			due = append(due, r)
			lastMS, lastArn = wake, r.arn
		}
		rows.Close()
		if err := rows.Err(); err != nil {
			return time.Time{}, err
		}
		for _, r := range due {
			if err := l.waitForRoom(ctx); err != nil {
				return time.Time{}, err
			}
			if _, err := l.takeBack(ctx, r.arn); err != nil {
				l.log.Error("resume failed", "arn", r.arn, "error", err.Error())
			}
		}
		if len(due) < 500 {
			break
		}
	}
	var next *int64
	err := l.store.db.QueryRowContext(ctx, `SELECT MIN(wake_ms) FROM sfn_executions WHERE status = 'RUNNING' AND parked = 1 AND wake_ms > ?`, now).Scan(&next)
	if err != nil || next == nil {
		return time.Time{}, err
	}
	return fromMS(*next), nil
}

// waitForRoom holds the wake loop while it has too many executions in
// memory.
func (l *Local) waitForRoom(ctx context.Context) error {
	l.mu.Lock()
	defer l.mu.Unlock()
	for len(l.live) >= maxWaking && ctx.Err() == nil {
		l.liveCond.Wait()
	}
	return ctx.Err()
}

// resumeRow runs a stored execution again in this process; the caller
// holds resumeMu, so that one execution never runs twice.
func (l *Local) resumeRow(ctx context.Context, r *execRow) (*engine.Execution, error) {
	m, err := l.machineFor(ctx, r.smArn, r.revision)
	if err != nil {
		return nil, err
	}
	evs, err := l.store.events(ctx, r.arn)
	if err != nil {
		return nil, err
	}
	if len(evs) == 0 {
		// It died before its first commit: it starts over, as a start
		// that never answered would.
		err := l.store.write(ctx, func(w *wtx) error {
			return w.exec(`DELETE FROM sfn_executions WHERE arn = ?`, r.arn)
		})
		if err != nil {
			return nil, err
		}
		return l.startLive(m, r.name, []byte(r.input))
	}
	x, err := m.Resume(l.ctx, r.name, []byte(r.input), r.start, evs)
	if err != nil {
		return nil, fmt.Errorf("service: resume of %s: %w", r.arn, err)
	}
	return x, nil
}
