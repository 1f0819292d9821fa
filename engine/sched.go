package engine

import (
	"container/heap"
	"context"
	"sync"
	"time"
)

// runner is how an execution's threads (the top level, Parallel branches,
// Map iterations) block and run side by side. There are two: sim, a
// discrete-event scheduler on virtual time, and realRunner, goroutines on a
// real clock. See Clock for why the virtual one runs threads one at a time.
type runner interface {
	now() time.Time
	// sleep blocks the thread for d (virtual or real), or until ctx is done.
	sleep(ctx context.Context, f *fiber, d time.Duration) error
	// fork runs fn(0..n-1) as n threads and returns when all have returned.
	fork(ctx context.Context, f *fiber, n int, fn func(f *fiber, i int))
	// park blocks until the token wait w is answered, times out, or ctx ends.
	park(ctx context.Context, f *fiber, w *tokenWait)
	// answer resolves w from any goroutine; false when w was already resolved.
	answer(w *tokenWait, fill func()) bool
	// heartbeat pushes w's heartbeat deadline forward; false when the
	// execution no longer holds w (it was unloaded).
	heartbeat(w *tokenWait) bool
	// stamp is the time of the event about to get id: ts when the caller
	// fixed it, else now; a durable execution takes it from its stored
	// history while it replays, and from the wall clock after.
	stamp(ts time.Time) time.Time
	// wakeCanceled wakes sleeping threads whose context has ended.
	wakeCanceled()
	// locked runs fn under the lock that guards w.
	locked(w *tokenWait, fn func())
}

// fiber is one thread of an execution as the virtual scheduler sees it.
// The real runner does not need one and passes nil.
type fiber struct {
	ctx     context.Context
	wake    chan struct{}
	timer   *timer
	blocked bool
	joining bool // blocked in fork: only its children may wake it
	queued  bool
	pending int // children not yet returned, while joining
	parent  *fiber
	// group marks a placeholder in the run queue: the items of a fork
	// not started yet. See sim.fork.
	group *forkGroup
}

// forkGroup is the part of a fork (sim.fork) not started yet: items
// next..n-1 of fn. Its placeholder fiber holds their place in the run
// queue, so that they start in the same order as n fibers queued at once
// would, while a fiber that finishes an item without blocking runs the
// next one itself: a Map of 10,000 iterations that never block runs on one
// goroutine instead of 10,000.
type forkGroup struct {
	ctx     context.Context
	fn      func(f *fiber, i int)
	parent  *fiber
	next, n int
	ph      *fiber // the placeholder
}

type timer struct {
	at   time.Time
	seq  uint64
	f    *fiber
	fn   func() // instead of waking a fiber
	dead bool
	idx  int
}

type timerHeap []*timer

func (h timerHeap) Len() int { return len(h) }
func (h timerHeap) Less(i, j int) bool {
	if !h[i].at.Equal(h[j].at) {
		return h[i].at.Before(h[j].at)
	}
	return h[i].seq < h[j].seq
}
func (h timerHeap) Swap(i, j int)   { h[i], h[j] = h[j], h[i]; h[i].idx = i; h[j].idx = j }
func (h *timerHeap) Push(x any)     { t := x.(*timer); t.idx = len(*h); *h = append(*h, t) }
func (h *timerHeap) Pop() any       { old := *h; t := old[len(old)-1]; *h = old[:len(old)-1]; return t }
func (h *timerHeap) popMin() *timer { return heap.Pop(h).(*timer) }

// sim is the virtual-time scheduler of one execution. Exactly one fiber
// runs at a time (it holds the baton); a fiber that blocks hands the baton
// to the next runnable fiber in FIFO order, or, when none is runnable, to
// the fiber of the earliest timer after moving now to that timer. The order
// of everything is therefore fixed by the definition and the task results,
// never by the Go scheduler.
type sim struct {
	mu     sync.Mutex
	cur    time.Time
	runq   []*fiber
	timers timerHeap
	seq    uint64
	live   int  // fibers started and not returned
	idle   bool // no fiber holds the baton
	all    map[*fiber]struct{}

	// A durable execution (see durable.go) runs on this scheduler even on
	// a real clock, because its order of events must be the same when it
	// is replayed after a crash. Then wall is the clock: an event is
	// stamped with its time, and a timer fires only once wall reaches it
	// (pace arms the wake-up). While the execution replays (replaying),
	// events take their stored times and timers fire at once, as on
	// virtual time. idleHook runs, without s.mu, whenever no fiber can
	// run: that is when a durable execution commits, with the earliest
	// timer still to fire (zero if none).
	wall      Clock
	replaying func() (time.Time, bool) // the next stored event's time, while there is one
	pace      *paceTimer
	idleHook  func(wakeAt time.Time)
	// unloaded is set when the execution lets go while idle (see
	// Execution.unload): answers and heartbeats no longer reach it.
	unloaded bool
}

// paceTimer is the one real timer that wakes an idle durable scheduler.
type paceTimer struct {
	at   time.Time
	stop func() bool
}

func newSim(start time.Time) *sim {
	return &sim{cur: start, all: map[*fiber]struct{}{}}
}

func (s *sim) now() time.Time {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.cur
}

// start runs fn as the root fiber and returns at once.
func (s *sim) start(ctx context.Context, fn func(f *fiber)) {
	f := &fiber{ctx: ctx, wake: make(chan struct{}, 1)}
	s.mu.Lock()
	s.live++
	s.all[f] = struct{}{}
	s.mu.Unlock()
	go func() {
		fn(f)
		s.exit(f)
	}()
}

func (s *sim) addTimerLocked(at time.Time, f *fiber, fn func()) *timer {
	s.seq++
	t := &timer{at: at, seq: s.seq, f: f, fn: fn}
	heap.Push(&s.timers, t)
	return t
}

// dispatchLocked hands the baton on and unlocks s.mu.
func (s *sim) dispatchLocked() {
	for {
		if len(s.runq) > 0 {
			f := s.runq[0]
			if g := f.group; g != nil {
				i := s.takeLocked(g)
				c := &fiber{ctx: g.ctx, wake: make(chan struct{}, 1), parent: g.parent}
				s.all[c] = struct{}{}
				s.live++
				s.mu.Unlock()
				go s.runGroup(c, g, i)
				return
			}
			s.runq[0] = nil
			s.runq = s.runq[1:]
			f.queued = false
			f.blocked = false
			s.mu.Unlock()
			f.wake <- struct{}{}
			return
		}
		if s.live == 0 || len(s.timers) == 0 {
			s.goIdleLocked(time.Time{})
			return
		}
		if s.timers[0].dead {
			s.timers.popMin()
			continue
		}
		if s.wall != nil && !s.replayingLocked() {
			if at := s.timers[0].at; at.After(s.wall.Now()) {
				s.armPaceLocked(at)
				s.goIdleLocked(at)
				return
			}
		}
		t := s.timers.popMin()
		if t.at.After(s.cur) {
			s.cur = t.at
		}
		if t.fn != nil {
			t.fn()
			continue
		}
		t.f.timer = nil
		s.wakeLocked(t.f)
	}
}

// goIdleLocked marks the scheduler idle, unlocks s.mu and runs the idle
// hook.
func (s *sim) goIdleLocked(wakeAt time.Time) {
	s.idle = true
	hook := s.idleHook
	s.mu.Unlock()
	if hook != nil {
		hook(wakeAt)
	}
}

func (s *sim) replayingLocked() bool {
	if s.replaying == nil {
		return false
	}
	_, ok := s.replaying()
	return ok
}

// armPaceLocked makes sure a real timer wakes the scheduler at at.
func (s *sim) armPaceLocked(at time.Time) {
	if p := s.pace; p != nil {
		if p.at.Equal(at) {
			return
		}
		p.stop()
	}
	p := &paceTimer{at: at}
	s.pace = p
	p.stop = AfterFunc(s.wall, at.Sub(s.wall.Now()), func() {
		s.mu.Lock()
		if s.pace != p {
			s.mu.Unlock()
			return
		}
		s.pace = nil
		if !s.idle {
			s.mu.Unlock()
			return
		}
		s.idle = false
		s.dispatchLocked()
	})
}

// stopPace drops the real timer, when the execution ends or is unloaded.
func (s *sim) stopPace() {
	s.mu.Lock()
	if p := s.pace; p != nil {
		p.stop()
		s.pace = nil
	}
	s.mu.Unlock()
}

func (s *sim) stamp(ts time.Time) time.Time {
	if s.replaying == nil && s.wall == nil && !ts.IsZero() {
		return ts // virtual time, set by the caller: the hot path
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.replaying != nil {
		if at, ok := s.replaying(); ok {
			if at.After(s.cur) {
				s.cur = at
			}
			return at
		}
	}
	if s.wall != nil {
		// Milliseconds, as AWS records them and the store keeps them, so
		// that a replay computes the same deadlines from the same times.
		if w := s.wall.Now().UTC().Truncate(time.Millisecond); w.After(s.cur) {
			s.cur = w
		}
		return s.cur
	}
	if ts.IsZero() {
		return s.cur
	}
	return ts
}

// answerAt resolves w at a given time: a replayed execution gets the answer
// its token had, at the moment it came.
func (s *sim) answerAt(w *tokenWait, at time.Time, fill func()) {
	s.mu.Lock()
	s.addTimerLocked(at, nil, func() {
		if w.resolved {
			return
		}
		fill()
		w.resolved = true
		if w.f != nil && w.f.blocked && !w.f.joining {
			s.wakeLocked(w.f)
		}
	})
	s.mu.Unlock()
}

// wakeLocked makes a blocked fiber runnable.
func (s *sim) wakeLocked(f *fiber) {
	if !f.blocked || f.queued {
		return
	}
	if f.timer != nil {
		f.timer.dead = true
		f.timer = nil
	}
	f.queued = true
	s.runq = append(s.runq, f)
	if s.idle {
		// Nobody holds the baton (everyone waits for the outside world):
		// the caller is an outside goroutine, so start the fiber now.
		s.idle = false
		s.dispatchLocked()
		s.mu.Lock()
	}
}

// block gives up the baton until something wakes f. Called with s.mu held;
// returns with it released.
func (s *sim) block(f *fiber) {
	f.blocked = true
	s.dispatchLocked()
	<-f.wake
}

func (s *sim) exit(f *fiber) {
	s.mu.Lock()
	s.exitLocked(f)
}

// exitLocked ends fiber f, hands the baton on and unlocks s.mu.
func (s *sim) exitLocked(f *fiber) {
	s.live--
	delete(s.all, f)
	if p := f.parent; p != nil {
		p.pending--
		if p.pending == 0 {
			p.joining = false
			s.wakeLocked(p)
		}
	}
	s.dispatchLocked()
}

func (s *sim) sleep(ctx context.Context, f *fiber, d time.Duration) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	if d <= 0 {
		return nil
	}
	s.mu.Lock()
	f.timer = s.addTimerLocked(s.cur.Add(d), f, nil)
	s.block(f)
	return ctx.Err()
}

func (s *sim) fork(ctx context.Context, f *fiber, n int, fn func(f *fiber, i int)) {
	if n == 0 {
		return
	}
	s.mu.Lock()
	f.pending = n
	f.joining = true
	g := &forkGroup{ctx: ctx, fn: fn, parent: f, n: n}
	g.ph = &fiber{group: g}
	s.runq = append(s.runq, g.ph)
	s.block(f)
}

// takeLocked starts the next item of g, whose placeholder is at the head
// of the run queue, and drops the placeholder after the last item.
func (s *sim) takeLocked(g *forkGroup) int {
	i := g.next
	g.next++
	if g.next == g.n {
		s.runq[0] = nil
		s.runq = s.runq[1:]
	}
	return i
}

// runGroup runs item i of g on fiber c, then, as long as g's remaining
// items are next in the run queue, the next one on the same fiber.
func (s *sim) runGroup(c *fiber, g *forkGroup, i int) {
	for {
		g.fn(c, i)
		s.mu.Lock()
		if len(s.runq) == 0 || s.runq[0] != g.ph {
			s.exitLocked(c)
			return
		}
		g.parent.pending-- // item i; item next is still pending
		i = s.takeLocked(g)
		s.mu.Unlock()
	}
}

func (s *sim) park(ctx context.Context, f *fiber, w *tokenWait) {
	s.mu.Lock()
	for !w.resolved && ctx.Err() == nil {
		at, hb := w.deadlineLocked()
		if !s.cur.Before(at) {
			w.expire(hb)
			break
		}
		f.timer = s.addTimerLocked(at, f, nil)
		s.block(f)
		s.mu.Lock()
	}
	s.mu.Unlock()
}

func (s *sim) answer(w *tokenWait, fill func()) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	if w.resolved || s.unloaded {
		return false
	}
	fill()
	w.resolved = true
	if w.f != nil && w.f.blocked && !w.f.joining {
		s.wakeLocked(w.f)
	}
	return true
}

func (s *sim) heartbeat(w *tokenWait) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.unloaded {
		return false
	}
	if w.heartbeat > 0 {
		w.lastBeat = s.cur
		if s.wall != nil {
			// An idle durable execution's cur is the time of its last
			// event; the beat is now.
			w.lastBeat = s.wall.Now().UTC().Truncate(time.Millisecond)
		}
		// A parked fiber recomputes its deadline when it wakes; wake it so
		// that its timer moves.
		if w.f != nil && w.f.blocked && !w.f.joining {
			s.wakeLocked(w.f)
		}
	}
	return true
}

func (s *sim) wakeCanceled() {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.wakeCanceledLocked()
}

func (s *sim) wakeCanceledLocked() {
	for f := range s.all {
		if f.blocked && !f.joining && !f.queued && f.ctx.Err() != nil {
			s.wakeLocked(f)
		}
	}
}

// deadline registers fn to run, with s.mu held, when virtual time reaches
// at while the execution still runs (the execution's TimeoutSeconds).
func (s *sim) deadline(at time.Time, fn func()) {
	s.mu.Lock()
	s.addTimerLocked(at, nil, fn)
	s.mu.Unlock()
}

// realRunner runs threads as goroutines on a real clock.
type realRunner struct{ clock Clock }

func (r realRunner) now() time.Time { return r.clock.Now().UTC() }

func (r realRunner) sleep(ctx context.Context, _ *fiber, d time.Duration) error {
	return r.clock.Sleep(ctx, d)
}

func (r realRunner) fork(ctx context.Context, _ *fiber, n int, fn func(f *fiber, i int)) {
	var wg sync.WaitGroup
	wg.Add(n)
	for i := 0; i < n; i++ {
		go func(i int) {
			defer wg.Done()
			fn(nil, i)
		}(i)
	}
	wg.Wait()
}

func (r realRunner) park(ctx context.Context, _ *fiber, w *tokenWait) {
	for {
		w.mu.Lock()
		if w.resolved {
			w.mu.Unlock()
			return
		}
		at, hb := w.deadlineLocked()
		d := at.Sub(r.now())
		if d <= 0 {
			w.expire(hb)
			w.mu.Unlock()
			return
		}
		ch := w.signal
		w.mu.Unlock()
		t := time.NewTimer(d)
		select {
		case <-ch:
		case <-t.C:
		case <-ctx.Done():
			t.Stop()
			return
		}
		t.Stop()
	}
}

func (r realRunner) answer(w *tokenWait, fill func()) bool {
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.resolved {
		return false
	}
	fill()
	w.resolved = true
	close(w.signal)
	w.signal = make(chan struct{})
	return true
}

func (r realRunner) heartbeat(w *tokenWait) bool {
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.heartbeat > 0 {
		w.lastBeat = r.now()
		close(w.signal)
		w.signal = make(chan struct{})
	}
	return true
}

func (r realRunner) wakeCanceled() {}

func (r realRunner) stamp(ts time.Time) time.Time {
	if ts.IsZero() {
		return r.now()
	}
	return ts
}

func (s *sim) locked(_ *tokenWait, fn func()) {
	s.mu.Lock()
	defer s.mu.Unlock()
	fn()
}

func (r realRunner) locked(w *tokenWait, fn func()) {
	w.mu.Lock()
	defer w.mu.Unlock()
	fn()
}
