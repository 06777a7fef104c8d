package service

// Files uploaded ahead of their package (Alibaba's GenerateOTAUploadURL →
// OSS-style POST → CreateOTAFirmware): one that no package claims in time
// is removed, so abandoned uploads do not fill the blob store. The blob
// store cannot list, so the store remembers each upload (store.Uploads).

import (
	"context"
	"io"
	"time"

	"github.com/updraft-ota/updraft/internal/blob"
	"github.com/updraft-ota/updraft/internal/store"
)

// uploadSweepEvery is how often a replica's engine looks for unclaimed
// uploads; uploadSweepBatch how many it removes per look.
const (
	uploadSweepEvery = time.Minute
	uploadSweepBatch = 100
)

// PutUpload stores a file like PutObject and expects a package to claim it
// (RegisterObject on the same bucket and key) within claimWithin; if none
// does, the engine removes it.
func (s *Service) PutUpload(ctx context.Context, p Principal, bucket, key string, r io.Reader, claimWithin time.Duration) (blob.Info, error) {
	// Recorded first: a crash after the put still leaves a record, so the
	// file cannot outlive its deadline unnoticed.
	if err := s.store.RecordUpload(ctx, store.Upload{TenantID: p.TenantID, Bucket: bucket, Key: key,
		ExpiresAt: s.clock.Now().Add(claimWithin)}); err != nil {
		return blob.Info{}, err
	}
	return s.PutObject(ctx, p, bucket, key, r)
}

// sweepUploads removes the blobs of uploads no package claimed in time, at
// most once per uploadSweepEvery on this replica. A failure is logged; the
// record is gone, so a blob that failed to go stays (and is logged).
func (s *Service) sweepUploads(ctx context.Context) {
	now := s.clock.Now()
	last := s.uploadSweep.Load()
	if now.UnixNano()-last < int64(uploadSweepEvery) || !s.uploadSweep.CompareAndSwap(last, now.UnixNano()) {
		return
	}
	expired, err := s.store.TakeExpiredUploads(ctx, now, uploadSweepBatch)
	if err != nil {
		s.log.Warn("looking for unclaimed uploads failed", "err", err)
		return
	}
	for _, u := range expired {
		if err := s.blobs.Delete(ctx, u.Bucket, u.Key); err != nil {
			s.log.Warn("removing an unclaimed upload failed", "bucket", u.Bucket, "key", u.Key, "err", err)
			continue
		}
		s.log.Info("removed an upload no package claimed", "tenant", u.TenantID, "bucket", u.Bucket, "key", u.Key,
			"deadline", u.ExpiresAt)
	}
}
