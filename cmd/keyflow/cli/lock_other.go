//go:build !unix

package cli

import "os"

// tryLock is a no-op where flock does not exist: keyflow serve and start
// run on Linux and macOS; elsewhere, do not run two of them on one store.
func tryLock(*os.File) error { return nil }
