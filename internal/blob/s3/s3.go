// Package s3 is the blob store on an S3-compatible server (AWS S3, MinIO,
// Versity Gateway, …) through minio-go, with path-style addressing. Devices
// download from presigned GET URLs, straight from the object store.
//
// Digests: SHA-256 and MD5 are known only after the last byte went up, when
// the object's metadata is already fixed. Rather than rewrite the object with
// a server-side copy (doubling the write of up to 1 GB), Put records them as
// object tags, which can be set after the upload, together with the upload's
// ETag. Stat and Open trust the tags only while the object still has that
// ETag; an object put by someone else, or replaced since, has empty digests
// and the caller hashes the content.
package s3

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strings"
	"sync"
	"time"

	"github.com/minio/minio-go/v7"
	"github.com/minio/minio-go/v7/pkg/credentials"
	"github.com/minio/minio-go/v7/pkg/s3utils"
	"github.com/minio/minio-go/v7/pkg/tags"

	"github.com/updraft-ota/updraft/internal/blob"
	"github.com/updraft-ota/updraft/internal/ota"
)

// DefaultPartSize is the multipart part size: the memory one Put holds, and
// with S3's 10 000-part limit it allows objects up to 160 GiB.
const DefaultPartSize = 16 << 20

// MaxURLLifetime is the longest presigned URL S3 (SigV4) accepts.
const MaxURLLifetime = 7 * 24 * time.Hour

// Object tags holding what Put measured. tagETag binds them to one upload.
const (
	tagSHA256 = "updraft-sha256"
	tagMD5    = "updraft-md5"
	tagETag   = "updraft-etag"
)

// Config says how to reach the S3 server.
type Config struct {
	Endpoint  string // host:port, without scheme
	AccessKey string
	SecretKey string
	Region    string // empty: asked from the server per bucket
	Secure    bool   // HTTPS
	PartSize  uint64 // 0 means DefaultPartSize; S3 needs at least 5 MiB
}

// Store is a blob.Store on an S3-compatible server.
type Store struct {
	client   *minio.Client
	region   string
	partSize uint64
	buckets  sync.Map // bucket name → struct{}: known to exist
}

var _ blob.Store = (*Store)(nil)

// New returns a store for the server in cfg. It makes no request: the first
// operation (or EnsureBucket) shows whether the server is reachable.
func New(ctx context.Context, cfg Config) (*Store, error) {
	if cfg.Endpoint == "" {
		return nil, errors.New("s3 blob store: no endpoint (host:port)")
	}
	if strings.Contains(cfg.Endpoint, "://") || strings.Contains(cfg.Endpoint, "/") {
		return nil, fmt.Errorf("s3 blob store: endpoint %q must be host:port without scheme or path (use secure=true for HTTPS)", cfg.Endpoint)
	}
	if cfg.AccessKey == "" || cfg.SecretKey == "" {
		return nil, errors.New("s3 blob store: access key and secret key are both required")
	}
	part := cfg.PartSize
	if part == 0 {
		part = DefaultPartSize
	}
	if part < 5<<20 {
		return nil, fmt.Errorf("s3 blob store: part size %d is below S3's minimum of 5 MiB", part)
	}
	client, err := minio.New(cfg.Endpoint, &minio.Options{
		Creds:        credentials.NewStaticV4(cfg.AccessKey, cfg.SecretKey, ""),
		Secure:       cfg.Secure,
		Region:       cfg.Region,
		BucketLookup: minio.BucketLookupPath,
	})
	if err != nil {
		return nil, fmt.Errorf("s3 blob store: %w", err)
	}
	return &Store{client: client, region: cfg.Region, partSize: part}, nil
}

// Client returns the underlying minio client (for tests and tools).
func (s *Store) Client() *minio.Client { return s.client }

func (s *Store) Close() error { return nil }

func checkName(bucket, key string) error {
	if err := ota.CheckBucketName("bucket", bucket); err != nil {
		return err
	}
	if err := s3utils.CheckValidBucketNameStrict(bucket); err != nil {
		return ota.Invalid("bucket", "bucket name %q is not valid on S3: %v", bucket, err)
	}
	return ota.CheckObjectKey("key", key)
}

// mapError translates a minio error for bucket/key into the contract's codes.
func mapError(err error, bucket, key, doing string) error {
	if err == nil {
		return nil
	}
	var oe *ota.Error
	if errors.As(err, &oe) || errors.Is(err, context.Canceled) || errors.Is(err, context.DeadlineExceeded) {
		return err
	}
	resp := minio.ToErrorResponse(err)
	notFound := func() error {
		if key == "" {
			return ota.NotFound("bucket", bucket)
		}
		return ota.NotFound("object", bucket+"/"+key)
	}
	switch resp.Code {
	case "NoSuchKey", "NoSuchBucket", "NotFound":
		return notFound()
	case "InvalidBucketName", "InvalidObjectName", "XMinioInvalidObjectName", "KeyTooLongError":
		return &ota.Error{Code: ota.CodeInvalid, Message: fmt.Sprintf("the S3 server refused bucket %q / key %q: %s", bucket, key, resp.Message), Err: err}
	case "AccessDenied", "InvalidAccessKeyId", "SignatureDoesNotMatch":
		return &ota.Error{Code: ota.CodeUnavailable, Message: fmt.Sprintf("the S3 server refused Updraft's credentials while %s: check the access key and secret key", doing), Err: err}
	}
	if resp.StatusCode == http.StatusNotFound {
		return notFound()
	}
	if key == "" {
		return &ota.Error{Code: ota.CodeUnavailable, Message: fmt.Sprintf("the S3 server failed while %s %q", doing, bucket), Err: err}
	}
	return &ota.Error{Code: ota.CodeUnavailable, Message: fmt.Sprintf("the S3 server failed while %s %q in bucket %q", doing, key, bucket), Err: err}
}

// EnsureBucket creates bucket unless it exists. It is also the cheapest way to
// check, at startup, that the server is reachable and accepts the credentials.
func (s *Store) EnsureBucket(ctx context.Context, bucket string) error {
	if _, ok := s.buckets.Load(bucket); ok {
		return nil
	}
	if err := checkName(bucket, "x"); err != nil {
		return err
	}
	exists, err := s.client.BucketExists(ctx, bucket)
	if err != nil {
		return mapError(err, bucket, "", "checking bucket")
	}
	if !exists {
		err := s.client.MakeBucket(ctx, bucket, minio.MakeBucketOptions{Region: s.region})
		if err != nil && minio.ToErrorResponse(err).Code != "BucketAlreadyOwnedByYou" {
			if minio.ToErrorResponse(err).Code == "BucketAlreadyExists" {
				return ota.Errorf(ota.CodeConflict, "S3 bucket %q belongs to another account: choose another bucket name", bucket)
			}
			return mapError(err, bucket, "", "creating bucket")
		}
	}
	s.buckets.Store(bucket, struct{}{})
	return nil
}

func (s *Store) Put(ctx context.Context, bucket, key string, r io.Reader, maxSize int64) (blob.Info, error) {
	if err := checkName(bucket, key); err != nil {
		return blob.Info{}, err
	}
	if maxSize <= 0 {
		return blob.Info{}, ota.Invalid("maxSize", "maximum size %d must be positive", maxSize)
	}
	if err := s.EnsureBucket(ctx, bucket); err != nil {
		return blob.Info{}, err
	}
	digests := blob.NewDigester()
	counted := blob.LimitReader(ctx, r, maxSize)
	// Size -1: minio uploads part by part from one PartSize buffer and, on
	// any error (ours included), aborts the multipart upload, so neither the
	// object nor its parts remain.
	up, err := s.client.PutObject(ctx, bucket, key, io.TeeReader(counted, digests), -1, minio.PutObjectOptions{
		PartSize:    s.partSize,
		ContentType: "application/octet-stream",
	})
	if err != nil {
		if errors.Is(err, blob.ErrTooLarge) {
			return blob.Info{}, blob.TooLarge(maxSize)
		}
		var readErr *ota.Error
		if errors.As(err, &readErr) { // the reader's verdict (malformed upload, client gone)
			return blob.Info{}, readErr
		}
		if ctx.Err() != nil {
			return blob.Info{}, ctx.Err()
		}
		return blob.Info{}, mapError(err, bucket, key, "storing")
	}
	info := blob.Info{Bucket: bucket, Key: key, Size: counted.N(), ETag: quote(up.ETag)}
	info.SHA256, info.MD5 = digests.Sums()
	// Best effort: without the tags the object is still complete and correct,
	// only Stat will report its digests as unknown.
	if t, err := tags.NewTags(map[string]string{tagSHA256: info.SHA256, tagMD5: info.MD5, tagETag: up.ETag}, true); err == nil {
		_ = s.client.PutObjectTagging(ctx, bucket, key, t, minio.PutObjectTaggingOptions{})
	}
	st, err := s.client.StatObject(ctx, bucket, key, minio.StatObjectOptions{})
	if err != nil {
		return blob.Info{}, mapError(err, bucket, key, "checking the stored object")
	}
	info.ModTime = st.LastModified
	return info, nil
}

func quote(etag string) string {
	if etag == "" || strings.HasPrefix(etag, `"`) {
		return etag
	}
	return `"` + etag + `"`
}

// info completes oi with the digests Put recorded, when they belong to this
// version of the object.
func (s *Store) info(ctx context.Context, bucket, key string, oi minio.ObjectInfo) (blob.Info, error) {
	in := blob.Info{Bucket: bucket, Key: key, Size: oi.Size, ETag: quote(oi.ETag), ModTime: oi.LastModified}
	t, err := s.client.GetObjectTagging(ctx, bucket, key, minio.GetObjectTaggingOptions{VersionID: oi.VersionID})
	if err != nil {
		if code := minio.ToErrorResponse(err).Code; code == "NoSuchTagSet" || code == "NotImplemented" {
			return in, nil
		}
		return blob.Info{}, mapError(err, bucket, key, "reading the tags of")
	}
	m := t.ToMap()
	if m[tagETag] == strings.Trim(oi.ETag, `"`) {
		in.SHA256, in.MD5 = m[tagSHA256], m[tagMD5]
	}
	return in, nil
}

func (s *Store) Stat(ctx context.Context, bucket, key string) (blob.Info, error) {
	if err := checkName(bucket, key); err != nil {
		return blob.Info{}, err
	}
	oi, err := s.client.StatObject(ctx, bucket, key, minio.StatObjectOptions{})
	if err != nil {
		return blob.Info{}, mapError(err, bucket, key, "reading")
	}
	return s.info(ctx, bucket, key, oi)
}

type object struct {
	*minio.Object
	info blob.Info
}

func (o *object) Info() blob.Info { return o.info }

func (s *Store) Open(ctx context.Context, bucket, key string) (blob.Object, error) {
	if err := checkName(bucket, key); err != nil {
		return nil, err
	}
	obj, err := s.client.GetObject(ctx, bucket, key, minio.GetObjectOptions{})
	if err != nil {
		return nil, mapError(err, bucket, key, "opening")
	}
	// GetObject is lazy; Stat makes the first request, so a missing object
	// fails here rather than on the first Read.
	oi, err := obj.Stat()
	if err != nil {
		obj.Close()
		return nil, mapError(err, bucket, key, "opening")
	}
	in, err := s.info(ctx, bucket, key, oi)
	if err != nil {
		obj.Close()
		return nil, err
	}
	return &object{Object: obj, info: in}, nil
}

func (s *Store) Delete(ctx context.Context, bucket, key string) error {
	if err := checkName(bucket, key); err != nil {
		return err
	}
	err := s.client.RemoveObject(ctx, bucket, key, minio.RemoveObjectOptions{})
	if err == nil || ota.ErrorCode(mapError(err, bucket, key, "deleting")) == ota.CodeNotFound {
		return nil
	}
	return mapError(err, bucket, key, "deleting")
}

// SignedURL returns a presigned GET URL. S3 limits its lifetime to 7 days.
func (s *Store) SignedURL(ctx context.Context, bucket, key string, ttl time.Duration) (string, error) {
	if err := checkName(bucket, key); err != nil {
		return "", err
	}
	if ttl < time.Second || ttl > MaxURLLifetime {
		return "", ota.Invalid("ttl", "URL lifetime %v must be between 1s and %v on S3", ttl, MaxURLLifetime)
	}
	u, err := s.client.PresignedGetObject(ctx, bucket, key, ttl, nil)
	if err != nil {
		return "", mapError(err, bucket, key, "signing a URL for")
	}
	return u.String(), nil
}
