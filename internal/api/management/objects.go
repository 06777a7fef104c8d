package management

import (
	"errors"
	"net/http"

	"github.com/updraft-ota/updraft/apiv1"
	"github.com/updraft-ota/updraft/internal/api/httpx"
	"github.com/updraft-ota/updraft/internal/ota"
	"github.com/updraft-ota/updraft/internal/service"
)

// Objects are files put into the blob store by bucket and key, to be
// registered as packages later by reference (Huawei IoTDA's obs_location:
// CreateOtaPackage names a bucket and an object key instead of uploading).
func (a *API) registerObjects(mux *http.ServeMux) {
	a.route(mux, "PUT /api/v1/objects/{bucket}/{key...}", a.putObject)
}

// putObject streams the request body into bucket/key (never buffering it):
// up to 1 GB, measured on the way. Bucket and key follow Huawei's OBS rules
// (bucket 3–63 of [a-z0-9.-], key ≤1024); an object a package uses cannot be
// replaced.
func (a *API) putObject(w http.ResponseWriter, r *http.Request, p service.Principal) error {
	r.Body = http.MaxBytesReader(w, r.Body, ota.MaxPackageSize)
	bucket, key := r.PathValue("bucket"), r.PathValue("key")
	info, err := a.svc.PutObject(r.Context(), p, bucket, key, r.Body)
	if err != nil {
		var tooLarge *http.MaxBytesError
		if errors.As(err, &tooLarge) {
			return &ota.Error{Code: ota.CodeTooLarge, Field: "body", Message: "the object is larger than the 1 GB limit", Err: err}
		}
		return err
	}
	if info.Bucket == "" {
		info.Bucket, info.Key = bucket, key
	}
	httpx.WriteJSON(w, http.StatusOK, apiv1.Object{
		Bucket: info.Bucket, Key: info.Key, Size: info.Size,
		SHA256: info.SHA256, MD5: info.MD5, ETag: info.ETag, ModTime: info.ModTime,
	})
	return nil
}
