package service

// Packages. Owner: foundation.

import (
	"context"
	"fmt"
	"io"
	"path"
	"strings"
	"unicode"

	"github.com/updraft-ota/updraft/internal/blob"
	"github.com/updraft-ota/updraft/internal/ota"
	"github.com/updraft-ota/updraft/internal/store"
)

// packagePrefix is where uploaded package files live in the default bucket,
// under packages/<package id>/.
const packagePrefix = "packages/"

// maxFileNameLen bounds an uploaded file's name (a path segment on disk).
const maxFileNameLen = 255

// unfinishedJobStates are the job states that keep a package in use.
var unfinishedJobStates = []ota.JobState{ota.JobPlanned, ota.JobRunning, ota.JobPaused}

// cleanFileName keeps the last path element of a client-supplied file name
// (browsers and curl may send a full path) and checks its type.
func cleanFileName(name string) (string, error) {
	if i := strings.LastIndexAny(name, `/\`); i >= 0 {
		name = name[i+1:]
	}
	if len(name) > maxFileNameLen {
		return "", ota.Invalid("file", "the file name may be at most %d bytes, got %d", maxFileNameLen, len(name))
	}
	for _, r := range name {
		if unicode.IsControl(r) {
			return "", ota.Invalid("file", "the file name contains a control character")
		}
	}
	if err := ota.CheckFileName("file", name); err != nil {
		return "", err
	}
	return name, nil
}

// checkPackageTarget checks what a new package points at, before any byte is
// stored: its product exists in the caller's tenant, its module (for a module
// package) exists, and its name is free.
func (s *Service) checkPackageTarget(ctx context.Context, p Principal, in ota.Package) error {
	if _, err := s.GetProduct(ctx, p, in.ProductKey); err != nil {
		return err
	}
	if in.Kind == ota.KindModule {
		if _, err := s.GetModule(ctx, p, in.ProductKey, in.Module); err != nil {
			return err
		}
	}
	// Checked here too (the store's unique key is the real guard) so that a
	// duplicate name is refused before a large upload, not after.
	_, n, err := s.store.ListPackages(ctx, store.PackageFilter{TenantID: p.TenantID, Name: in.Name}, store.Page{Limit: 1})
	if err != nil {
		return err
	}
	if n > 0 {
		return packageNameTaken(in.Name)
	}
	return nil
}

func packageNameTaken(name string) error {
	return &ota.Error{Code: ota.CodeConflict, Field: "name",
		Message: "a package named " + quote(name) + " already exists: choose another name or delete the old package"}
}

// finishPackage fills the measured fields and checks the declared sign.
func finishPackage(in *ota.Package, info blob.Info) error {
	if err := ota.CheckFileSize("file", info.Size); err != nil {
		return err
	}
	if err := ota.CheckSign(in.SignMethod, in.Sign, info.SHA256, info.MD5); err != nil {
		return err
	}
	in.Bucket, in.Key = info.Bucket, info.Key
	in.Size, in.SHA256, in.MD5 = info.Size, strings.ToLower(info.SHA256), strings.ToLower(info.MD5)
	if in.Sign == "" {
		in.Sign = in.ExpectedSign()
	}
	in.Sign = strings.ToLower(in.Sign)
	in.VerifyStatus = ota.NewPackageStatus(in.NeedVerify)
	return nil
}

// CreatePackage validates in, streams file into the blob store (measuring size,
// SHA-256 and MD5), checks the declared sign and the file type, and records the
// package. A rejected package leaves nothing: no row, no blob.
func (s *Service) CreatePackage(ctx context.Context, p Principal, in ota.Package, fileName string, file io.Reader) (ota.Package, error) {
	in.TenantID = p.TenantID
	in.Normalize()
	if err := in.Validate(); err != nil {
		return ota.Package{}, err
	}
	name, err := cleanFileName(fileName)
	if err != nil {
		return ota.Package{}, err
	}
	if in.Region != "" {
		if err := ota.CheckRegionName("region", in.Region); err != nil {
			return ota.Package{}, err
		}
	}
	if err := s.checkPackageTarget(ctx, p, in); err != nil {
		return ota.Package{}, err
	}
	if err := s.checkQuota(ctx, p.TenantID, quotaPackages, 0); err != nil {
		return ota.Package{}, err
	}

	now := s.clock.Now().UTC()
	in.ID = ota.NewID(now)
	in.FileName = name
	in.External = false
	in.CreatedAt, in.ModifiedAt = now, now
	bucket, key := s.opts.DefaultBucket, packagePrefix+in.ID+"/"+name

	release, err := s.uploads.take(p.TenantID)
	if err != nil {
		return ota.Package{}, err
	}
	info, err := s.blobs.Put(ctx, bucket, key, file, s.opts.MaxPackageSize)
	release()
	if err != nil {
		return ota.Package{}, err
	}
	if info.Bucket == "" {
		info.Bucket, info.Key = bucket, key
	}
	if err := finishPackage(&in, info); err != nil {
		s.removeBlob(ctx, bucket, key)
		return ota.Package{}, err
	}
	// The size is known only now: check the storage quota with it.
	if err := s.checkQuota(ctx, p.TenantID, quotaPackages, info.Size); err != nil {
		s.removeBlob(ctx, bucket, key)
		return ota.Package{}, err
	}
	if err := s.store.CreatePackage(s.audited(ctx, p, in.TenantID, "package.create", "package", in.ID, in.Name+" "+in.Version), in); err != nil {
		s.removeBlob(ctx, bucket, key)
		if ota.ErrorCode(err) == ota.CodeConflict {
			return ota.Package{}, packageNameTaken(in.Name)
		}
		return ota.Package{}, err
	}
	return in, nil
}

// removeBlob deletes a blob that a failed use case stored. It runs even when
// the request's context is canceled, since the failure may be the cancel.
func (s *Service) removeBlob(ctx context.Context, bucket, key string) {
	if err := s.blobs.Delete(context.WithoutCancel(ctx), bucket, key); err != nil {
		s.log.Error("could not remove the blob of a rejected package; delete it by hand",
			"bucket", bucket, "key", key, "err", err)
	}
}

// checkObjectRef validates a caller-named bucket and key. The default bucket
// is refused whole: it holds every tenant's uploaded packages, so no single
// tenant can own it, and letting tenants share its other keys would let one
// read or replace another's objects. Object APIs work only on buckets that
// claimBucket gives to one tenant.
func (s *Service) checkObjectRef(bucket, key string) error {
	if err := ota.CheckBucketName("bucket_name", bucket); err != nil {
		return err
	}
	if err := ota.CheckObjectKey("object_key", key); err != nil {
		return err
	}
	if bucket == s.opts.DefaultBucket {
		if strings.HasPrefix(key, packagePrefix) {
			return ota.Invalid("object_key", "keys under %q in bucket %q are reserved for uploaded packages: use a bucket of your own", packagePrefix, bucket)
		}
		return ota.Invalid("bucket_name", "bucket %q is reserved for packages uploaded through the API: use a bucket of your own", bucket)
	}
	return nil
}

// claimBucket makes bucket the caller's if no tenant owns it yet, and refuses
// a bucket another tenant owns, so that a tenant can neither register (and
// then download) nor overwrite another tenant's objects. The store makes the
// claim atomic: of two tenants naming a new bucket at once, one gets it.
func (s *Service) claimBucket(ctx context.Context, p Principal, bucket string) error {
	// Audited only when the bucket is new (the store writes the entry
	// with the insert alone).
	owner, err := s.store.ClaimBucket(s.audited(ctx, p, p.TenantID, "bucket.create", "bucket", bucket, ""), p.TenantID, bucket, s.clock.Now().UTC())
	if err != nil {
		return err
	}
	if owner != p.TenantID {
		return &ota.Error{Code: ota.CodeForbidden, Field: "bucket_name",
			Message: "bucket " + quote(bucket) + " belongs to another tenant: use a bucket of your own"}
	}
	return nil
}

// RegisterObject records a package whose file is already in the blob store
// (Huawei obs_location): the object must exist; its size and SHA-256/MD5 are
// read from it; a declared sign must match.
func (s *Service) RegisterObject(ctx context.Context, p Principal, in ota.Package, bucket, key string) (ota.Package, error) {
	in.TenantID = p.TenantID
	in.Normalize()
	if err := in.Validate(); err != nil {
		return ota.Package{}, err
	}
	if err := s.checkObjectRef(bucket, key); err != nil {
		return ota.Package{}, err
	}
	// The documented file types hold for every way a package is registered:
	// the object's name is the package's file name.
	if err := ota.CheckFileName("object_key", path.Base(key)); err != nil {
		return ota.Package{}, err
	}
	if in.Region != "" {
		if err := ota.CheckRegionName("region_name", in.Region); err != nil {
			return ota.Package{}, err
		}
	}
	if err := s.checkPackageTarget(ctx, p, in); err != nil {
		return ota.Package{}, err
	}
	// Claimed last before the object is looked at: a request refused for
	// its own faults claims nothing.
	if err := s.claimBucket(ctx, p, bucket); err != nil {
		return ota.Package{}, err
	}
	info, err := s.blobs.Stat(ctx, bucket, key)
	if err != nil {
		if ota.ErrorCode(err) == ota.CodeNotFound {
			return ota.Package{}, &ota.Error{Code: ota.CodeNotFound, Field: "object_key",
				Message: "object " + quote(key) + " not found in bucket " + quote(bucket) + ": upload it first or check the bucket and key"}
		}
		return ota.Package{}, err
	}
	info.Bucket, info.Key = bucket, key
	if err := ota.CheckFileSize("object_key", info.Size); err != nil {
		return ota.Package{}, err
	}
	if err := s.checkQuota(ctx, p.TenantID, quotaPackages, info.Size); err != nil {
		return ota.Package{}, err
	}
	if info.SHA256 == "" || info.MD5 == "" {
		if info, err = s.hashObject(ctx, bucket, key); err != nil {
			return ota.Package{}, err
		}
	}
	now := s.clock.Now().UTC()
	in.ID = ota.NewID(now)
	in.FileName = path.Base(key)
	in.External = true
	in.CreatedAt, in.ModifiedAt = now, now
	if err := finishPackage(&in, info); err != nil {
		return ota.Package{}, err
	}
	if err := s.store.CreatePackage(s.audited(ctx, p, in.TenantID, "package.create", "package", in.ID, in.Name+" "+in.Version), in); err != nil {
		if ota.ErrorCode(err) == ota.CodeConflict {
			return ota.Package{}, packageNameTaken(in.Name)
		}
		return ota.Package{}, err
	}
	return in, nil
}

// hashObject streams an object through SHA-256 and MD5, for objects whose
// backend does not know their digests (put into S3 by someone else).
func (s *Service) hashObject(ctx context.Context, bucket, key string) (blob.Info, error) {
	obj, err := s.blobs.Open(ctx, bucket, key)
	if err != nil {
		return blob.Info{}, err
	}
	defer obj.Close()
	digests := blob.NewDigester()
	n, err := io.Copy(digests, io.LimitReader(obj, ota.MaxPackageSize+1))
	if err != nil {
		return blob.Info{}, ota.Errorf(ota.CodeUnavailable, "could not read object %q in bucket %q: %v", key, bucket, err)
	}
	info := obj.Info()
	info.Bucket, info.Key, info.Size = bucket, key, n
	info.SHA256, info.MD5 = digests.Sums()
	if err := ota.CheckFileSize("object_key", n); err != nil {
		return blob.Info{}, err
	}
	return info, nil
}

// PutObject stores a file in a bucket of the caller's (claiming the bucket if
// no tenant has it yet) so that it can later be registered with
// RegisterObject. An object that a package uses cannot be replaced: its
// digests would no longer match the package's sign.
func (s *Service) PutObject(ctx context.Context, p Principal, bucket, key string, r io.Reader) (blob.Info, error) {
	if err := s.checkObjectRef(bucket, key); err != nil {
		return blob.Info{}, err
	}
	if err := s.claimBucket(ctx, p, bucket); err != nil {
		return blob.Info{}, err
	}
	n, err := s.store.CountPackageRefs(ctx, bucket, key)
	if err != nil {
		return blob.Info{}, err
	}
	if n > 0 {
		return blob.Info{}, ota.Errorf(ota.CodeConflict, "object %q in bucket %q is used by %d package(s) and cannot be replaced: use another key", key, bucket, n)
	}
	release, err := s.uploads.take(p.TenantID)
	if err != nil {
		return blob.Info{}, err
	}
	defer release()
	info, err := s.blobs.Put(ctx, bucket, key, r, s.opts.MaxPackageSize)
	if err != nil {
		return info, err
	}
	// The file lives in the blob store, not the database: its entry is
	// recorded after the put (store.Audit.AppendAudit). The object is
	// stored either way, so a failure to record is logged, not answered.
	e := s.entry(ctx, p, p.TenantID, "object.put", "object", bucket+"/"+key, fmt.Sprintf("%d bytes", info.Size))
	if err := s.store.AppendAudit(ctx, e); err != nil {
		s.log.Error("an object was stored but its audit entry could not be recorded", "bucket", bucket, "key", key,
			"request_id", e.RequestID, "err", err)
	}
	return info, nil
}

// GetPackage returns a package of the caller's tenant.
func (s *Service) GetPackage(ctx context.Context, p Principal, id string) (ota.Package, error) {
	if id == "" {
		return ota.Package{}, ota.Invalid("id", "package id is required")
	}
	pkg, err := s.store.GetPackage(ctx, p.TenantID, id)
	if err != nil {
		return ota.Package{}, notFoundAs(err, "package", id)
	}
	return pkg, nil
}

// ListPackages lists the caller's packages, newest first.
func (s *Service) ListPackages(ctx context.Context, p Principal, f store.PackageFilter, page store.Page) ([]ota.Package, int64, error) {
	f.TenantID = p.TenantID
	if f.NameLocale != "" {
		if err := ota.CheckLocale("name_locale", f.NameLocale); err != nil {
			return nil, 0, err
		}
	}
	return s.store.ListPackages(ctx, f, clampPage(page))
}

// DeletePackage removes a package that no unfinished job uses, and its blob
// unless the blob was registered from an existing object or another package
// still points at it.
func (s *Service) DeletePackage(ctx context.Context, p Principal, id string) error {
	pkg, err := s.GetPackage(ctx, p, id)
	if err != nil {
		return err
	}
	jobs, n, err := s.store.ListJobs(ctx, store.JobFilter{TenantID: p.TenantID, PackageID: id, States: unfinishedJobStates}, store.Page{Limit: 1}, true)
	if err != nil {
		return err
	}
	if len(jobs) > 0 {
		j := jobs[0]
		return ota.Errorf(ota.CodeConflict, "package %q is used by job %q, which is %s: cancel the job or wait until it finishes", id, j.ID, j.State)
	}
	if n > 0 {
		return ota.Errorf(ota.CodeConflict, "package %q is used by %d unfinished job(s): cancel them or wait until they finish", id, n)
	}
	if err := s.store.DeletePackage(s.audited(ctx, p, p.TenantID, "package.delete", "package", id, ""), p.TenantID, id); err != nil {
		return notFoundAs(err, "package", id)
	}
	if pkg.External {
		return nil
	}
	refs, err := s.store.CountPackageRefs(ctx, pkg.Bucket, pkg.Key)
	if err != nil {
		// The package is gone either way; only its file may linger.
		s.log.Error("package deleted but its blob reference count failed; the blob was kept",
			"package", id, "bucket", pkg.Bucket, "key", pkg.Key, "err", err)
		return nil
	}
	if refs == 0 {
		s.removeBlob(ctx, pkg.Bucket, pkg.Key)
	}
	return nil
}

// OpenPackage opens a package's file for streaming (Range-capable).
func (s *Service) OpenPackage(ctx context.Context, p Principal, id string) (ota.Package, blob.Object, error) {
	pkg, err := s.GetPackage(ctx, p, id)
	if err != nil {
		return ota.Package{}, nil, err
	}
	obj, err := s.blobs.Open(ctx, pkg.Bucket, pkg.Key)
	if err != nil {
		if ota.ErrorCode(err) == ota.CodeNotFound {
			return ota.Package{}, nil, ota.Errorf(ota.CodeNotFound, "the file of package %q (object %q in bucket %q) is missing from the blob store", id, pkg.Key, pkg.Bucket)
		}
		return ota.Package{}, nil, err
	}
	return pkg, obj, nil
}

// PackageURL returns a signed, expiring download URL for a package's file.
func (s *Service) PackageURL(ctx context.Context, pkg ota.Package) (string, error) {
	return s.blobs.SignedURL(ctx, pkg.Bucket, pkg.Key, s.opts.DownloadURLTTL)
}

// OpenPackageForDevice opens a package's file for a device that fetches it
// itself (EnOS devices download the file a notice names by its id): a device
// may read the packages of its own product only; any other package is "not
// found", so a device cannot probe another product's files.
func (s *Service) OpenPackageForDevice(ctx context.Context, dev ota.DeviceRef, id string) (ota.Package, blob.Object, error) {
	d, err := s.store.GetDevice(ctx, dev.ProductKey, dev.Name)
	if err != nil {
		return ota.Package{}, nil, err
	}
	pkg, obj, err := s.OpenPackage(ctx, Principal{TenantID: d.TenantID}, id)
	if err != nil {
		return ota.Package{}, nil, err
	}
	if pkg.ProductKey != d.ProductKey {
		obj.Close()
		return ota.Package{}, nil, ota.NotFound("package", id)
	}
	return pkg, obj, nil
}
