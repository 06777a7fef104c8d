//go:build unix

package server

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
)

// LockFile is held (flock) by the server running on a data directory.
const LockFile = "updraft.lock"

// lockDataDir takes the data directory for this process: a second `serve`
// on the same folder would otherwise start on other ports and share the
// SQLite database and blobs unnoticed. The kernel drops the lock when the
// process ends, however it ends, so a crash leaves nothing to clean up.
func lockDataDir(dir string) (release func(), err error) {
	path := filepath.Join(dir, LockFile)
	f, err := os.OpenFile(path, os.O_RDWR|os.O_CREATE, 0o600)
	if err != nil {
		return nil, fmt.Errorf("--data %s: cannot open the lock file: %w", dir, err)
	}
	if err := syscall.Flock(int(f.Fd()), syscall.LOCK_EX|syscall.LOCK_NB); err != nil {
		owner, _ := os.ReadFile(path)
		f.Close()
		if errors.Is(err, syscall.EWOULDBLOCK) {
			pid := strings.TrimSpace(string(owner))
			if pid == "" {
				pid = "unknown"
			}
			return nil, fmt.Errorf("--data %s: another updraft serve (pid %s) is running on this data directory; stop it, or give this one another --data", dir, pid)
		}
		return nil, fmt.Errorf("--data %s: cannot lock %s: %w", dir, path, err)
	}
	_ = f.Truncate(0)
	_, _ = f.WriteAt([]byte(strconv.Itoa(os.Getpid())+"\n"), 0)
	return func() { f.Close() }, nil // closing the descriptor releases the lock
}
