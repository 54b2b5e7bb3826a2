//go:build !unix

package records

import "os"

// lockDir opens the LOCK file; without flock, two processes sharing a
// data directory are not detected.
func lockDir(path string) (*os.File, error) {
	return os.OpenFile(path, os.O_RDWR|os.O_CREATE, 0o600)
}
