package engine

import (
	"context"
	"time"
)

type taskTimeKey struct{}

// TaskTime returns the execution's time when a handler was called: on the
// virtual clock each execution keeps its own time, so a handler (and the
// sandbox behind it) must read "now" from here rather than from a shared
// clock, or a 90-day wait would not age the key it then deactivates.
func TaskTime(ctx context.Context) (time.Time, bool) {
	t, ok := ctx.Value(taskTimeKey{}).(time.Time)
	return t, ok
}

func withTaskTime(ctx context.Context, t time.Time) context.Context {
	return context.WithValue(ctx, taskTimeKey{}, t)
}
