package engine

import (
	"errors"
	"fmt"
	"math"
	"time"

	"github.com/aws/aws-sdk-go-v2/service/sfn/types"
	"github.com/keyflow/keyflow/states"
	"github.com/keyflow/keyflow/states/failure"
	"github.com/keyflow/keyflow/states/payload"
)

// guard is the compiled Retry and Catch of a Task, Parallel or Map state.
type guard struct {
	retriers []retrier
	catchers []catcher
}

type retrier struct {
	errs     []string
	interval float64 // seconds
	max      int64
	backoff  float64
	maxDelay float64 // seconds, 0 = none
	jitter   bool
}

type catcher struct {
	errs     []string
	nextName string
	next     *node
	rp       resultPath
	assign   *payload.Template
}

func compileGuard(ptr string, rs []states.Retrier, cs []states.Catcher) (*guard, error) {
	g := &guard{}
	for _, r := range rs {
		cr := retrier{errs: r.ErrorEquals, interval: 1, max: 3, backoff: 2}
		if r.IntervalSeconds != nil {
			cr.interval = float64(*r.IntervalSeconds)
		}
		if r.MaxAttempts != nil {
			cr.max = *r.MaxAttempts
		}
		if r.BackoffRate != nil {
			cr.backoff = *r.BackoffRate
		}
		if r.MaxDelaySeconds != nil {
			cr.maxDelay = float64(*r.MaxDelaySeconds)
		}
		cr.jitter = r.JitterStrategy == "FULL"
		g.retriers = append(g.retriers, cr)
	}
	for i, c := range cs {
		cc := catcher{errs: c.ErrorEquals, nextName: c.Next}
		var err error
		if cc.rp, err = compileResultPath(c.ResultPath); err != nil {
			return nil, fmt.Errorf("engine: compile: %s/Catch/%d/ResultPath: %w", ptr, i, err)
		}
		if c.Assign != nil {
			if cc.assign, err = template(fmt.Sprintf("%s/Catch/%d", ptr, i), "Assign", any(c.Assign)); err != nil {
				return nil, err
			}
		}
		g.catchers = append(g.catchers, cc)
	}
	return g, nil
}

func (g *guard) resolve(p *program) error {
	for i := range g.catchers {
		c := &g.catchers[i]
		n, ok := p.nodes[c.nextName]
		if !ok {
			return fmt.Errorf("catcher %d: Next: no state named %q", i, c.nextName)
		}
		c.next = n
	}
	return nil
}

// matches reports whether an ErrorEquals list names err. States.ALL matches
// any error except States.Runtime; States.TaskFailed matches any error
// except States.Timeout (and States.Runtime).
//
// AWS's guide says States.ALL cannot catch States.DataLimitExceeded
// either, but a real execution does catch a task result over the quota
// with States.ALL (LocalStack's AWS-recorded snapshot
// test_task_lambda_catch_state_all_data_limit_exceeded_on_large_utf8_response),
// and we follow what AWS does.
func matches(errs []string, name string) bool {
	for _, e := range errs {
		switch {
		case e == name:
			return true
		case e == failure.All || e == failure.TaskFailed:
			if name == failure.Runtime {
				continue
			}
			if e == failure.TaskFailed && name == failure.Timeout {
				continue
			}
			return true
		}
	}
	return false
}

// delay is the back-off before retry number attempt+1 of r: IntervalSeconds
// x BackoffRate^attempt, capped at MaxDelaySeconds, and with FULL jitter a
// random duration in [0, that].
func (r *retrier) delay(attempt int, rnd func() float64) time.Duration {
	d := r.interval * math.Pow(r.backoff, float64(attempt))
	if r.maxDelay > 0 && d > r.maxDelay {
		d = r.maxDelay
	}
	if r.jitter {
		d *= rnd()
	}
	return time.Duration(d * float64(time.Second))
}

func (x *Execution) rand() float64 {
	x.rngMu.Lock()
	defer x.rngMu.Unlock()
	return x.random().Float64()
}

// withRetry runs attempt until it succeeds or its error is not retried any
// more. Each retrier counts its own attempts; the first retrier that names
// the error decides, as on AWS.
func (t *thread) withRetry(g *guard, attempt func() (any, error)) (any, error) {
	var counts []int
	for {
		res, err := attempt()
		if err == nil {
			return res, nil
		}
		var fe *failure.Error
		if g == nil || !errors.As(err, &fe) {
			return nil, err
		}
		idx := -1
		for i := range g.retriers {
			if matches(g.retriers[i].errs, fe.Name) {
				idx = i
				break
			}
		}
		if idx < 0 {
			return nil, err
		}
		if counts == nil {
			counts = make([]int, len(g.retriers))
		}
		r := &g.retriers[idx]
		if int64(counts[idx]) >= r.max {
			return nil, err
		}
		d := r.delay(counts[idx], t.x.rand)
		counts[idx]++
		t.retry++
		if t.x.run.sleep(t.ctx, t.f, d) != nil {
			return nil, errStopped
		}
	}
}

// catch looks for a catcher of err; with one, the error output
// {"Error","Cause"} goes to the catcher's ResultPath in the state's raw
// input, the state exits and the catcher's Next follows.
func (t *thread) catch(g *guard, n *node, rawInput any, err error, exitType types.HistoryEventType) (any, *node, error) {
	var fe *failure.Error
	if g == nil || !errors.As(err, &fe) {
		return nil, nil, err
	}
	for i := range g.catchers {
		c := &g.catchers[i]
		if !matches(c.errs, fe.Name) {
			continue
		}
		errOut := map[string]any{"Error": fe.Name, "Cause": fe.Cause}
		assigned, aerr := t.assign(n, c.assign, errOut)
		if aerr != nil {
			return nil, nil, aerr
		}
		out, rerr := c.rp.apply(rawInput, errOut)
		if rerr != nil {
			return nil, nil, rerr
		}
		t.exit(n, exitType, out, assigned)
		return out, c.next, nil
	}
	return nil, nil, err
}
