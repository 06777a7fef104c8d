// Package blob is the object-storage contract for package files: streaming
// puts that measure size, SHA-256 and MD5 on the way, ranged reads, and signed
// expiring download URLs. Backends: fs (files on disk) and s3. Every backend
// must pass blobtest.
package blob

import (
	"context"
	"io"
	"time"
)

// Info describes a stored object. SHA256 and MD5 are lowercase hex; they are
// empty when the backend does not know them (an object put into S3 by someone
// else), in which case the caller hashes Open's content.
type Info struct {
	Bucket  string
	Key     string
	Size    int64
	SHA256  string
	MD5     string
	ETag    string // strong validator for HTTP (quoted as HTTP wants it)
	ModTime time.Time
}

// Object is an open object: seekable, so HTTP Range works on it.
type Object interface {
	io.ReadSeekCloser
	Info() Info
}

// Store is a blob backend.
//
// Errors are *ota.Error: CodeNotFound for a missing object, CodeTooLarge when
// Put's content exceeds maxSize (nothing is kept), CodeInvalid for a bad
// bucket or key, CodeUnavailable when the backend cannot be reached.
type Store interface {
	// Put streams r into bucket/key, never holding the whole content in
	// memory, and measures it. When the content is larger than maxSize it
	// stops, removes what it wrote and returns CodeTooLarge. A failed Put
	// leaves nothing behind. The bucket is created if missing.
	Put(ctx context.Context, bucket, key string, r io.Reader, maxSize int64) (Info, error)
	Open(ctx context.Context, bucket, key string) (Object, error)
	Stat(ctx context.Context, bucket, key string) (Info, error)
	Delete(ctx context.Context, bucket, key string) error // no error if already gone
	// SignedURL returns a URL that lets anyone GET the object (with Range)
	// until ttl passes.
	SignedURL(ctx context.Context, bucket, key string, ttl time.Duration) (string, error)
	Close() error
}
