package cli

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
)

// One process runs a store's executions: two engines resuming and firing
// the same timers would run a task twice and write two histories. A
// process that runs them (keyflow serve, a keyflow start on the local
// store) holds an exclusive advisory lock on "<db>.lock" for its whole
// life; the kernel drops it when the process ends, also on kill -9, so a
// crash never leaves a store locked. Readers (executions, describe,
// history) take no lock: SQLite's WAL lets them read beside the writer.

// errStoreBusy is the lock held by another process; the holder's note
// (what it is, where it listens) follows in the message.
var errStoreBusy = errors.New("the store is in use by another keyflow process")

// storeLock is a held lock; release lets go of it (idempotent).
type storeLock struct {
	f *os.File
}

func lockPath(db string) string { return db + ".lock" }

// lockStore takes the store's lock without waiting, and writes note (who
// holds it: "keyflow serve on http://127.0.0.1:8083, pid 42") into the
// lock file for the process that is refused.
func lockStore(db, note string) (*storeLock, error) {
	if err := os.MkdirAll(filepath.Dir(db), 0o755); err != nil {
		return nil, fmt.Errorf("creating the store's folder: %w", err)
	}
	f, err := os.OpenFile(lockPath(db), os.O_RDWR|os.O_CREATE, 0o644)
	if err != nil {
		return nil, fmt.Errorf("opening the store's lock: %w", err)
	}
	if err := tryLock(f); err != nil {
		f.Close()
		if errors.Is(err, errStoreBusy) {
			holder, _ := os.ReadFile(lockPath(db))
			if h := strings.TrimSpace(string(holder)); h != "" {
				return nil, fmt.Errorf("%w (%s)", errStoreBusy, truncateArg(h))
			}
		}
		return nil, err
	}
	l := &storeLock{f: f}
	l.note(note)
	return l, nil
}

func (l *storeLock) release() {
	if l == nil || l.f == nil {
		return
	}
	// Emptied first, so no stale note outlives its holder; closing the
	// file drops the lock.
	_ = l.f.Truncate(0)
	_ = l.f.Close()
	l.f = nil
}

// note replaces what the lock file says about its holder; it is for
// people, so a failure to write it loses nothing.
func (l *storeLock) note(s string) {
	if l == nil || l.f == nil {
		return
	}
	if l.f.Truncate(0) == nil {
		_, _ = l.f.WriteAt([]byte(s+"\n"), 0)
	}
}
