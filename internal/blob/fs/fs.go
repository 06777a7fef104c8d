// Package fs is the blob store on a local filesystem: objects are files under
// <root>/<bucket>/<key>, their digests live in sidecar files under
// <root>/.meta/<bucket>/, and downloads go through HMAC-signed, expiring URLs
// served by Handler.
package fs

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"net/url"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/updraft-ota/updraft/internal/blob"
	"github.com/updraft-ota/updraft/internal/ota"
)

// metaDir is the directory under root holding digest sidecars. Bucket names
// must start with a letter or digit, so no bucket can be called ".meta".
const metaDir = ".meta"

// tempPrefix starts the names of files being written; they are renamed into
// place when complete.
const tempPrefix = ".tmp-"

// copyBufferSize is the chunk size of Put's copy loop: large enough to keep
// syscalls and hash calls cheap, small enough not to matter in memory.
const copyBufferSize = 256 << 10

// Store is a blob.Store on the local filesystem.
type Store struct {
	root       string
	signingKey []byte
	publicBase string // no trailing slash
	now        func() time.Time

	// metas remembers sidecars read (metaCacheKey → *meta), at most
	// maxCachedMetas of them. A fleet downloads the same few packages over
	// and over, and reading the sidecar (open, read, close, JSON) cost as
	// much as opening the file itself. An entry serves only while it still
	// matches the data file's size and modification time, the same check
	// the sidecar gets.
	metas     sync.Map
	metaCount atomic.Int64
}

// maxCachedMetas bounds Store.metas: packages, not uploads in progress,
// are what is read often.
const maxCachedMetas = 4096

func metaCacheKey(bucket, key string) string { return bucket + "\x00" + key }

var _ blob.Store = (*Store)(nil)

// MinSigningKeyLen is the shortest accepted URL-signing key.
const MinSigningKeyLen = 16

// New returns a store rooted at root (created if missing). Signed URLs point
// at publicBaseURL + "/blob/…" and are signed with signingKey; clock tells the
// time for URL expiry (nil means time.Now).
func New(root string, signingKey []byte, publicBaseURL string, clock func() time.Time) (*Store, error) {
	if root == "" {
		return nil, errors.New("fs blob store: the root directory is empty")
	}
	if len(signingKey) < MinSigningKeyLen {
		return nil, fmt.Errorf("fs blob store: the URL signing key has %d bytes; it needs at least %d", len(signingKey), MinSigningKeyLen)
	}
	base, err := url.Parse(publicBaseURL)
	if err != nil || (base.Scheme != "http" && base.Scheme != "https") || base.Host == "" || base.RawQuery != "" || base.Fragment != "" {
		return nil, fmt.Errorf("fs blob store: public URL %q must be an absolute http(s) URL without query, like https://ota.example.com", publicBaseURL)
	}
	abs, err := filepath.Abs(root)
	if err != nil {
		return nil, fmt.Errorf("fs blob store: %w", err)
	}
	if err := os.MkdirAll(filepath.Join(abs, metaDir), 0o700); err != nil {
		return nil, fmt.Errorf("fs blob store: cannot create the blob directory: %w", err)
	}
	if clock == nil {
		clock = time.Now
	}
	return &Store{
		root:       abs,
		signingKey: append([]byte(nil), signingKey...),
		publicBase: strings.TrimSuffix(base.String(), "/"),
		now:        clock,
	}, nil
}

// Root returns the absolute directory the store keeps its files in.
func (s *Store) Root() string { return s.root }

func (s *Store) Close() error { return nil }

// checkName validates bucket and key, adding what a filesystem needs on top of
// the ota rules: buckets start with a letter or digit, keys have no empty path
// segments (a trailing or doubled '/' would name a directory).
func checkName(bucket, key string) error {
	if err := ota.CheckBucketName("bucket", bucket); err != nil {
		return err
	}
	if c := bucket[0]; !(c >= 'a' && c <= 'z' || c >= '0' && c <= '9') {
		return ota.Invalid("bucket", "bucket name %q must start with a lowercase letter or digit", bucket)
	}
	if err := ota.CheckObjectKey("key", key); err != nil {
		return err
	}
	for _, seg := range strings.Split(key, "/") {
		if seg == "" {
			return ota.Invalid("key", "object key %q must not end with '/' or contain '//'", key)
		}
	}
	return nil
}

func (s *Store) dataPath(bucket, key string) string {
	return filepath.Join(s.root, bucket, filepath.FromSlash(key))
}

// metaPath names a key's sidecar by the SHA-256 of the key, so that no key can
// collide with another key's sidecar or with a directory of sidecars.
func (s *Store) metaPath(bucket, key string) string {
	h := sha256.Sum256([]byte(key))
	return filepath.Join(s.root, metaDir, bucket, hex.EncodeToString(h[:])+".json")
}

// meta is the sidecar of one object. Size and ModTime pin it to the exact file
// it describes: a data file that does not match (replaced behind our back, or
// a crash between the two renames) has unknown digests rather than wrong ones.
type meta struct {
	Key     string `json:"key"`
	Size    int64  `json:"size"`
	ModTime int64  `json:"mtime_ns"`
	SHA256  string `json:"sha256"`
	MD5     string `json:"md5"`
}

func unavailable(err error, format string, args ...any) error {
	e := ota.Errorf(ota.CodeUnavailable, format, args...)
	e.Err = err
	return e
}

// pathError maps an error from the filesystem for bucket/key to the contract's
// codes: a missing file, or a path through a file where a directory should
// be, is not found.
func pathError(err error, bucket, key string) error {
	if errors.Is(err, fs.ErrNotExist) || errors.Is(err, syscall.ENOTDIR) {
		return ota.NotFound("object", bucket+"/"+key)
	}
	return unavailable(err, "cannot read object %q in bucket %q", key, bucket)
}

func (s *Store) Put(ctx context.Context, bucket, key string, r io.Reader, maxSize int64) (blob.Info, error) {
	if err := checkName(bucket, key); err != nil {
		return blob.Info{}, err
	}
	if maxSize <= 0 {
		return blob.Info{}, ota.Invalid("maxSize", "maximum size %d must be positive", maxSize)
	}
	dst := s.dataPath(bucket, key)
	dir := filepath.Dir(dst)
	if fi, err := os.Lstat(dst); err == nil && fi.IsDir() {
		return blob.Info{}, ota.Errorf(ota.CodeConflict, "object key %q in bucket %q is a prefix of other objects' keys: the file store cannot hold both", key, bucket)
	}
	tmp, err := s.createTemp(bucket, key, dir)
	if err != nil {
		return blob.Info{}, err
	}
	committed := false
	defer func() {
		if !committed {
			tmp.Close()
			os.Remove(tmp.Name())
			s.pruneEmptyDirs(bucket, dir)
		}
	}()

	digests := blob.NewDigester()
	src := blob.LimitReader(ctx, r, maxSize)
	n, err := io.CopyBuffer(parallelWriter{tmp, digests.SHA256, digests.MD5}, src, make([]byte, copyBufferSize))
	var readErr *ota.Error
	switch {
	case errors.Is(err, blob.ErrTooLarge):
		return blob.Info{}, blob.TooLarge(maxSize)
	case errors.As(err, &readErr):
		// The reader's own verdict (a malformed upload, a client gone):
		// the caller's fault, not the store's.
		return blob.Info{}, readErr
	case ctx.Err() != nil:
		return blob.Info{}, ctx.Err()
	case err != nil:
		return blob.Info{}, unavailable(err, "storing object %q in bucket %q failed after %d bytes", key, bucket, n)
	}
	if err := tmp.Sync(); err != nil {
		return blob.Info{}, unavailable(err, "cannot flush object %q in bucket %q to disk", key, bucket)
	}
	if err := tmp.Close(); err != nil {
		return blob.Info{}, unavailable(err, "cannot close object %q in bucket %q", key, bucket)
	}
	fi, err := os.Stat(tmp.Name())
	if err != nil {
		return blob.Info{}, unavailable(err, "cannot stat object %q in bucket %q", key, bucket)
	}
	m := meta{Key: key, Size: n, ModTime: fi.ModTime().UnixNano()}
	m.SHA256, m.MD5 = digests.Sums()
	// The sidecar goes first, so the moment the data appears its digests are
	// already there.
	if err := s.writeMeta(bucket, key, m); err != nil {
		return blob.Info{}, err
	}
	if err := os.Rename(tmp.Name(), dst); err != nil {
		// Whatever object was at dst keeps its data; its sidecar now
		// describes another file, so it reads as digests-unknown.
		os.Remove(s.metaPath(bucket, key))
		return blob.Info{}, unavailable(err, "cannot move object %q in bucket %q into place", key, bucket)
	}
	committed = true
	if err := syncDir(dir); err != nil {
		return blob.Info{}, unavailable(err, "cannot flush the directory of object %q in bucket %q", key, bucket)
	}
	return s.info(bucket, key, fi, &m), nil
}

// createTemp creates the temp file for a Put in dir, creating dir first. A
// concurrent Delete may prune dir between the two steps, so it tries again.
func (s *Store) createTemp(bucket, key, dir string) (*os.File, error) {
	for attempt := 0; ; attempt++ {
		if err := os.MkdirAll(dir, 0o700); err != nil {
			if errors.Is(err, syscall.ENOTDIR) || errors.Is(err, syscall.EEXIST) {
				return nil, ota.Errorf(ota.CodeConflict, "object key %q in bucket %q runs through an existing object: the file store cannot hold both", key, bucket)
			}
			return nil, unavailable(err, "cannot create the directory for object %q in bucket %q", key, bucket)
		}
		tmp, err := os.CreateTemp(dir, tempPrefix+"*")
		if err == nil {
			return tmp, nil
		}
		if !errors.Is(err, fs.ErrNotExist) || attempt == 2 {
			return nil, unavailable(err, "cannot create a file for object %q in bucket %q", key, bucket)
		}
	}
}

// pruneEmptyDirs removes dir and its parents, up to the bucket directory, as
// long as they are empty, so a deleted "a/b" does not keep "a" from becoming
// an object. os.Remove refuses non-empty directories, which makes this safe
// against concurrent Puts (their temp file keeps the directory non-empty).
func (s *Store) pruneEmptyDirs(bucket, dir string) {
	top := filepath.Join(s.root, bucket)
	for dir != top && strings.HasPrefix(dir, top+string(filepath.Separator)) {
		if os.Remove(dir) != nil {
			return
		}
		dir = filepath.Dir(dir)
	}
}

// parallelWriter writes each chunk to all its writers at once: hashing with
// MD5 and SHA-256 then overlaps the write to disk instead of adding to it.
// Like io.MultiWriter it returns only after every writer is done with p.
type parallelWriter []io.Writer

func (pw parallelWriter) Write(p []byte) (int, error) {
	errs := make([]error, len(pw))
	var wg sync.WaitGroup
	for i, w := range pw[1:] {
		wg.Go(func() { errs[i+1] = writeAll(w, p) })
	}
	errs[0] = writeAll(pw[0], p)
	wg.Wait()
	if err := errors.Join(errs...); err != nil {
		return 0, err
	}
	return len(p), nil
}

func writeAll(w io.Writer, p []byte) error {
	n, err := w.Write(p)
	if err == nil && n != len(p) {
		err = io.ErrShortWrite
	}
	return err
}

func (s *Store) writeMeta(bucket, key string, m meta) error {
	p := s.metaPath(bucket, key)
	if err := os.MkdirAll(filepath.Dir(p), 0o700); err != nil {
		return unavailable(err, "cannot create the metadata directory of bucket %q", bucket)
	}
	b, err := json.Marshal(m)
	if err != nil {
		return ota.Internal(err, "encoding object metadata")
	}
	tmp, err := os.CreateTemp(filepath.Dir(p), tempPrefix+"*")
	if err != nil {
		return unavailable(err, "cannot write metadata of object %q in bucket %q", key, bucket)
	}
	_, err = tmp.Write(b)
	if err == nil {
		err = tmp.Sync()
	}
	if cerr := tmp.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		err = os.Rename(tmp.Name(), p)
	}
	if err != nil {
		os.Remove(tmp.Name())
		return unavailable(err, "cannot write metadata of object %q in bucket %q", key, bucket)
	}
	return nil
}

func syncDir(dir string) error {
	d, err := os.Open(dir)
	if err != nil {
		return err
	}
	defer d.Close()
	return d.Sync()
}

// readMeta returns the sidecar of bucket/key when it describes the file fi,
// nil otherwise.
func (s *Store) readMeta(bucket, key string, fi fs.FileInfo) *meta {
	ck := metaCacheKey(bucket, key)
	if v, ok := s.metas.Load(ck); ok {
		if m := v.(*meta); m.Size == fi.Size() && m.ModTime == fi.ModTime().UnixNano() {
			return m
		}
	}
	b, err := os.ReadFile(s.metaPath(bucket, key))
	if err != nil {
		return nil
	}
	var m meta
	if json.Unmarshal(b, &m) != nil || m.Key != key || m.Size != fi.Size() || m.ModTime != fi.ModTime().UnixNano() {
		return nil
	}
	if s.metaCount.Load() < maxCachedMetas {
		if _, replaced := s.metas.Swap(ck, &m); !replaced {
			s.metaCount.Add(1)
		}
	}
	return &m
}

// info builds the Info of a file. The ETag is the SHA-256 when known, and
// otherwise derived from size and modification time (still changes whenever
// the file does).
func (s *Store) info(bucket, key string, fi fs.FileInfo, m *meta) blob.Info {
	in := blob.Info{Bucket: bucket, Key: key, Size: fi.Size(), ModTime: fi.ModTime()}
	if m != nil {
		in.SHA256, in.MD5 = m.SHA256, m.MD5
		in.ETag = `"` + m.SHA256 + `"`
	} else {
		in.ETag = `"` + strconv.FormatInt(fi.Size(), 16) + "-" + strconv.FormatInt(fi.ModTime().UnixNano(), 16) + `"`
	}
	return in
}

type object struct {
	*os.File
	info blob.Info
}

func (o *object) Info() blob.Info { return o.info }

func (s *Store) Open(ctx context.Context, bucket, key string) (blob.Object, error) {
	if err := checkName(bucket, key); err != nil {
		return nil, err
	}
	f, err := os.Open(s.dataPath(bucket, key))
	if err != nil {
		return nil, pathError(err, bucket, key)
	}
	fi, err := f.Stat()
	if err != nil {
		f.Close()
		return nil, pathError(err, bucket, key)
	}
	if !fi.Mode().IsRegular() {
		f.Close()
		return nil, ota.NotFound("object", bucket+"/"+key)
	}
	return &object{File: f, info: s.info(bucket, key, fi, s.readMeta(bucket, key, fi))}, nil
}

func (s *Store) Stat(ctx context.Context, bucket, key string) (blob.Info, error) {
	if err := checkName(bucket, key); err != nil {
		return blob.Info{}, err
	}
	fi, err := os.Stat(s.dataPath(bucket, key))
	if err != nil {
		return blob.Info{}, pathError(err, bucket, key)
	}
	if !fi.Mode().IsRegular() {
		return blob.Info{}, ota.NotFound("object", bucket+"/"+key)
	}
	return s.info(bucket, key, fi, s.readMeta(bucket, key, fi)), nil
}

func (s *Store) Delete(ctx context.Context, bucket, key string) error {
	if err := checkName(bucket, key); err != nil {
		return err
	}
	p := s.dataPath(bucket, key)
	if fi, err := os.Lstat(p); err == nil && fi.IsDir() {
		return nil // a key prefix, not an object: nothing to delete
	}
	if err := os.Remove(p); err != nil && !errors.Is(err, fs.ErrNotExist) && !errors.Is(err, syscall.ENOTDIR) {
		return unavailable(err, "cannot delete object %q in bucket %q", key, bucket)
	}
	s.pruneEmptyDirs(bucket, filepath.Dir(p))
	if _, cached := s.metas.LoadAndDelete(metaCacheKey(bucket, key)); cached {
		s.metaCount.Add(-1)
	}
	if err := os.Remove(s.metaPath(bucket, key)); err != nil && !errors.Is(err, fs.ErrNotExist) {
		return unavailable(err, "cannot delete the metadata of object %q in bucket %q", key, bucket)
	}
	return nil
}
