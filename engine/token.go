package engine

import (
	"crypto/rand"
	"encoding/hex"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/keyflow/keyflow/states/data"
)

// tokenWait is a ".waitForTaskToken" task parked until someone answers its
// token, its heartbeat lapses or its timeout passes. Its fields are guarded
// by the runner: the sim's lock on virtual time, mu on a real clock.
type tokenWait struct {
	token string
	x     *Execution
	f     *fiber

	mu       sync.Mutex
	signal   chan struct{}
	resolved bool
	output   any
	failed   bool
	errName  string
	cause    string
	timedOut atomic.Bool
	hbLapsed bool

	started   time.Time
	timeout   time.Duration
	heartbeat time.Duration
	lastBeat  time.Time
}

// deadlineLocked is when the wait ends if nobody answers, and whether that
// is the heartbeat's deadline rather than the task's.
func (w *tokenWait) deadlineLocked() (time.Time, bool) {
	at := w.started.Add(w.timeout)
	if w.heartbeat > 0 {
		if h := w.lastBeat.Add(w.heartbeat); h.Before(at) {
			return h, true
		}
	}
	return at, false
}

func (w *tokenWait) expire(heartbeat bool) {
	w.resolved = true
	w.hbLapsed = heartbeat
	w.timedOut.Store(true)
}

const tokenPrefix = "KF1"

func newToken() string {
	var b [48]byte
	_, _ = rand.Read(b[:])
	return tokenPrefix + hex.EncodeToString(b[:])
}

func (e *Engine) lookupToken(token string) (*tokenWait, error) {
	if len(token) < 1 || len(token) > 1024 {
		return nil, apiErr(ErrInvalidToken, "invalid token: must be 1 to 1024 characters")
	}
	v, ok := e.tokens.Load(token)
	if !ok {
		if !strings.HasPrefix(token, tokenPrefix) {
			return nil, apiErr(ErrInvalidToken, "invalid token")
		}
		return nil, apiErr(ErrTaskDoesNotExist, "task does not exist anymore")
	}
	return v.(*tokenWait), nil
}

func closedErr(w *tokenWait) error {
	if w.timedOut.Load() {
		return apiErr(ErrTaskTimedOut, "task timed out")
	}
	return apiErr(ErrTaskDoesNotExist, "task does not exist anymore")
}

// SendTaskSuccess completes the ".waitForTaskToken" task of token with
// output (JSON text), as the Step Functions API does. Errors are
// *APIError: InvalidToken, TaskDoesNotExist, TaskTimedOut, InvalidOutput.
func (e *Engine) SendTaskSuccess(token string, output []byte) error {
	w, err := e.lookupToken(token)
	if err != nil {
		return err
	}
	v, err := data.Parse(output)
	if err != nil {
		return &APIError{Name: "InvalidOutput", Message: "output is not valid JSON: " + err.Error()}
	}
	if len(output) > MaxPayloadBytes {
		return &APIError{Name: "InvalidOutput", Message: "output is larger than 256 KiB"}
	}
	if !w.x.run.answer(w, func() { w.output = v }) {
		return closedErr(w)
	}
	return nil
}

// SendTaskFailure fails the ".waitForTaskToken" task of token with an
// error name and a cause.
func (e *Engine) SendTaskFailure(token, errName, cause string) error {
	w, err := e.lookupToken(token)
	if err != nil {
		return err
	}
	if !w.x.run.answer(w, func() { w.failed, w.errName, w.cause = true, errName, cause }) {
		return closedErr(w)
	}
	return nil
}

// SendTaskHeartbeat resets the HeartbeatSeconds timer of the task of token.
func (e *Engine) SendTaskHeartbeat(token string) error {
	w, err := e.lookupToken(token)
	if err != nil {
		return err
	}
	if w.timedOut.Load() || !w.x.run.heartbeat(w) {
		return closedErr(w)
	}
	return nil
}
