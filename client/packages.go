package client

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"mime"
	"mime/multipart"
	"net/http"
	"net/textproto"
	"net/url"
	"strconv"
	"strings"
)

// PackageFilter narrows ListPackages. Zero fields do not filter.
type PackageFilter struct {
	Product string
	Module  string
	Kind    string
	Version string // destination version
	Name    string
	Page
}

// UploadOption configures UploadPackage.
type UploadOption func(*uploadConfig)

type uploadConfig struct {
	progress func(sent int64)
}

// OnProgress calls fn with the number of file bytes sent so far, as they are
// sent (from the goroutine streaming the body).
func OnProgress(fn func(sent int64)) UploadOption {
	return func(u *uploadConfig) { u.progress = fn }
}

// UploadPackage uploads a package, streaming file (never holding it in
// memory): the metadata part first, then the file part named fileName (its
// suffix tells the server the file type). It stops reading file before it
// returns.
func (c *Client) UploadPackage(ctx context.Context, meta PackageMetadata, fileName string, file io.Reader, opts ...UploadOption) (Package, error) {
	var cfg uploadConfig
	for _, o := range opts {
		o(&cfg)
	}
	metaJSON, err := json.Marshal(meta)
	if err != nil {
		return Package{}, err
	}
	pr, pw := io.Pipe()
	mw := multipart.NewWriter(pw)
	req, err := c.newRequest(ctx, http.MethodPost, "/api/v1/packages", nil, pr)
	if err != nil {
		return Package{}, err
	}
	req.Header.Set("Content-Type", mw.FormDataContentType())

	// The writer goroutine ends when the body is written or when pr is
	// closed (the server answered early, or ctx ended). UploadPackage waits
	// for it, so file is no longer read once UploadPackage returns.
	written := make(chan struct{})
	go func() {
		defer close(written)
		pw.CloseWithError(writeUpload(mw, metaJSON, fileName, file, cfg.progress))
	}()
	resp, err := c.http.Do(req)
	pr.CloseWithError(io.ErrClosedPipe) // the server has answered (or failed): stop sending
	<-written
	if err != nil {
		return Package{}, err
	}
	defer resp.Body.Close()
	var out Package
	err = decodeResponse(resp, &out)
	return out, err
}

func writeUpload(mw *multipart.Writer, metaJSON []byte, fileName string, file io.Reader, progress func(int64)) error {
	h := textproto.MIMEHeader{}
	h.Set("Content-Disposition", `form-data; name="metadata"`)
	h.Set("Content-Type", "application/json")
	part, err := mw.CreatePart(h)
	if err != nil {
		return err
	}
	if _, err := part.Write(metaJSON); err != nil {
		return err
	}
	part, err = mw.CreateFormFile("file", fileName)
	if err != nil {
		return err
	}
	var src io.Reader = file
	if progress != nil {
		src = &progressReader{r: file, fn: progress}
	}
	if _, err := io.Copy(part, src); err != nil {
		return err
	}
	return mw.Close()
}

type progressReader struct {
	r  io.Reader
	n  int64
	fn func(int64)
}

func (p *progressReader) Read(b []byte) (int, error) {
	n, err := p.r.Read(b)
	if n > 0 {
		p.n += int64(n)
		p.fn(p.n)
	}
	return n, err
}

// ListPackages lists packages, newest first.
func (c *Client) ListPackages(ctx context.Context, f PackageFilter) (List[Package], error) {
	q := url.Values{}
	f.Page.set(q)
	for k, v := range map[string]string{"product": f.Product, "module": f.Module, "kind": f.Kind, "version": f.Version, "name": f.Name} {
		if v != "" {
			q.Set(k, v)
		}
	}
	var out List[Package]
	err := c.do(ctx, http.MethodGet, "/api/v1/packages", q, nil, &out)
	return out, err
}

// GetPackage returns one package.
func (c *Client) GetPackage(ctx context.Context, id string) (Package, error) {
	var out Package
	err := c.do(ctx, http.MethodGet, "/api/v1/packages/"+escape(id), nil, nil, &out)
	return out, err
}

// DeletePackage removes a package and its file.
func (c *Client) DeletePackage(ctx context.Context, id string) error {
	return c.do(ctx, http.MethodDelete, "/api/v1/packages/"+escape(id), nil, nil, nil)
}

// Range asks for part of a file: Length bytes from Offset (Length 0: to the
// end). IfRange, when set to an ETag from an earlier download, makes the
// server send the whole file instead if the file changed.
type Range struct {
	Offset  int64
	Length  int64
	IfRange string
}

// Download is an open package download. Close Body.
type Download struct {
	Body     io.ReadCloser
	Partial  bool   // the answer is a range (206), starting at Offset
	Offset   int64  // where Body starts in the file
	Length   int64  // bytes in Body (-1 if the server did not say)
	Total    int64  // the whole file's size (-1 if unknown)
	ETag     string // quoted, as sent
	SHA256   string // the file's SHA-256 (from the ETag)
	FileName string
}

// DownloadPackage opens a package's file, or part of it when rng is not nil.
// The server may answer with the whole file (Partial false) when rng.IfRange
// no longer matches.
func (c *Client) DownloadPackage(ctx context.Context, id string, rng *Range) (*Download, error) {
	req, err := c.newRequest(ctx, http.MethodGet, "/api/v1/packages/"+escape(id)+"/download", nil, nil)
	if err != nil {
		return nil, err
	}
	req.Header.Set("Accept", "application/octet-stream")
	if rng != nil {
		if rng.Offset < 0 || rng.Length < 0 {
			return nil, fmt.Errorf("client: bad range: offset %d, length %d", rng.Offset, rng.Length)
		}
		spec := "bytes=" + strconv.FormatInt(rng.Offset, 10) + "-"
		if rng.Length > 0 {
			spec += strconv.FormatInt(rng.Offset+rng.Length-1, 10)
		}
		req.Header.Set("Range", spec)
		if rng.IfRange != "" {
			req.Header.Set("If-Range", rng.IfRange)
		}
	}
	resp, err := c.http.Do(req)
	if err != nil {
		return nil, err
	}
	if resp.StatusCode != http.StatusOK && resp.StatusCode != http.StatusPartialContent {
		defer resp.Body.Close()
		return nil, responseError(resp)
	}
	d := &Download{Body: resp.Body, Length: resp.ContentLength, Total: resp.ContentLength, ETag: resp.Header.Get("ETag")}
	d.SHA256 = strings.Trim(d.ETag, `"`)
	if _, params, err := mime.ParseMediaType(resp.Header.Get("Content-Disposition")); err == nil {
		d.FileName = params["filename"]
	}
	if resp.StatusCode == http.StatusPartialContent {
		d.Partial = true
		start, total, err := parseContentRange(resp.Header.Get("Content-Range"))
		if err != nil {
			resp.Body.Close()
			return nil, err
		}
		d.Offset, d.Total = start, total
	}
	return d, nil
}

// parseContentRange reads "bytes first-last/total" (total may be "*").
func parseContentRange(s string) (start, total int64, err error) {
	spec, ok := strings.CutPrefix(s, "bytes ")
	rangePart, totalPart, ok2 := strings.Cut(spec, "/")
	first, _, ok3 := strings.Cut(rangePart, "-")
	if !ok || !ok2 || !ok3 {
		return 0, 0, fmt.Errorf("client: bad Content-Range %q", s)
	}
	if start, err = strconv.ParseInt(first, 10, 64); err != nil {
		return 0, 0, fmt.Errorf("client: bad Content-Range %q", s)
	}
	total = -1
	if totalPart != "*" {
		if total, err = strconv.ParseInt(totalPart, 10, 64); err != nil {
			return 0, 0, fmt.Errorf("client: bad Content-Range %q", s)
		}
	}
	return start, total, nil
}

// PackageURL returns a signed, expiring URL for the package's file that
// needs no credentials (it may point at an object store).
func (c *Client) PackageURL(ctx context.Context, id string) (string, error) {
	req, err := c.newRequest(ctx, http.MethodGet, "/api/v1/packages/"+escape(id)+"/download", url.Values{"redirect": {"1"}}, nil)
	if err != nil {
		return "", err
	}
	noFollow := *c.http
	noFollow.CheckRedirect = func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }
	resp, err := noFollow.Do(req)
	if err != nil {
		return "", err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusFound {
		if resp.StatusCode >= 200 && resp.StatusCode < 300 {
			return "", fmt.Errorf("client: expected a redirect to the download URL, got HTTP %d", resp.StatusCode)
		}
		return "", responseError(resp)
	}
	loc, err := resp.Location()
	if err != nil {
		return "", fmt.Errorf("client: the redirect has no usable Location: %w", err)
	}
	return loc.String(), nil
}

// UpdatePackage changes a package's name, description, custom info or tags.
func (c *Client) UpdatePackage(ctx context.Context, id string, in PackageUpdate) (Package, error) {
	var out Package
	err := c.do(ctx, http.MethodPatch, "/api/v1/packages/"+escape(id), nil, in, &out)
	return out, err
}
