//go:build !unix

package ordosqlite

import (
	"errors"
	"os"
)

// lockFile fails: the lock that keeps a file to one process is only
// implemented with flock(2).
func lockFile(path string) (*os.File, error) {
	return nil, errors.New("ordosqlite needs flock(2), which this platform does not have")
}
