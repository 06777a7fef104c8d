package blobtest

import (
	"context"
	"crypto/rand"
	"io"
	"net/http"
	"testing"
	"time"

	"github.com/updraft-ota/updraft/internal/blob"
)

// patternReader yields n bytes by repeating one random 1 MiB block: cheap
// enough that a benchmark measures the store, not the source.
type patternReader struct {
	block []byte
	off   int
	left  int64
}

func newPatternReader(b *testing.B, n int64) *patternReader {
	block := make([]byte, 1<<20)
	if _, err := rand.Read(block); err != nil {
		b.Fatal(err)
	}
	return &patternReader{block: block, left: n}
}

func (p *patternReader) Read(b []byte) (int, error) {
	if p.left <= 0 {
		return 0, io.EOF
	}
	if int64(len(b)) > p.left {
		b = b[:p.left]
	}
	n := copy(b, p.block[p.off:])
	p.off = (p.off + n) % len(p.block)
	p.left -= int64(n)
	return n, nil
}

// Bench measures streaming throughput of st for objects of size bytes in
// bucket: Put (hashing included), reading back through Open, and downloading
// through a signed URL with net/http. Run with -bench and read MB/s.
func Bench(b *testing.B, st blob.Store, bucket string, size int64) {
	ctx := context.Background()
	const key = "bench/object.bin"
	b.Run("Put", func(b *testing.B) {
		b.SetBytes(size)
		for b.Loop() {
			if _, err := st.Put(ctx, bucket, key, newPatternReader(b, size), size); err != nil {
				b.Fatal(err)
			}
		}
	})
	if _, err := st.Stat(ctx, bucket, key); err != nil {
		if _, err := st.Put(ctx, bucket, key, newPatternReader(b, size), size); err != nil {
			b.Fatal(err)
		}
	}
	b.Run("Open", func(b *testing.B) {
		b.SetBytes(size)
		for b.Loop() {
			obj, err := st.Open(ctx, bucket, key)
			if err != nil {
				b.Fatal(err)
			}
			n, err := io.Copy(io.Discard, obj)
			obj.Close()
			if err != nil || n != size {
				b.Fatalf("read %d bytes, %v", n, err)
			}
		}
	})
	b.Run("SignedGET", func(b *testing.B) {
		b.SetBytes(size)
		for b.Loop() {
			u, err := st.SignedURL(ctx, bucket, key, time.Hour)
			if err != nil {
				b.Fatal(err)
			}
			resp, err := http.Get(u)
			if err != nil {
				b.Fatal(err)
			}
			n, err := io.Copy(io.Discard, resp.Body)
			resp.Body.Close()
			if err != nil || n != size || resp.StatusCode != http.StatusOK {
				b.Fatalf("GET: status %d, %d bytes, %v", resp.StatusCode, n, err)
			}
		}
	})
	if err := st.Delete(ctx, bucket, key); err != nil {
		b.Fatal(err)
	}
}
