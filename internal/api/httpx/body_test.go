package httpx_test

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/updraft-ota/updraft/internal/api/httpx"
	"github.com/updraft-ota/updraft/internal/testenv"
)

// TestPaced: a body trickling in under the minimum rate is cut after the
// grace period; one just above the rate, and one arriving at once, are read
// whole; a request without a body is not paced at all.
func TestPaced(t *testing.T) {
	type result struct {
		n   int
		err error
	}
	results := make(chan result, 1)
	pace := httpx.Pace{Grace: 300 * time.Millisecond, MinRate: 100, Idle: 2 * time.Second}
	srv := httptest.NewServer(httpx.Paced(pace, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		b, err := io.ReadAll(r.Body)
		results <- result{len(b), err}
	})))
	t.Cleanup(srv.Close)

	send := func(t *testing.T, size int, every time.Duration, chunk int) result {
		conn, err := net.Dial("tcp", srv.Listener.Addr().String())
		if err != nil {
			t.Fatal(err)
		}
		defer conn.Close()
		fmt.Fprintf(conn, "POST / HTTP/1.1\r\nHost: x\r\nContent-Length: %d\r\n\r\n", size)
		go func() {
			for sent := 0; sent < size; sent += chunk {
				if _, err := conn.Write(bytes.Repeat([]byte("x"), min(chunk, size-sent))); err != nil {
					return
				}
				time.Sleep(every)
			}
		}()
		return testenv.Recv(t, results, 10*time.Second, "the handler's read")
	}

	t.Run("TrickleCut", func(t *testing.T) {
		// 10 bytes/s against a minimum of 100: cut soon after the grace.
		start := time.Now()
		r := send(t, 1000, 100*time.Millisecond, 1)
		if !errors.Is(r.err, httpx.ErrTooSlow) || !strings.Contains(r.err.Error(), "too slowly") {
			t.Fatalf("trickle read %d bytes, err %v; want ErrTooSlow", r.n, r.err)
		}
		if d := time.Since(start); d > 3*time.Second {
			t.Errorf("cut after %v, want about the grace (300ms)", d)
		}
	})
	t.Run("JustAboveRateRead", func(t *testing.T) {
		// 40 bytes every 200 ms = 200 bytes/s, twice the minimum.
		r := send(t, 400, 200*time.Millisecond, 40)
		if r.err != nil || r.n != 400 {
			t.Fatalf("read %d bytes, err %v; want all 400", r.n, r.err)
		}
	})
	t.Run("AtOnce", func(t *testing.T) {
		r := send(t, 1<<20, 0, 1<<20)
		if r.err != nil || r.n != 1<<20 {
			t.Fatalf("read %d bytes, err %v", r.n, r.err)
		}
	})
}
