package testenv

import (
	"testing"
	"time"
)

// Within runs wait (a WaitGroup's Wait, a token's Wait, a channel drain) and
// fails tb if it has not returned after d, saying what it waited for. A test
// that waits never hangs the suite: it fails with a reason instead.
func Within(tb testing.TB, d time.Duration, what string, wait func()) {
	tb.Helper()
	done := make(chan struct{})
	go func() {
		defer close(done)
		wait()
	}()
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-done:
	case <-t.C:
		tb.Fatalf("timed out after %v waiting for %s", d, what)
	}
}

// Recv receives one value from ch, failing tb if none comes within d (or ch
// is closed), saying what it waited for.
func Recv[T any](tb testing.TB, ch <-chan T, d time.Duration, what string) T {
	tb.Helper()
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case v, ok := <-ch:
		if !ok {
			tb.Fatalf("%s: channel closed before a value arrived", what)
		}
		return v
	case <-t.C:
		tb.Fatalf("timed out after %v waiting for %s", d, what)
	}
	var zero T
	return zero
}
