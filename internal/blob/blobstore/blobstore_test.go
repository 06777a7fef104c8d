package blobstore_test

import (
	"context"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/updraft-ota/updraft/internal/blob/blobstore"
	blobfs "github.com/updraft-ota/updraft/internal/blob/fs"
	blobs3 "github.com/updraft-ota/updraft/internal/blob/s3"
	"github.com/updraft-ota/updraft/internal/testenv"
)

var key = []byte("blobstore-test-signing-key")

// clearS3Env hides credentials the environment running the tests may have.
func clearS3Env(t *testing.T) {
	for _, v := range []string{"UPDRAFT_S3_ACCESS_KEY", "UPDRAFT_S3_SECRET_KEY", "AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY"} {
		t.Setenv(v, "")
	}
}

func TestOpenFile(t *testing.T) {
	ctx := context.Background()
	data := t.TempDir()
	wd := t.TempDir()
	t.Chdir(wd)
	for _, tc := range []struct{ url, wantRoot string }{
		{"file:", filepath.Join(data, "blobs")},
		{"file:rel/blobs", filepath.Join(wd, "rel", "blobs")},
		{"file:" + filepath.Join(data, "abs"), filepath.Join(data, "abs")},
		{"file://" + filepath.Join(data, "abs2"), filepath.Join(data, "abs2")},
		{"file://localhost" + filepath.Join(data, "abs3"), filepath.Join(data, "abs3")},
	} {
		st, bucket, h, err := blobstore.Open(ctx, tc.url, blobstore.Options{DataDir: data, SigningKey: key, PublicURL: "http://ota.example"})
		if err != nil {
			t.Errorf("Open(%q): %v", tc.url, err)
			continue
		}
		fsst, ok := st.(*blobfs.Store)
		if !ok || fsst.Root() != tc.wantRoot || bucket != "updraft" || h == nil {
			t.Errorf("Open(%q) = %T root %q, bucket %q, handler %v; want fs at %q, bucket updraft, a handler", tc.url, st, fsst.Root(), bucket, h != nil, tc.wantRoot)
		}
		if _, err := os.Stat(tc.wantRoot); err != nil {
			t.Errorf("Open(%q) did not create %s: %v", tc.url, tc.wantRoot, err)
		}
	}
}

func TestOpenFileServesItsURLs(t *testing.T) {
	ctx := context.Background()
	var h http.Handler
	mux := http.NewServeMux()
	mux.HandleFunc(blobfs.URLPrefix, func(w http.ResponseWriter, r *http.Request) { h.ServeHTTP(w, r) })
	srv := httptest.NewServer(mux)
	defer srv.Close()
	st, bucket, h, err := blobstore.Open(ctx, "file:", blobstore.Options{DataDir: t.TempDir(), SigningKey: key, PublicURL: srv.URL})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := st.Put(ctx, bucket, "a/b.bin", strings.NewReader("payload"), 100); err != nil {
		t.Fatal(err)
	}
	u, err := st.SignedURL(ctx, bucket, "a/b.bin", time.Minute)
	if err != nil {
		t.Fatal(err)
	}
	resp, err := http.Get(u)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK || resp.ContentLength != 7 {
		t.Errorf("GET %s: %d, %d bytes", u, resp.StatusCode, resp.ContentLength)
	}
}

func TestOpenErrors(t *testing.T) {
	clearS3Env(t)
	ctx := context.Background()
	full := blobstore.Options{DataDir: t.TempDir(), SigningKey: key, PublicURL: "http://ota.example"}
	for _, tc := range []struct {
		url  string
		opts blobstore.Options
		want string // in the error message
	}{
		{"", full, "no blob store URL"},
		{"gs://bucket", full, `scheme "gs" is not supported`},
		{"/var/blobs", full, "write file:/var/blobs"},
		{"file:", blobstore.Options{SigningKey: key, PublicURL: "http://x"}, "data directory"},
		{"file:x", blobstore.Options{SigningKey: key}, "--public-url"},
		{"file:x", blobstore.Options{PublicURL: "http://x"}, "signing key"},
		{"file:x?mode=1", full, "no query"},
		{"file://otherhost/x", full, "must be local"},
		{"s3://", full, "bucket name"},
		{"s3://Bad_Bucket?endpoint=h:1", full, "bucket name"},
		{"s3://bucket/prefix?endpoint=h:1", full, "path after the bucket"},
		{"s3://key:secret@bucket?endpoint=h:1", full, "credentials"},
		{"s3://bucket?endpoint=h:1&acess_key=a", full, `unknown parameter "acess_key"`},
		{"s3://bucket?endpoint=h:1&region=a&region=b", full, "given 2 times"},
		{"s3://bucket?endpoint=h:1&secure=maybe", full, `secure="maybe"`},
		{"s3://bucket?endpoint=h:1", full, "no S3 credentials"},
		{"s3://bucket?endpoint=h:1&access_key=a", full, "must both be set"},
		{"s3://bucket?endpoint=http://h:1&access_key=a&secret_key=b", full, "without scheme"},
	} {
		_, _, _, err := blobstore.Open(ctx, tc.url, tc.opts)
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("Open(%q): %v, want an error containing %q", tc.url, err, tc.want)
		}
	}
}

func TestOpenS3SecretNotInErrors(t *testing.T) {
	clearS3Env(t)
	_, _, _, err := blobstore.Open(context.Background(), "s3://bucket?endpoint=h:1&access_key=a&secret_key=TOPSECRET&bogus=1", blobstore.Options{})
	if err == nil || strings.Contains(err.Error(), "TOPSECRET") {
		t.Errorf("error %v must exist and not contain the secret", err)
	}
}

func TestOpenS3(t *testing.T) {
	srv := testenv.S3Server(t)
	ctx := context.Background()
	bucket := "blobstore-open-" + strings.ToLower(strings.ReplaceAll(time.Now().Format("150405.000000"), ".", ""))
	base := "s3://" + bucket + "?endpoint=" + srv.Endpoint + "&region=" + srv.Region + "&secure=false"

	check := func(url string) {
		t.Helper()
		st, gotBucket, h, err := blobstore.Open(ctx, url, blobstore.Options{})
		if err != nil {
			t.Fatalf("Open: %v", err)
		}
		if _, ok := st.(*blobs3.Store); !ok || gotBucket != bucket || h != nil {
			t.Fatalf("Open = %T, %q, handler %v; want an s3 store, %q, no handler", st, gotBucket, h != nil, bucket)
		}
		// Open created the bucket: a Stat reaches it and finds no object.
		if ok, err := st.(*blobs3.Store).Client().BucketExists(ctx, bucket); err != nil || !ok {
			t.Fatalf("bucket %s after Open: exists=%v, %v", bucket, ok, err)
		}
	}

	clearS3Env(t)
	check(base + "&access_key=" + srv.AccessKey + "&secret_key=" + srv.SecretKey)
	t.Setenv("UPDRAFT_S3_ACCESS_KEY", srv.AccessKey)
	t.Setenv("UPDRAFT_S3_SECRET_KEY", srv.SecretKey)
	check(base)
	clearS3Env(t)
	t.Setenv("AWS_ACCESS_KEY_ID", srv.AccessKey)
	t.Setenv("AWS_SECRET_ACCESS_KEY", srv.SecretKey)
	check(base)

	// URL credentials win over the environment's.
	t.Setenv("AWS_SECRET_ACCESS_KEY", "wrong")
	check(base + "&access_key=" + srv.AccessKey + "&secret_key=" + srv.SecretKey)
	// And wrong ones fail at Open, naming the problem.
	_, _, _, err := blobstore.Open(ctx, base, blobstore.Options{})
	if err == nil || !strings.Contains(err.Error(), "credentials") {
		t.Errorf("Open with a wrong secret: %v, want a credentials error", err)
	}

	st, err := blobs3.New(ctx, blobs3.Config{Endpoint: srv.Endpoint, AccessKey: srv.AccessKey, SecretKey: srv.SecretKey, Region: srv.Region})
	if err == nil {
		err = st.Client().RemoveBucket(ctx, bucket)
	}
	if err != nil {
		t.Logf("cleanup: %v", err)
	}
}
