// Package enos answers the Envision EnOS connect-service v2.1 OTA API and its
// apim token service the way EnOS does (spec §3), so that code written from
// EnOS's documentation and official samples works against Updraft: firmware,
// OTA jobs and tasks under /connect-service/v2.1/, selected by ?action=, each
// signed with apim-signature over a token from /apim-token-service/v2.0/.
// It is a thin translation over internal/service; README.md lists what is
// supported.
package enos

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"math"
	"mime"
	"mime/multipart"
	"net/http"
	"sort"
	"strings"

	"github.com/updraft-ota/updraft/internal/api/httpx"
	"github.com/updraft-ota/updraft/internal/ota"
	"github.com/updraft-ota/updraft/internal/service"
	"github.com/updraft-ota/updraft/internal/store"
)

// Paths the dialect mounts.
const (
	APIPrefix   = "/connect-service/v2.1/"
	TokenPrefix = "/apim-token-service/v2.0/token/"
)

const (
	MaxBodyBytes     = 1 << 20   // JSON bodies (99400 beyond it)
	MaxUploadBytes   = 512 << 20 // a firmware upload, metadata included
	maxPageSize      = 200
	defaultPageSize  = 10
	maxMetadataBytes = 64 << 10
)

// Options configure the dialect.
type Options struct {
	Log *slog.Logger
}

// API serves the EnOS OTA operations.
type API struct {
	svc *service.Service
	log *slog.Logger
}

// New builds the dialect over svc.
func New(svc *service.Service, opts Options) *API {
	if opts.Log == nil {
		opts.Log = slog.Default()
	}
	return &API{svc: svc, log: opts.Log}
}

// Register mounts the token service and the API on mux.
func (a *API) Register(mux *http.ServeMux) {
	mux.Handle(TokenPrefix, httpx.RequestID(http.HandlerFunc(a.serveToken)))
	mux.Handle(APIPrefix, httpx.RequestID(http.HandlerFunc(a.serveAPI)))
	// The device HTTP broker's login and file download (device.go).
	mux.HandleFunc("POST "+DeviceAuthPath+"{productKey}/{deviceKey}", a.serveDeviceLogin)
	mux.HandleFunc("GET "+DeviceDownloadPath+"{productKey}/{deviceKey}/file/download", a.serveDeviceFile)
}

// call is one authenticated API request.
type call struct {
	r    *http.Request
	p    service.Principal
	body []byte
	op   string // for error mapping (errors.go)
	page *pagination
}

type action func(ctx context.Context, c *call) (any, error)

// actions by resource and action name (spec §3.2).
func (a *API) actions() map[string]map[string]action {
	return map[string]map[string]action{
		"ota-firmwares": {
			"create": a.createFirmware,
			"get":    a.getFirmware,
			"search": a.searchFirmware,
			"delete": a.deleteFirmware,
		},
		"ota-jobs": {
			"create":     a.createJob,
			"get":        a.getJob,
			"search":     a.searchJobs,
			"start":      a.startJob,
			"stop":       a.stopJob,
			"delete":     a.deleteJob,
			"searchTask": a.searchTasks,
			"cancelTask": a.cancelTasks,
			"retryTask":  a.retryTasks,
		},
	}
}

func (a *API) serveToken(w http.ResponseWriter, r *http.Request) {
	name := strings.TrimPrefix(r.URL.Path, TokenPrefix)
	var data tokenData
	err := func() error {
		if r.Method != http.MethodPost || name != "get" && name != "refresh" {
			return wireErr(codeTokenInvalid, r.Method+" "+r.URL.Path+" is not a token-service operation: POST token/get or token/refresh")
		}
		body, err := io.ReadAll(http.MaxBytesReader(nil, r.Body, MaxBodyBytes))
		if err != nil {
			return wireErr(codeTokenInvalid, "the request body could not be read")
		}
		var req tokenRequest
		if err := json.Unmarshal(body, &req); err != nil {
			return wireErr(codeTokenInvalid, "the body is not JSON {appKey, encryption, timestamp}: "+err.Error())
		}
		// A token request is charged to its app key alone: the tenant is
		// known only once the key is.
		return httpx.Admit(r, func() (httpx.Caller, error) {
			var err error
			data, err = a.issueToken(r.Context(), req, name == "refresh")
			return httpx.Caller{Key: req.AppKey}, err
		})
	}()
	out := tokenEnvelope{Status: 0, Msg: "Success", Business: "apim-token-service", Data: &data}
	if err != nil {
		code, msg := toWire(err, opToken)
		a.logFailure(r, err)
		out = tokenEnvelope{Status: code, Msg: msg, Business: "apim-token-service"}
	}
	writeJSON(w, out)
}

func (a *API) serveAPI(w http.ResponseWriter, r *http.Request) {
	c := &call{r: r}
	data, err := a.run(r, c)
	env := envelope{Code: codeOK, Msg: "OK", RequestID: httpx.RequestIDFrom(r.Context()), Data: data, Pagination: c.page}
	if err != nil {
		a.logFailure(r, err)
		httpx.SetRetryAfter(w, err)
		code, msg := toWire(err, c.op)
		env = envelope{Code: code, Msg: msg, RequestID: env.RequestID}
	}
	writeJSON(w, env)
}

func (a *API) run(r *http.Request, c *call) (any, error) {
	if r.Method != http.MethodGet && r.Method != http.MethodPost {
		return nil, ota.Invalid("method", "%s is not accepted: use GET or POST", r.Method)
	}
	resource := strings.TrimPrefix(r.URL.Path, APIPrefix)
	acts, ok := a.actions()[resource]
	if !ok {
		return nil, ota.Errorf(ota.CodeNotFound, "resource %q is not served by Updraft: use ota-firmwares or ota-jobs", resource)
	}
	name := r.URL.Query().Get("action")
	if name == "" {
		return nil, ota.Invalid("action", "Invalid Argument action:action is missing")
	}
	act, ok := acts[name]
	if !ok {
		return nil, ota.Invalid("action", "action %q is not an action of %s", name, resource)
	}
	httpx.RecordRoute(r, r.Method+" "+APIPrefix+resource+"?action="+name) // served ones only: a bounded set
	if r.URL.Query().Get("orgId") == "" {
		return nil, ota.Invalid("orgId", "Invalid Argument orgId:orgId is missing")
	}
	multipartUpload := resource == "ota-firmwares" && name == "create"
	if !multipartUpload {
		body, err := io.ReadAll(http.MaxBytesReader(nil, r.Body, MaxBodyBytes))
		if err != nil {
			var tooLarge *http.MaxBytesError
			if errors.As(err, &tooLarge) {
				return nil, &ota.Error{Code: ota.CodeTooLarge, Field: "body", Message: "the request body exceeds 1 MiB"}
			}
			return nil, httpx.UploadError(r, err)
		}
		c.body = body
	}
	p, err := httpx.Authenticated(r, func() (service.Principal, error) { return a.authenticate(r, c.body) })
	if err != nil {
		return nil, err
	}
	if err := p.Allow(actionKind(name)); err != nil {
		return nil, err
	}
	c.p = p
	return act(r.Context(), c)
}

func (a *API) logFailure(r *http.Request, err error) {
	if c := ota.ErrorCode(err); c == ota.CodeInternal || c == ota.CodeUnavailable {
		var we *wireError
		if !errors.As(err, &we) {
			a.log.Error("enos request failed", "request_id", httpx.RequestIDFrom(r.Context()), "path", r.URL.Path, "err", err)
		}
	}
}

func writeJSON(w http.ResponseWriter, v any) {
	b, err := json.Marshal(v)
	if err != nil {
		b = []byte(`{"code":99500,"msg":"Internal error: retry later"}`)
	}
	w.Header().Set("Content-Type", "application/json")
	// EnOS answers business errors with HTTP 200 and a non-zero code.
	w.WriteHeader(http.StatusOK)
	_, _ = w.Write(b)
}

// decode reads the JSON body into v; an empty body leaves v as it is.
func (c *call) decode(v any) error {
	if len(strings.TrimSpace(string(c.body))) == 0 {
		return nil
	}
	if err := json.Unmarshal(c.body, v); err != nil {
		return ota.Invalid("body", "the request body is not valid JSON for this action: %v", err)
	}
	return nil
}

// param is a required query parameter.
func (c *call) param(name string) (string, error) {
	v := c.r.URL.Query().Get(name)
	if v == "" {
		return "", ota.Invalid(name, "Invalid Argument %s:%s is missing", name, name)
	}
	return v, nil
}

// paging reads the request's pagination (pageNo from 1, pageSize 1–200,
// default 10) into a store page and the answer's pagination.
// search reads a search action's body: its page and its expression's
// conditions on the fields the action allows.
func (c *call) search(allowed map[string][]string) (store.Page, []condition, error) {
	var req searchRequest
	if err := c.decode(&req); err != nil {
		return store.Page{}, nil, err
	}
	page, err := c.paging(req)
	if err != nil {
		return store.Page{}, nil, err
	}
	conds, err := parseExpression(req.Expression, allowed)
	return page, conds, err
}

func (c *call) paging(req searchRequest) (store.Page, error) {
	no, size := 1, defaultPageSize
	if req.Pagination != nil {
		if req.Pagination.PageNo != 0 {
			no = req.Pagination.PageNo
		}
		if req.Pagination.PageSize != 0 {
			size = req.Pagination.PageSize
		}
	}
	if no < 1 {
		return store.Page{}, ota.Invalid("pagination.pageNo", "pagination.pageNo starts at 1, got %d", no)
	}
	if size < 1 || size > maxPageSize {
		return store.Page{}, ota.Invalid("pagination.pageSize", "pagination.pageSize must be 1–%d, got %d", maxPageSize, size)
	}
	// A pageNo so large that the offset would not fit is refused, not
	// wrapped into a negative offset (which the store reads as page 1).
	if no-1 > math.MaxInt32/size {
		return store.Page{}, ota.Invalid("pagination.pageNo", "pagination.pageNo %d is beyond the last page of any list (pageSize %d)", no, size)
	}
	c.page = &pagination{PageNo: no, PageSize: size}
	return store.Page{Limit: size, Offset: (no - 1) * size}, nil
}

// ---- firmware ----

func (a *API) createFirmware(ctx context.Context, c *call) (any, error) {
	c.op = opFirmware
	productKey, err := c.param("productKey")
	if err != nil {
		return nil, err
	}
	mt, params, err := mime.ParseMediaType(c.r.Header.Get("Content-Type"))
	if err != nil || mt != "multipart/form-data" {
		return nil, ota.Invalid("body", "create firmware takes multipart/form-data with the parts metadata and file")
	}
	mr := multipart.NewReader(http.MaxBytesReader(nil, c.r.Body, MaxUploadBytes), params["boundary"])
	var meta *firmwareMetadata
	for {
		part, err := mr.NextPart()
		if err == io.EOF {
			return nil, ota.Invalid("file", "the multipart part file (the firmware binary) is missing")
		}
		if err != nil {
			return nil, ota.Invalid("body", "the multipart body could not be read: %v", err)
		}
		switch part.FormName() {
		case "metadata":
			raw, err := io.ReadAll(io.LimitReader(part, maxMetadataBytes))
			if err != nil {
				return nil, ota.Invalid("metadata", "the metadata part could not be read")
			}
			meta = &firmwareMetadata{}
			if err := json.Unmarshal([]byte(lenientJSON(string(raw))), meta); err != nil {
				return nil, ota.Invalid("metadata", "metadata is not a JSON object of name, version, signMethod, sign, desc, enableVerification: %v", err)
			}
		case "file":
			if meta == nil {
				return nil, ota.Invalid("metadata", "send the metadata part before the file part")
			}
			in, err := meta.toPackage(productKey)
			if err != nil {
				return nil, err
			}
			pkg, err := a.svc.CreatePackage(ctx, c.p, in, part.FileName(), httpx.Upload(c.r, part))
			var tooLarge *http.MaxBytesError
			if errors.As(err, &tooLarge) {
				return nil, &ota.Error{Code: ota.CodeTooLarge, Field: "file", Message: fmt.Sprintf("the upload is larger than the %d-byte limit", MaxUploadBytes), Err: err}
			}
			if err != nil {
				return nil, err
			}
			return map[string]string{"firmwareId": pkg.ID}, nil
		}
	}
}

func (m *firmwareMetadata) toPackage(productKey string) (ota.Package, error) {
	if m.Name.DefaultValue == "" {
		return ota.Package{}, ota.Invalid("name", "metadata.name.defaultValue is required")
	}
	if m.Version == "" || m.SignMethod == "" || m.Sign == "" || m.EnableVerification == nil {
		return ota.Package{}, ota.Invalid("metadata", "metadata needs version, signMethod, sign and enableVerification")
	}
	method, err := ota.ParseSignMethod(m.SignMethod)
	if err != nil {
		return ota.Package{}, err
	}
	return ota.Package{ProductKey: productKey, Module: ota.DefaultModule, Kind: ota.KindFirmware, Name: m.Name.DefaultValue,
		LocalNames: m.Name.translations(), Version: m.Version, Description: m.Desc, SignMethod: method, Sign: strings.ToLower(m.Sign),
		NeedVerify: *m.EnableVerification}, nil
}

func firmwareOf(p ota.Package) firmwareInfo {
	return firmwareInfo{OrgID: p.TenantID, FirmwareID: p.ID, ProductKey: p.ProductKey, Name: nameOf(p.Name, p.LocalNames),
		Version: p.Version, Desc: p.Description, SignMethod: strings.ToLower(string(p.SignMethod)), Sign: p.Sign,
		FileURL: FileURI(p.ID, p.FileName), FileSize: p.Size, EnableVerification: p.NeedVerify, IsVerified: p.VerifyStatus == ota.VerifyPassed,
		CreateTime: p.CreatedAt.UnixMilli()}
}

// nameOf is a name as EnOS shows it: the default name and, when there are
// any, its translations by locale.
func nameOf(name string, local map[string]string) StringI18n {
	return StringI18n{DefaultValue: name, I18nValue: local}
}

// FileURI is a firmware file's enos-connect:// identifier: the package id
// and the file's extension. Devices fetch it from the device file endpoint
// (device.go); the management API shows the same URI as fileUrl.
func FileURI(packageID, fileName string) string {
	ext := ""
	if i := strings.LastIndexByte(fileName, '.'); i >= 0 && !strings.ContainsAny(fileName[i:], "/?#&") {
		ext = fileName[i:]
	}
	return fileURIScheme + packageID + ext
}

const fileURIScheme = "enos-connect://"

// packageOfURI is the package id an enos-connect:// URI names.
func packageOfURI(uri string) (string, bool) {
	rest, ok := strings.CutPrefix(uri, fileURIScheme)
	if !ok {
		return "", false
	}
	id, _, _ := strings.Cut(rest, ".")
	return id, id != "" && !strings.ContainsAny(id, "/?#&")
}

func (a *API) getFirmware(ctx context.Context, c *call) (any, error) {
	c.op = opFirmware
	id, err := c.param("firmwareId")
	if err != nil {
		return nil, err
	}
	p, err := a.svc.GetPackage(ctx, c.p, id)
	if err != nil {
		return nil, err
	}
	return firmwareOf(p), nil
}

var firmwareFields = map[string][]string{"productKey": {"=", "in"}, "version": {"="}, "name.defaultValue": {"=", "like"},
	localizedName: {"=", "like"}, "name": {"like"}, "firmwareId": {"="}}

func (a *API) searchFirmware(ctx context.Context, c *call) (any, error) {
	c.op = opFirmware
	page, conds, err := c.search(firmwareFields)
	if err != nil {
		return nil, err
	}
	f := store.PackageFilter{Kind: ota.KindFirmware}
	f.NameLocale = nameLocale(conds)
	for _, cd := range conds {
		switch cd.field {
		case "productKey":
			if len(cd.values) != 1 {
				return nil, ota.Invalid("expression", "productKey in (…) takes one product here: search each product separately")
			}
			f.ProductKey = cd.values[0]
		case "version":
			f.Version = cd.values[0]
		case "name.defaultValue", "name", localizedName:
			if cd.op == "like" {
				f.NameContains = likeText(cd.values[0])
			} else {
				f.Name = cd.values[0]
			}
		case "firmwareId":
			p, err := a.svc.GetPackage(ctx, c.p, cd.values[0])
			if ota.ErrorCode(err) == ota.CodeNotFound {
				return []firmwareInfo{}, nil
			}
			if err != nil {
				return nil, err
			}
			c.page.TotalSize = 1
			return []firmwareInfo{firmwareOf(p)}, nil
		}
	}
	list, total, err := a.svc.ListPackages(ctx, c.p, f, page)
	if err != nil {
		return nil, err
	}
	c.page.TotalSize = total
	out := make([]firmwareInfo, 0, len(list))
	for _, p := range list {
		out = append(out, firmwareOf(p))
	}
	return out, nil
}

func (a *API) deleteFirmware(ctx context.Context, c *call) (any, error) {
	c.op = opFirmwareDelete
	id, err := c.param("firmwareId")
	if err != nil {
		return nil, err
	}
	return nil, a.svc.DeletePackage(ctx, c.p, id)
}

func sortStrings(s []string) { sort.Strings(s) }

// actionKind tells the role check whether an action only reads: EnOS accepts
// GET and POST for every action, so the method says nothing; get and search
// actions read, everything else changes state.
func actionKind(name string) service.Action {
	if name == "get" || strings.HasPrefix(name, "search") {
		return service.ActionRead
	}
	return service.ActionWrite
}
