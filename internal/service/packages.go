package service

// Packages. Owner: foundation.

import (
	"context"
	"io"

	"github.com/updraft-ota/updraft/internal/blob"
	"github.com/updraft-ota/updraft/internal/ota"
	"github.com/updraft-ota/updraft/internal/store"
)

// CreatePackage validates in, streams file into the blob store (measuring size,
// SHA-256 and MD5), checks the declared sign and the file type, and records the
// package. A rejected package leaves nothing: no row, no blob.
func (s *Service) CreatePackage(ctx context.Context, p Principal, in ota.Package, fileName string, file io.Reader) (ota.Package, error) {
	panic("not implemented")
}

// RegisterObject records a package whose file is already in the blob store
// (Huawei obs_location): the object must exist; its size and SHA-256/MD5 are
// read from it; a declared sign must match.
func (s *Service) RegisterObject(ctx context.Context, p Principal, in ota.Package, bucket, key string) (ota.Package, error) {
	panic("not implemented")
}

// PutObject stores a file in the caller's blob namespace so that it can later
// be registered with RegisterObject.
func (s *Service) PutObject(ctx context.Context, p Principal, bucket, key string, r io.Reader) (blob.Info, error) {
	panic("not implemented")
}

// GetPackage returns a package of the caller's tenant.
func (s *Service) GetPackage(ctx context.Context, p Principal, id string) (ota.Package, error) {
	panic("not implemented")
}

// ListPackages lists the caller's packages, newest first.
func (s *Service) ListPackages(ctx context.Context, p Principal, f store.PackageFilter, page store.Page) ([]ota.Package, int64, error) {
	panic("not implemented")
}

// DeletePackage removes a package that no unfinished job uses, and its blob
// unless the blob was registered from an existing object or another package
// still points at it.
func (s *Service) DeletePackage(ctx context.Context, p Principal, id string) error {
	panic("not implemented")
}

// OpenPackage opens a package's file for streaming (Range-capable).
func (s *Service) OpenPackage(ctx context.Context, p Principal, id string) (ota.Package, blob.Object, error) {
	panic("not implemented")
}

// PackageURL returns a signed, expiring download URL for a package's file.
func (s *Service) PackageURL(ctx context.Context, pkg ota.Package) (string, error) {
	panic("not implemented")
}
