package blob

import (
	"context"
	"crypto/md5"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"hash"
	"io"

	"github.com/updraft-ota/updraft/internal/ota"
)

// Helpers shared by the backends' Put: a reader that enforces maxSize while
// streaming, and the digests every backend measures on the way.

// ErrTooLarge is the read error of a LimitedReader that went past its limit.
var ErrTooLarge = errors.New("content exceeds the size limit")

// LimitedReader reads from R until more than a limit of bytes came through,
// then fails with ErrTooLarge. Unlike io.LimitReader, which ends silently, it
// lets Put tell "exactly at the limit" from "too large". It also stops as soon
// as ctx is done, since a backend may read a lot before it writes anything.
type LimitedReader struct {
	ctx   context.Context
	r     io.Reader
	limit int64
	left  int64
}

// LimitReader returns a LimitedReader of r allowing at most limit bytes.
func LimitReader(ctx context.Context, r io.Reader, limit int64) *LimitedReader {
	return &LimitedReader{ctx: ctx, r: r, limit: limit, left: limit}
}

func (l *LimitedReader) Read(b []byte) (int, error) {
	if err := l.ctx.Err(); err != nil {
		return 0, err
	}
	if l.left < 0 {
		return 0, ErrTooLarge
	}
	// Ask for one byte past the limit, so that content of exactly limit
	// bytes ends in EOF and anything longer in ErrTooLarge.
	if int64(len(b)) > l.left+1 {
		b = b[:l.left+1]
	}
	n, err := l.r.Read(b)
	l.left -= int64(n)
	if l.left < 0 {
		return n, ErrTooLarge
	}
	return n, err
}

// N returns how many bytes were read so far.
func (l *LimitedReader) N() int64 { return l.limit - l.left }

// TooLarge is the contract's error for content over maxSize bytes.
func TooLarge(maxSize int64) *ota.Error {
	return &ota.Error{Code: ota.CodeTooLarge, Field: "file", Message: fmt.Sprintf("the content is larger than the limit of %d bytes", maxSize)}
}

// Digester measures the SHA-256 and MD5 of what is written to it. The two
// hashes are exported so a caller may feed them from separate goroutines.
type Digester struct {
	SHA256 hash.Hash
	MD5    hash.Hash
}

// NewDigester returns a Digester with empty hashes.
func NewDigester() *Digester {
	return &Digester{SHA256: sha256.New(), MD5: md5.New()}
}

// Write feeds p to both hashes; it never fails.
func (d *Digester) Write(p []byte) (int, error) {
	d.SHA256.Write(p)
	d.MD5.Write(p)
	return len(p), nil
}

// Sums returns both digests as lowercase hex, as Info holds them.
func (d *Digester) Sums() (sha256Hex, md5Hex string) {
	return hex.EncodeToString(d.SHA256.Sum(nil)), hex.EncodeToString(d.MD5.Sum(nil))
}
