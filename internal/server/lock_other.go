//go:build !unix

package server

// LockFile is held by the server running on a data directory (unix only).
const LockFile = "updraft.lock"

// lockDataDir does nothing where flock is not available.
func lockDataDir(string) (func(), error) { return func() {}, nil }
