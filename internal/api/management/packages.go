package management

import (
	"errors"
	"io"
	"mime"
	"mime/multipart"
	"net/http"
	"strconv"

	"github.com/updraft-ota/updraft/apiv1"
	"github.com/updraft-ota/updraft/internal/api/httpx"
	"github.com/updraft-ota/updraft/internal/ota"
	"github.com/updraft-ota/updraft/internal/service"
	"github.com/updraft-ota/updraft/internal/store"
)

func (a *API) registerPackages(mux *http.ServeMux) {
	a.route(mux, "POST /api/v1/packages", a.createPackage)
	a.route(mux, "GET /api/v1/packages", a.listPackages)
	a.route(mux, "GET /api/v1/packages/{id}", a.getPackage)
	a.route(mux, "DELETE /api/v1/packages/{id}", a.deletePackage)
	a.route(mux, "GET /api/v1/packages/{id}/download", a.downloadPackage)
}

// multipartOverhead bounds an upload's bytes besides the file: the metadata
// part and the multipart framing.
const multipartOverhead = 64 << 10

// createPackage streams a multipart upload: the metadata part first, so the
// service can reject a bad package before a byte of the file is stored, then
// the file part, read straight into the service (never buffered, never
// ParseMultipartForm).
func (a *API) createPackage(w http.ResponseWriter, r *http.Request, p service.Principal) error {
	r.Body = http.MaxBytesReader(w, r.Body, ota.MaxPackageSize+a.opts.MaxJSONBody+multipartOverhead)
	mr, err := r.MultipartReader()
	if err != nil {
		return ota.Invalid("", "send the package as multipart/form-data: a %q part (JSON) first, then a %q part (the file)", "metadata", "file")
	}

	part, err := nextPart(mr)
	if err != nil {
		return err
	}
	switch {
	case part == nil:
		return ota.Invalid("metadata", "the upload is empty: send a %q part (JSON) first, then a %q part", "metadata", "file")
	case part.FormName() == "file":
		return ota.Invalid("metadata", "the %q part must come before the %q part, so the package is checked before its file is stored", "metadata", "file")
	case part.FormName() != "metadata":
		return ota.Invalid("metadata", "unexpected part %q: the upload has a %q part (JSON) first, then a %q part", part.FormName(), "metadata", "file")
	}
	var meta apiv1.PackageMetadata
	if err := httpx.DecodeJSONReader(part, &meta, a.opts.MaxJSONBody, "the metadata part"); err != nil {
		return err
	}
	in, err := packageFromMetadata(meta)
	if err != nil {
		return err
	}

	part, err = nextPart(mr)
	if err != nil {
		return err
	}
	switch {
	case part == nil:
		return ota.Invalid("file", "the %q part is missing: send the package file after the %q part", "file", "metadata")
	case part.FormName() != "file":
		return ota.Invalid("file", "unexpected part %q after the metadata: the next part must be %q (the package file)", part.FormName(), "file")
	}
	pkg, err := a.svc.CreatePackage(r.Context(), p, in, part.FileName(), httpx.Upload(r, part))
	if err != nil {
		var tooLarge *http.MaxBytesError
		if errors.As(err, &tooLarge) {
			return &ota.Error{Code: ota.CodeTooLarge, Field: "file", Message: "the upload is larger than the package size limit", Err: err}
		}
		return err
	}
	httpx.WriteJSON(w, http.StatusCreated, packageFromOTA(pkg))
	return nil
}

// nextPart returns the next part, nil at the end of the body.
func nextPart(mr *multipart.Reader) (*multipart.Part, error) {
	part, err := mr.NextPart()
	switch {
	case errors.Is(err, io.EOF):
		return nil, nil
	case err != nil:
		var tooLarge *http.MaxBytesError
		if errors.As(err, &tooLarge) {
			return nil, &ota.Error{Code: ota.CodeTooLarge, Message: "the upload is larger than the package size limit"}
		}
		return nil, ota.Invalid("", "malformed multipart body: %v", err)
	}
	return part, nil
}

func (a *API) listPackages(w http.ResponseWriter, r *http.Request, p service.Principal) error {
	pg, err := page(r)
	if err != nil {
		return err
	}
	q := r.URL.Query()
	f := store.PackageFilter{
		ProductKey: q.Get("product"), Module: q.Get("module"), Kind: ota.PackageKind(q.Get("kind")),
		Version: q.Get("version"), Name: q.Get("name"),
	}
	if f.Kind != "" {
		if err := ota.CheckPackageKind("kind", f.Kind); err != nil {
			return err
		}
	}
	items, total, err := a.svc.ListPackages(r.Context(), p, f, pg)
	if err != nil {
		return err
	}
	httpx.WriteJSON(w, http.StatusOK, newList(items, total, packageFromOTA))
	return nil
}

func (a *API) getPackage(w http.ResponseWriter, r *http.Request, p service.Principal) error {
	pkg, err := a.svc.GetPackage(r.Context(), p, r.PathValue("id"))
	if err != nil {
		return err
	}
	httpx.WriteJSON(w, http.StatusOK, packageFromOTA(pkg))
	return nil
}

func (a *API) deletePackage(w http.ResponseWriter, r *http.Request, p service.Principal) error {
	if err := a.svc.DeletePackage(r.Context(), p, r.PathValue("id")); err != nil {
		return err
	}
	w.WriteHeader(http.StatusNoContent)
	return nil
}

// downloadPackage streams the file with Range and If-Range support (the ETag
// is the quoted SHA-256), or with ?redirect=1 sends the caller to a signed,
// expiring URL (a presigned S3 URL, so the bytes bypass this server).
func (a *API) downloadPackage(w http.ResponseWriter, r *http.Request, p service.Principal) error {
	id := r.PathValue("id")
	redirect := false
	if s := r.URL.Query().Get("redirect"); s != "" {
		b, err := strconv.ParseBool(s)
		if err != nil {
			return ota.Invalid("redirect", "redirect must be 1 or 0, got %q", s)
		}
		redirect = b
	}
	if redirect {
		pkg, err := a.svc.GetPackage(r.Context(), p, id)
		if err != nil {
			return err
		}
		url, err := a.svc.PackageURL(r.Context(), pkg)
		if err != nil {
			return err
		}
		http.Redirect(w, r, url, http.StatusFound)
		return nil
	}

	pkg, obj, err := a.svc.OpenPackage(r.Context(), p, id)
	if err != nil {
		return err
	}
	defer obj.Close()
	h := w.Header()
	h.Set("Content-Type", "application/octet-stream")
	h.Set("ETag", `"`+pkg.SHA256+`"`)
	if pkg.FileName != "" {
		h.Set("Content-Disposition", mime.FormatMediaType("attachment", map[string]string{"filename": pkg.FileName}))
	}
	http.ServeContent(w, r, pkg.FileName, pkg.CreatedAt, obj)
	return nil
}
