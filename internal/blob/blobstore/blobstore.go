// Package blobstore opens the blob store named by a --blob URL:
//
//	file:DIR       files under DIR (relative to the working directory)
//	file:          files under <data dir>/blobs
//	s3://BUCKET?endpoint=HOST:PORT&region=R&secure=false&access_key=K&secret_key=S
//
// S3 credentials may instead come from UPDRAFT_S3_ACCESS_KEY and
// UPDRAFT_S3_SECRET_KEY, or AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY.
package blobstore

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"

	"github.com/updraft-ota/updraft/internal/blob"
	"github.com/updraft-ota/updraft/internal/blob/fs"
	"github.com/updraft-ota/updraft/internal/blob/s3"
	"github.com/updraft-ota/updraft/internal/ota"
)

// DefaultFileBucket is the bucket Updraft keeps its own uploads in on a
// file: store.
const DefaultFileBucket = "updraft"

// Options carries what the server knows that the URL does not say.
type Options struct {
	DataDir    string // file: alone means DataDir/blobs
	SigningKey []byte // signs file: download URLs
	PublicURL  string // base of file: download URLs, e.g. https://ota.example.com
}

// Open opens the store named by rawURL and returns it with its default
// bucket and, for file:, the handler that serves signed downloads (mount it at
// fs.URLPrefix, "/blob/"); the handler is nil for s3. For s3 it also makes
// sure the bucket exists, so an unreachable server or wrong credentials fail
// here, at startup.
func Open(ctx context.Context, rawURL string, opts Options) (blob.Store, string, http.Handler, error) {
	switch {
	case rawURL == "":
		return nil, "", nil, errors.New("no blob store URL: use file:DIR, file: (for <data dir>/blobs) or s3://bucket?endpoint=host:port")
	case strings.HasPrefix(rawURL, "file:"):
		return openFile(rawURL, opts)
	case strings.HasPrefix(rawURL, "s3://"):
		return openS3(ctx, rawURL)
	default:
		scheme, _, ok := strings.Cut(rawURL, ":")
		if !ok {
			return nil, "", nil, fmt.Errorf("blob store URL %q has no scheme: for a directory write file:%s", rawURL, rawURL)
		}
		return nil, "", nil, fmt.Errorf("blob store URL scheme %q is not supported: use file:DIR or s3://bucket?endpoint=host:port", scheme)
	}
}

func openFile(rawURL string, opts Options) (blob.Store, string, http.Handler, error) {
	dir := strings.TrimPrefix(rawURL, "file:")
	if strings.ContainsAny(dir, "?#") {
		return nil, "", nil, fmt.Errorf("blob store URL %q: file: takes a directory only, no query or fragment", rawURL)
	}
	if strings.HasPrefix(dir, "//") {
		u, err := url.Parse(rawURL)
		if err != nil {
			return nil, "", nil, fmt.Errorf("blob store URL %q: %v", rawURL, err)
		}
		if u.Host != "" && u.Host != "localhost" {
			return nil, "", nil, fmt.Errorf("blob store URL %q names host %q: a file: store must be local (write file:/path or file:relative/path)", rawURL, u.Host)
		}
		dir = u.Path
	}
	if dir == "" {
		if opts.DataDir == "" {
			return nil, "", nil, errors.New("blob store URL file: without a directory needs a data directory (--data)")
		}
		dir = filepath.Join(opts.DataDir, "blobs")
	}
	if opts.PublicURL == "" {
		return nil, "", nil, errors.New("a file: blob store needs the public URL of this server (--public-url) to build download links")
	}
	st, err := fs.New(dir, opts.SigningKey, opts.PublicURL, nil)
	if err != nil {
		return nil, "", nil, err
	}
	return st, DefaultFileBucket, st.Handler(), nil
}

var s3Params = []string{"endpoint", "region", "secure", "access_key", "secret_key"}

func openS3(ctx context.Context, rawURL string) (blob.Store, string, http.Handler, error) {
	// Never echo rawURL: it may carry the secret key.
	u, err := url.Parse(rawURL)
	if err != nil {
		return nil, "", nil, errors.New("the s3:// blob store URL cannot be parsed: the form is s3://bucket?endpoint=host:port&region=…")
	}
	bucket := u.Host
	if u.User != nil {
		return nil, "", nil, errors.New("s3:// blob store URL: put credentials in access_key=…&secret_key=… or the environment, not before the bucket name")
	}
	if err := ota.CheckBucketName("bucket", bucket); err != nil {
		return nil, "", nil, fmt.Errorf("s3:// blob store URL: %s", ota.ErrorMessage(err))
	}
	if u.Path != "" && u.Path != "/" {
		return nil, "", nil, fmt.Errorf("s3:// blob store URL: a path after the bucket (%q) is not supported; the form is s3://bucket?endpoint=host:port", u.Path)
	}
	q := u.Query()
	for name, vs := range q {
		if !slices.Contains(s3Params, name) {
			return nil, "", nil, fmt.Errorf("s3:// blob store URL: unknown parameter %q; known: %s", name, strings.Join(s3Params, ", "))
		}
		if len(vs) != 1 {
			return nil, "", nil, fmt.Errorf("s3:// blob store URL: parameter %q given %d times", name, len(vs))
		}
	}
	cfg := s3.Config{Endpoint: q.Get("endpoint"), Region: q.Get("region"), Secure: true}
	if cfg.Endpoint == "" {
		cfg.Endpoint = "s3.amazonaws.com"
	}
	if v := q.Get("secure"); v != "" {
		b, err := strconv.ParseBool(v)
		if err != nil {
			return nil, "", nil, fmt.Errorf("s3:// blob store URL: secure=%q is not true or false", v)
		}
		cfg.Secure = b
	}
	cfg.AccessKey, cfg.SecretKey, err = s3Credentials(q)
	if err != nil {
		return nil, "", nil, err
	}
	st, err := s3.New(ctx, cfg)
	if err != nil {
		return nil, "", nil, err
	}
	if err := st.EnsureBucket(ctx, bucket); err != nil {
		return nil, "", nil, fmt.Errorf("S3 bucket %q at %s: %w", bucket, cfg.Endpoint, err)
	}
	return st, bucket, nil, nil
}

// s3Credentials takes the key pair from the first source that has any part
// of it, so halves of two different pairs are never mixed.
func s3Credentials(q url.Values) (access, secret string, err error) {
	sources := []struct{ where, access, secret string }{
		{"the URL's access_key and secret_key", q.Get("access_key"), q.Get("secret_key")},
		{"UPDRAFT_S3_ACCESS_KEY and UPDRAFT_S3_SECRET_KEY", os.Getenv("UPDRAFT_S3_ACCESS_KEY"), os.Getenv("UPDRAFT_S3_SECRET_KEY")},
		{"AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY", os.Getenv("AWS_ACCESS_KEY_ID"), os.Getenv("AWS_SECRET_ACCESS_KEY")},
	}
	for _, s := range sources {
		if s.access == "" && s.secret == "" {
			continue
		}
		if s.access == "" || s.secret == "" {
			return "", "", fmt.Errorf("S3 credentials: %s must both be set", s.where)
		}
		return s.access, s.secret, nil
	}
	return "", "", errors.New("no S3 credentials: set access_key and secret_key in the s3:// URL, or UPDRAFT_S3_ACCESS_KEY and UPDRAFT_S3_SECRET_KEY, or AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY")
}
