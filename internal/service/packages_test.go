package service_test

import (
	"context"
	"crypto/md5"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"io"
	"net/url"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/updraft-ota/updraft/internal/ota"
	"github.com/updraft-ota/updraft/internal/store"
)

const fdnContent = "firmware image v2: 0123456789"

func sha256hex(s string) string { h := sha256.Sum256([]byte(s)); return hex.EncodeToString(h[:]) }
func fdnMD5(s string) string {
	h := md5.Sum([]byte(s))
	return hex.EncodeToString(h[:])
}

func fdnPackage(name string) ota.Package {
	return ota.Package{ProductKey: "sensor", Name: name, Version: "2.0", SourceVersions: []string{"1.0"}}
}

func TestCreatePackage(t *testing.T) {
	e := newFoundationEnv(t)
	e.product(e.a, "sensor")

	pkg, err := e.svc.CreatePackage(e.ctx, e.a, fdnPackage("fw-2"), `C:\builds\fw-2.0.bin`, strings.NewReader(fdnContent))
	if err != nil {
		t.Fatal(err)
	}
	want := ota.Package{
		ID: pkg.ID, TenantID: "acme", ProductKey: "sensor", Module: ota.DefaultModule, Kind: ota.KindFirmware,
		Name: "fw-2", Version: "2.0", SourceVersions: []string{"1.0"}, SignMethod: ota.SignSHA256, Sign: sha256hex(fdnContent),
		VerifyStatus: ota.VerifyNotNeeded, Bucket: fdnBucket, Key: "packages/" + pkg.ID + "/fw-2.0.bin", FileName: "fw-2.0.bin",
		Size: int64(len(fdnContent)), SHA256: sha256hex(fdnContent), MD5: fdnMD5(fdnContent), CreatedAt: e.svc.Now(), ModifiedAt: e.svc.Now(),
	}
	if !fdnEqualPackages(pkg, want) {
		t.Errorf("created\n%+v\nwant\n%+v", pkg, want)
	}
	stored, err := e.svc.GetPackage(e.ctx, e.a, pkg.ID)
	if err != nil || !fdnEqualPackages(stored, want) {
		t.Errorf("stored\n%+v, %v\nwant\n%+v", stored, err, want)
	}
	if got := e.dataFiles(); len(got) != 1 || got[0] != fdnBucket+"/packages/"+pkg.ID+"/fw-2.0.bin" {
		t.Errorf("blob files %v", got)
	}

	// Open streams the fdnContent, with Range support (Seek).
	_, obj, err := e.svc.OpenPackage(e.ctx, e.a, pkg.ID)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := obj.Seek(9, io.SeekStart); err != nil {
		t.Fatal(err)
	}
	rest, _ := io.ReadAll(obj)
	obj.Close()
	if string(rest) != fdnContent[9:] {
		t.Errorf("OpenPackage content from byte 9 = %q", rest)
	}
	_, _, err = e.svc.OpenPackage(e.ctx, e.b, pkg.ID)
	fdnWantCode(t, err, ota.CodeNotFound, "")

	u, err := e.svc.PackageURL(e.ctx, pkg)
	if err != nil {
		t.Fatal(err)
	}
	pu, err := url.Parse(u)
	if err != nil || pu.Host != "127.0.0.1:1" || !strings.Contains(pu.Path, pkg.ID) {
		t.Errorf("PackageURL = %q", u)
	}
	// Another tenant sees nothing.
	_, err = e.svc.GetPackage(e.ctx, e.b, pkg.ID)
	fdnWantCode(t, err, ota.CodeNotFound, "package")
	list, n, err := e.svc.ListPackages(e.ctx, e.b, store.PackageFilter{}, store.Page{})
	if err != nil || n != 0 || len(list) != 0 {
		t.Errorf("other tenant lists %d packages, %v", n, err)
	}
	list, n, err = e.svc.ListPackages(e.ctx, e.a, store.PackageFilter{TenantID: "other"}, store.Page{})
	if err != nil || n != 1 || len(list) != 1 {
		t.Errorf("a TenantID in the filter must be ignored: %d, %v", n, err)
	}
}

func fdnEqualPackages(a, b ota.Package) bool {
	norm := func(p ota.Package) ota.Package {
		p.CreatedAt, p.ModifiedAt = p.CreatedAt.UTC(), p.ModifiedAt.UTC()
		if len(p.SourceVersions) == 0 {
			p.SourceVersions = nil
		}
		if len(p.Tags) == 0 {
			p.Tags = nil
		}
		return p
	}
	a, b = norm(a), norm(b)
	return a.ID == b.ID && a.TenantID == b.TenantID && a.ProductKey == b.ProductKey && a.Module == b.Module &&
		a.Kind == b.Kind && a.Name == b.Name && a.Version == b.Version &&
		strings.Join(a.SourceVersions, ",") == strings.Join(b.SourceVersions, ",") &&
		a.SignMethod == b.SignMethod && a.Sign == b.Sign && a.VerifyStatus == b.VerifyStatus && a.NeedVerify == b.NeedVerify &&
		a.Bucket == b.Bucket && a.Key == b.Key && a.External == b.External && a.FileName == b.FileName &&
		a.Size == b.Size && a.SHA256 == b.SHA256 && a.MD5 == b.MD5 &&
		a.CreatedAt.Equal(b.CreatedAt) && a.ModifiedAt.Equal(b.ModifiedAt)
}

func TestCreatePackageSignAndVerify(t *testing.T) {
	e := newFoundationEnv(t)
	e.product(e.a, "sensor")

	in := fdnPackage("md5-pkg")
	in.SignMethod = ota.SignMD5
	in.NeedVerify = true
	pkg, err := e.svc.CreatePackage(e.ctx, e.a, in, "a.zip", strings.NewReader(fdnContent))
	if err != nil {
		t.Fatal(err)
	}
	if pkg.Sign != fdnMD5(fdnContent) || pkg.VerifyStatus != ota.VerifyPending {
		t.Errorf("md5 package sign %q status %q", pkg.Sign, pkg.VerifyStatus)
	}

	in = fdnPackage("declared")
	in.Sign = strings.ToUpper(sha256hex(fdnContent))
	pkg, err = e.svc.CreatePackage(e.ctx, e.a, in, "b.tar.gz", strings.NewReader(fdnContent))
	if err != nil || pkg.Sign != sha256hex(fdnContent) {
		t.Errorf("declared matching sign: %q, %v", pkg.Sign, err)
	}
}

// Every way CreatePackage can fail leaves no row and no file.
func TestCreatePackageRejectsLeaveNothing(t *testing.T) {
	e := newFoundationEnv(t)
	e.product(e.a, "sensor")
	e.product(e.b, "camera")
	if _, err := e.svc.CreatePackage(e.ctx, e.a, fdnPackage("taken"), "t.bin", strings.NewReader("taken")); err != nil {
		t.Fatal(err)
	}
	baseFiles, baseData := e.blobFiles(), e.dataFiles()

	// Rejected before a byte is read.
	early := []struct {
		name string
		in   ota.Package
		file string
		code ota.Code
		msg  string
	}{
		{"bad version", ota.Package{ProductKey: "sensor", Name: "x", Version: "2 0"}, "x.bin", ota.CodeInvalid, "version"},
		{"no name", ota.Package{ProductKey: "sensor", Version: "2.0"}, "x.bin", ota.CodeInvalid, "package name"},
		{"bad sign format", ota.Package{ProductKey: "sensor", Name: "x", Version: "2.0", Sign: "abc"}, "x.bin", ota.CodeInvalid, "64 hex"},
		{"module on firmware", ota.Package{ProductKey: "sensor", Name: "x", Version: "2.0", Module: "mcu"}, "x.bin", ota.CodeInvalid, "kind"},
		{"file type", fdnPackage("x"), "x.txt", ota.CodeInvalid, "unsupported type"},
		{"no file name", fdnPackage("x"), "", ota.CodeInvalid, "file name"},
		{"suffix only", fdnPackage("x"), ".bin", ota.CodeInvalid, "unsupported type"},
		{"missing product", ota.Package{ProductKey: "nope", Name: "x", Version: "2.0"}, "x.bin", ota.CodeNotFound, `product "nope"`},
		{"other tenant's product", ota.Package{ProductKey: "camera", Name: "x", Version: "2.0"}, "x.bin", ota.CodeNotFound, `product "camera"`},
		{"missing module", ota.Package{ProductKey: "sensor", Kind: ota.KindModule, Module: "mcu", Name: "x", Version: "2.0"}, "x.bin", ota.CodeNotFound, `module "mcu"`},
		{"duplicate name", fdnPackage("taken"), "x.bin", ota.CodeConflict, "already exists"},
		{"bad region", func() ota.Package { p := fdnPackage("x"); p.Region = "eu west"; return p }(), "x.bin", ota.CodeInvalid, "region"},
	}
	for _, tc := range early {
		t.Run(tc.name, func(t *testing.T) {
			_, err := e.svc.CreatePackage(e.ctx, e.a, tc.in, tc.file, fdnUntouchable{t})
			fdnWantCode(t, err, tc.code, tc.msg)
			e.assertNothingLeft(1, baseFiles)
		})
	}

	// Rejected after the upload: the blob goes again.
	t.Run("sign mismatch", func(t *testing.T) {
		in := fdnPackage("x")
		in.Sign = sha256hex("something else")
		_, err := e.svc.CreatePackage(e.ctx, e.a, in, "x.bin", strings.NewReader(fdnContent))
		fdnWantCode(t, err, ota.CodeSignMismatch, "does not match")
		e.assertNothingLeft(1, baseFiles)
	})
	t.Run("md5 sign mismatch", func(t *testing.T) {
		in := fdnPackage("x")
		in.SignMethod, in.Sign = ota.SignMD5, fdnMD5("other")
		_, err := e.svc.CreatePackage(e.ctx, e.a, in, "x.bin", strings.NewReader(fdnContent))
		fdnWantCode(t, err, ota.CodeSignMismatch, "")
		e.assertNothingLeft(1, baseFiles)
	})
	t.Run("empty file", func(t *testing.T) {
		_, err := e.svc.CreatePackage(e.ctx, e.a, fdnPackage("x"), "x.bin", strings.NewReader(""))
		fdnWantCode(t, err, ota.CodeInvalid, "empty")
		e.assertNothingLeft(1, baseFiles)
	})
	t.Run("upload breaks", func(t *testing.T) {
		_, err := e.svc.CreatePackage(e.ctx, e.a, fdnPackage("x"), "x.bin", &fdnFailingReader{n: 100 << 10, err: errors.New("connection reset")})
		if err == nil {
			t.Fatal("a broken upload was accepted")
		}
		e.assertNothingLeft(1, baseFiles)
	})
	t.Run("request canceled", func(t *testing.T) {
		ctx, cancel := context.WithCancel(e.ctx)
		r := &fdnOnEOF{r: strings.NewReader(fdnContent), fn: cancel}
		_, err := e.svc.CreatePackage(ctx, e.a, fdnPackage("x"), "x.bin", io.MultiReader(r, &fdnFailingReader{err: context.Canceled}))
		if err == nil {
			t.Fatal("a canceled upload was accepted")
		}
		e.assertNothingLeft(1, baseFiles)
	})
	t.Run("name taken during the upload", func(t *testing.T) {
		// Another request records the same name while this file streams in:
		// the store refuses the row and the uploaded blob is removed.
		var rivalID string
		r := &fdnOnEOF{r: strings.NewReader(fdnContent), fn: func() {
			rival, err := e.svc.CreatePackage(context.Background(), e.a, fdnPackage("racy"), "r.bin", strings.NewReader("rival"))
			if err != nil {
				t.Errorf("rival upload: %v", err)
			}
			rivalID = rival.ID
		}}
		_, err := e.svc.CreatePackage(e.ctx, e.a, fdnPackage("racy"), "x.bin", r)
		fdnWantCode(t, err, ota.CodeConflict, "already exists")
		rival, err := e.svc.GetPackage(e.ctx, e.a, rivalID)
		if err != nil {
			t.Fatal(err)
		}
		want := append([]string{fdnBucket + "/" + rival.Key}, baseData...)
		sort.Strings(want)
		if got := e.dataFiles(); strings.Join(got, ",") != strings.Join(want, ",") {
			t.Errorf("data files %v, want only the first package's and the rival's %v", got, want)
		}
		if n := e.packageCount(); n != 2 {
			t.Errorf("package rows = %d, want 2", n)
		}
	})
}

func TestModulePackage(t *testing.T) {
	e := newFoundationEnv(t)
	e.product(e.a, "sensor")
	if _, err := e.svc.CreateModule(e.ctx, e.a, ota.Module{ProductKey: "sensor", Name: "mcu"}); err != nil {
		t.Fatal(err)
	}
	pkg, err := e.svc.CreatePackage(e.ctx, e.a, ota.Package{ProductKey: "sensor", Kind: ota.KindModule, Module: "mcu", Name: "mcu-2", Version: "2.0"},
		"mcu.img", strings.NewReader(fdnContent))
	if err != nil || pkg.Module != "mcu" {
		t.Fatalf("module package = %+v, %v", pkg, err)
	}
}

func TestPutAndRegisterObject(t *testing.T) {
	e := newFoundationEnv(t)
	e.product(e.a, "sensor")

	info, err := e.svc.PutObject(e.ctx, e.a, "vendor-drop", "fw/2.0/image.bin", strings.NewReader(fdnContent))
	if err != nil || info.Size != int64(len(fdnContent)) || info.SHA256 != sha256hex(fdnContent) {
		t.Fatalf("PutObject = %+v, %v", info, err)
	}
	in := fdnPackage("obs")
	in.Region = "cn-north-4"
	pkg, err := e.svc.RegisterObject(e.ctx, e.a, in, "vendor-drop", "fw/2.0/image.bin")
	if err != nil {
		t.Fatal(err)
	}
	if !pkg.External || pkg.Bucket != "vendor-drop" || pkg.Key != "fw/2.0/image.bin" || pkg.FileName != "image.bin" ||
		pkg.Size != int64(len(fdnContent)) || pkg.SHA256 != sha256hex(fdnContent) || pkg.MD5 != fdnMD5(fdnContent) || pkg.Sign != sha256hex(fdnContent) || pkg.Region != "cn-north-4" {
		t.Errorf("registered %+v", pkg)
	}

	// A used object cannot be replaced under the package.
	_, err = e.svc.PutObject(e.ctx, e.a, "vendor-drop", "fw/2.0/image.bin", fdnUntouchable{t})
	fdnWantCode(t, err, ota.CodeConflict, "used by 1 package")

	// Deleting an external package keeps its object.
	before := e.blobFiles()
	if err := e.svc.DeletePackage(e.ctx, e.a, pkg.ID); err != nil {
		t.Fatal(err)
	}
	e.assertNothingLeft(0, before)
}

func TestRegisterObjectRejects(t *testing.T) {
	e := newFoundationEnv(t)
	e.product(e.a, "sensor")
	if _, err := e.svc.PutObject(e.ctx, e.a, "drop", "a.bin", strings.NewReader(fdnContent)); err != nil {
		t.Fatal(err)
	}
	uploaded, err := e.svc.CreatePackage(e.ctx, e.a, fdnPackage("uploaded"), "u.bin", strings.NewReader("uploaded"))
	if err != nil {
		t.Fatal(err)
	}
	base := e.blobFiles()
	badSign := fdnPackage("x")
	badSign.Sign = sha256hex("not it")
	cases := []struct {
		name        string
		in          ota.Package
		bucket, key string
		code        ota.Code
		msg         string
	}{
		{"missing object", fdnPackage("x"), "drop", "b.bin", ota.CodeNotFound, `object "b.bin" not found in bucket "drop"`},
		{"missing bucket", fdnPackage("x"), "nobucket", "a.bin", ota.CodeNotFound, `bucket "nobucket"`},
		{"bad bucket", fdnPackage("x"), "Drop", "a.bin", ota.CodeInvalid, "bucket name"},
		{"bad key", fdnPackage("x"), "drop", "../a.bin", ota.CodeInvalid, "object key"},
		{"another package's upload", fdnPackage("x"), fdnBucket, uploaded.Key, ota.CodeInvalid, "reserved"},
		{"sign mismatch", badSign, "drop", "a.bin", ota.CodeSignMismatch, ""},
		{"duplicate name", fdnPackage("uploaded"), "drop", "a.bin", ota.CodeConflict, "already exists"},
		{"invalid package", ota.Package{ProductKey: "sensor", Name: "x"}, "drop", "a.bin", ota.CodeInvalid, "version"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			_, err := e.svc.RegisterObject(e.ctx, e.a, tc.in, tc.bucket, tc.key)
			fdnWantCode(t, err, tc.code, tc.msg)
			e.assertNothingLeft(1, base) // the object itself stays: it is not ours
		})
	}
	_, err = e.svc.RegisterObject(e.ctx, e.b, fdnPackage("x"), "drop", "a.bin")
	fdnWantCode(t, err, ota.CodeNotFound, "product")

	_, err = e.svc.PutObject(e.ctx, e.a, fdnBucket, "packages/"+uploaded.ID+"/u.bin", fdnUntouchable{t})
	fdnWantCode(t, err, ota.CodeInvalid, "reserved")
	_, err = e.svc.PutObject(e.ctx, e.a, "x", "a.bin", fdnUntouchable{t})
	fdnWantCode(t, err, ota.CodeInvalid, "bucket name")
}

// A bucket belongs to the first tenant that puts or registers an object in
// it: another tenant can neither replace nor adopt (and then download) its
// objects, and nothing is written when it tries.
func TestObjectBucketsAreTenantScoped(t *testing.T) {
	e := newFoundationEnv(t)
	e.product(e.a, "sensor")
	e.product(e.b, "meter")
	if _, err := e.svc.PutObject(e.ctx, e.a, "acme-drop", "fw.bin", strings.NewReader(fdnContent)); err != nil {
		t.Fatal(err)
	}
	before := e.blobFiles()
	theirs := fdnPackage("stolen")
	theirs.ProductKey = "meter"

	_, err := e.svc.PutObject(e.ctx, e.b, "acme-drop", "fw.bin", fdnUntouchable{t})
	fdnWantCode(t, err, ota.CodeForbidden, `bucket "acme-drop" belongs to another tenant`)
	_, err = e.svc.PutObject(e.ctx, e.b, "acme-drop", "new.bin", fdnUntouchable{t})
	fdnWantCode(t, err, ota.CodeForbidden, "use a bucket of your own")
	_, err = e.svc.RegisterObject(e.ctx, e.b, theirs, "acme-drop", "fw.bin")
	fdnWantCode(t, err, ota.CodeForbidden, `bucket "acme-drop" belongs to another tenant`)
	e.assertNothingLeft(0, before)
	if got, err := os.ReadFile(filepath.Join(e.blobDir, "acme-drop", "fw.bin")); err != nil || string(got) != fdnContent {
		t.Fatalf("acme's object after the other tenant's attempts = %q, %v; want it unchanged", got, err)
	}

	// The owner keeps using its bucket.
	if _, err := e.svc.PutObject(e.ctx, e.a, "acme-drop", "fw-2.bin", strings.NewReader(fdnContent)); err != nil {
		t.Fatalf("owner's second PutObject: %v", err)
	}
	pkg, err := e.svc.RegisterObject(e.ctx, e.a, fdnPackage("fw"), "acme-drop", "fw.bin")
	if err != nil || pkg.Bucket != "acme-drop" || pkg.SHA256 != sha256hex(fdnContent) {
		t.Fatalf("owner's RegisterObject = %+v, %v", pkg, err)
	}

	// The other tenant works in a bucket of its own, which acme cannot use.
	if _, err := e.svc.PutObject(e.ctx, e.b, "other-drop", "fw.bin", strings.NewReader(fdnContent)); err != nil {
		t.Fatal(err)
	}
	if _, err := e.svc.RegisterObject(e.ctx, e.b, theirs, "other-drop", "fw.bin"); err != nil {
		t.Fatal(err)
	}
	_, err = e.svc.PutObject(e.ctx, e.a, "other-drop", "fw.bin", fdnUntouchable{t})
	fdnWantCode(t, err, ota.CodeForbidden, `bucket "other-drop" belongs to another tenant`)
}

// A RegisterObject naming an object nobody put through the API (copied into
// the store by hand) claims its bucket too.
func TestRegisterObjectClaimsBucket(t *testing.T) {
	e := newFoundationEnv(t)
	e.product(e.a, "sensor")
	e.product(e.b, "meter")
	path := filepath.Join(e.blobDir, "manual", "fw.bin")
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(path, []byte(fdnContent), 0o644); err != nil {
		t.Fatal(err)
	}
	theirs := fdnPackage("theirs")
	theirs.ProductKey = "meter"
	if _, err := e.svc.RegisterObject(e.ctx, e.b, theirs, "manual", "fw.bin"); err != nil {
		t.Fatal(err)
	}
	_, err := e.svc.RegisterObject(e.ctx, e.a, fdnPackage("mine"), "manual", "fw.bin")
	fdnWantCode(t, err, ota.CodeForbidden, "belongs to another tenant")
	if n := e.packageCount(); n != 1 {
		t.Fatalf("package rows = %d, want 1 (the refused registration wrote one)", n)
	}
}

// The default bucket holds every tenant's uploads under packages/<id>/: no
// tenant may own it, so the object APIs refuse it whole.
func TestObjectAPIsRefuseDefaultBucket(t *testing.T) {
	e := newFoundationEnv(t)
	e.product(e.a, "sensor")
	e.product(e.b, "meter")
	uploaded, err := e.svc.CreatePackage(e.ctx, e.a, fdnPackage("uploaded"), "u.bin", strings.NewReader(fdnContent))
	if err != nil {
		t.Fatal(err)
	}
	before := e.blobFiles()
	theirs := fdnPackage("adopted")
	theirs.ProductKey = "meter"

	_, err = e.svc.PutObject(e.ctx, e.a, fdnBucket, "elsewhere/fw.bin", fdnUntouchable{t})
	fdnWantCode(t, err, ota.CodeInvalid, `bucket "updraft" is reserved for packages uploaded through the API: use a bucket of your own`)
	_, err = e.svc.PutObject(e.ctx, e.b, fdnBucket, uploaded.Key, fdnUntouchable{t})
	fdnWantCode(t, err, ota.CodeInvalid, "reserved for uploaded packages")
	_, err = e.svc.RegisterObject(e.ctx, e.b, theirs, fdnBucket, uploaded.Key)
	fdnWantCode(t, err, ota.CodeInvalid, "reserved for uploaded packages")
	_, err = e.svc.RegisterObject(e.ctx, e.a, fdnPackage("again"), fdnBucket, "elsewhere/fw.bin")
	fdnWantCode(t, err, ota.CodeInvalid, "use a bucket of your own")
	e.assertNothingLeft(1, before)

	// None of that claimed the default bucket for anyone.
	owner, err := e.st.ClaimBucket(e.ctx, "probe", fdnBucket, e.svc.Now())
	if err != nil || owner != "probe" {
		t.Fatalf("the default bucket's owner = %q, %v; want no owner before this probe", owner, err)
	}
}

// An object copied into the store by hand has no recorded digests: they are
// computed by reading it.
func TestRegisterObjectHashesUnknownObject(t *testing.T) {
	e := newFoundationEnv(t)
	e.product(e.a, "sensor")
	path := filepath.Join(e.blobDir, "manual", "dir", "fw.bin")
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(path, []byte(fdnContent), 0o644); err != nil {
		t.Fatal(err)
	}
	in := fdnPackage("manual")
	in.SignMethod, in.Sign = ota.SignMD5, fdnMD5(fdnContent)
	pkg, err := e.svc.RegisterObject(e.ctx, e.a, in, "manual", "dir/fw.bin")
	if err != nil {
		t.Fatal(err)
	}
	if pkg.SHA256 != sha256hex(fdnContent) || pkg.MD5 != fdnMD5(fdnContent) || pkg.Size != int64(len(fdnContent)) {
		t.Errorf("hashed %+v", pkg)
	}
}

func TestDeletePackage(t *testing.T) {
	e := newFoundationEnv(t)
	e.product(e.a, "sensor")
	pkg, err := e.svc.CreatePackage(e.ctx, e.a, fdnPackage("fw"), "fw.bin", strings.NewReader(fdnContent))
	if err != nil {
		t.Fatal(err)
	}
	err = e.svc.DeletePackage(e.ctx, e.b, pkg.ID)
	fdnWantCode(t, err, ota.CodeNotFound, "")
	err = e.svc.DeletePackage(e.ctx, e.a, "000000000000000000000000")
	fdnWantCode(t, err, ota.CodeNotFound, "")

	job := ota.Job{ID: ota.NewID(e.svc.Now()), TenantID: "acme", PackageID: pkg.ID, ProductKey: "sensor", Module: ota.DefaultModule,
		Type: ota.JobUpgrade, Selection: ota.SelectStatic, Target: ota.Target{All: true}, MaxConcurrency: 10,
		TimeoutSeconds: 7200, Overwrite: ota.OverwriteKeep, CreatedAt: e.svc.Now(), UpdatedAt: e.svc.Now()}
	before := e.blobFiles()
	for _, state := range []ota.JobState{ota.JobPlanned, ota.JobRunning, ota.JobPaused} {
		job.State = state
		if state == ota.JobPlanned {
			if err := e.st.CreateJob(e.ctx, job); err != nil {
				t.Fatal(err)
			}
		} else if err := e.st.UpdateJob(e.ctx, job, fdnPrevState(state)); err != nil {
			t.Fatal(err)
		}
		err := e.svc.DeletePackage(e.ctx, e.a, pkg.ID)
		fdnWantCode(t, err, ota.CodeConflict, string(state))
		e.assertNothingLeft(1, before)
	}
	job.State = ota.JobCompleted
	if err := e.st.UpdateJob(e.ctx, job, ota.JobPaused); err != nil {
		t.Fatal(err)
	}
	if err := e.svc.DeletePackage(e.ctx, e.a, pkg.ID); err != nil {
		t.Fatal(err)
	}
	if files := e.blobFiles(); len(files) != 0 {
		t.Errorf("blob files after delete: %v", files)
	}
	_, err = e.svc.GetPackage(e.ctx, e.a, pkg.ID)
	fdnWantCode(t, err, ota.CodeNotFound, "")
}

func fdnPrevState(s ota.JobState) ota.JobState {
	switch s {
	case ota.JobRunning:
		return ota.JobPlanned
	case ota.JobPaused:
		return ota.JobRunning
	}
	return ""
}

// A blob that another package row still points at survives the delete.
func TestDeletePackageKeepsSharedBlob(t *testing.T) {
	e := newFoundationEnv(t)
	e.product(e.a, "sensor")
	pkg, err := e.svc.CreatePackage(e.ctx, e.a, fdnPackage("fw"), "fw.bin", strings.NewReader(fdnContent))
	if err != nil {
		t.Fatal(err)
	}
	twin := pkg
	twin.ID, twin.Name = ota.NewID(e.svc.Now().Add(time.Second)), "twin"
	if err := e.st.CreatePackage(e.ctx, twin); err != nil {
		t.Fatal(err)
	}
	before := e.blobFiles()
	if err := e.svc.DeletePackage(e.ctx, e.a, pkg.ID); err != nil {
		t.Fatal(err)
	}
	e.assertNothingLeft(1, before)
	if err := e.svc.DeletePackage(e.ctx, e.a, twin.ID); err != nil {
		t.Fatal(err)
	}
	e.assertNothingLeft(0, nil)
}
