// Package huaweiiotda answers the Huawei Cloud IoTDA v5 OTA API the way Huawei
// does, so that huaweicloud-sdk-go-v3 (services/iotda/v5) works against
// Updraft unchanged: OTA packages, OTA modules and upgrade batch tasks under
// /v5/iot/{project_id}/, signed with SDK-HMAC-SHA256 or V11-HMAC-SHA256. It is a
// thin translation over internal/service; README.md lists what is supported.
package huaweiiotda

import (
	"context"
	"encoding/json"
	"errors"
	"io"
	"log/slog"
	"net/http"
	"sort"
	"time"

	"github.com/updraft-ota/updraft/internal/api/httpx"
	"github.com/updraft-ota/updraft/internal/ota"
	"github.com/updraft-ota/updraft/internal/service"
	"github.com/updraft-ota/updraft/internal/store"
)

// PathPrefix is where the dialect mounts.
const PathPrefix = "/v5/iot/"

const (
	maxBodyBytes = 8 << 20 // a 30 000-target CreateBatchTask is about 4 MB
	scanBatch    = 500     // page size when the dialect filters a listing itself
)

// Options configure the dialect.
type Options struct {
	// Now is the clock X-Sdk-Date is checked against (default: the service's).
	Now func() time.Time
	Log *slog.Logger
}

// API serves the IoTDA OTA operations.
type API struct {
	svc    *service.Service
	verify verifier
	log    *slog.Logger
}

// New builds the dialect over svc.
func New(svc *service.Service, opts Options) *API {
	if opts.Now == nil {
		opts.Now = svc.Now
	}
	if opts.Log == nil {
		opts.Log = slog.Default()
	}
	return &API{svc: svc, verify: verifier{keys: svc.AccessKey, now: opts.Now}, log: opts.Log}
}

// Register mounts the dialect on mux at PathPrefix.
func (a *API) Register(mux *http.ServeMux) { mux.Handle(PathPrefix, a.Handler()) }

// call is one authenticated request.
type call struct {
	r    *http.Request
	p    service.Principal
	body []byte
	// productNames caches product names for the response.
	productNames map[string]string
}

type handlerFunc func(ctx context.Context, c *call) (status int, body any, err error)

// Handler returns the dialect's routes; anything else under PathPrefix is a
// 404 in Huawei's envelope.
func (a *API) Handler() http.Handler {
	mux := http.NewServeMux()
	const base = "/v5/iot/{project_id}"
	routes := []struct {
		pattern string
		h       handlerFunc
	}{
		{"POST " + base + "/ota-upgrades/packages", a.createOtaPackage},
		{"GET " + base + "/ota-upgrades/packages", a.listOtaPackages},
		{"GET " + base + "/ota-upgrades/packages/{package_id}", a.showOtaPackage},
		{"DELETE " + base + "/ota-upgrades/packages/{package_id}", a.deleteOtaPackage},
		{"POST " + base + "/batchtasks", a.createBatchTask},
		{"GET " + base + "/batchtasks", a.listBatchTasks},
		{"GET " + base + "/batchtasks/{task_id}", a.showBatchTask},
		{"DELETE " + base + "/batchtasks/{task_id}", a.deleteBatchTask},
		{"POST " + base + "/batchtasks/{task_id}/stop", a.stopBatchTask},
		{"POST " + base + "/batchtasks/{task_id}/retry", a.retryBatchTask},
		{"POST " + base + "/batchtasks/{task_id}/confirm", a.confirmBatchTask},
		{"POST " + base + "/ota-upgrades/modules", a.createOtaModule},
		{"GET " + base + "/ota-upgrades/modules", a.listOtaModules},
		{"GET " + base + "/ota-upgrades/modules/{module_id}", a.showOtaModule},
		{"PUT " + base + "/ota-upgrades/modules/{module_id}", a.updateOtaModule},
		{"DELETE " + base + "/ota-upgrades/modules/{module_id}", a.deleteOtaModule},
	}
	for _, rt := range routes {
		mux.Handle(rt.pattern, a.serve(rt.h))
	}
	mux.HandleFunc(PathPrefix, func(w http.ResponseWriter, r *http.Request) {
		writeError(w, ota.Errorf(ota.CodeNotFound, "%s %s is not an IoTDA operation Updraft serves", r.Method, r.URL.Path))
	})
	// Every response carries X-Request-Id, which the SDK reports with errors.
	return httpx.RequestID(mux)
}

// serve reads and authenticates the request, runs h and writes its answer.
func (a *API) serve(h handlerFunc) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		status, body, err := a.run(r, h)
		if err != nil {
			if c := ota.ErrorCode(err); c == ota.CodeInternal || c == ota.CodeUnavailable {
				a.log.Error("iotda request failed", "request_id", httpx.RequestIDFrom(r.Context()), "method", r.Method, "path", r.URL.Path, "err", err)
			}
			writeError(w, err)
			return
		}
		if body == nil {
			w.WriteHeader(status)
			return
		}
		writeJSON(w, status, body)
	})
}

func (a *API) run(r *http.Request, h handlerFunc) (int, any, error) {
	body, err := io.ReadAll(http.MaxBytesReader(nil, r.Body, maxBodyBytes))
	if err != nil {
		var tooBig *http.MaxBytesError
		if errors.As(err, &tooBig) {
			return 0, nil, &ota.Error{Code: ota.CodeTooLarge, Field: fieldBody, Message: "the request body exceeds 8 MiB"}
		}
		return 0, nil, ota.Invalid(fieldBody, "the request body could not be read")
	}
	p, err := a.verify.authenticate(r, body, r.PathValue("project_id"))
	if err != nil {
		return 0, nil, err
	}
	if err := p.AllowMethod(r.Method); err != nil { // every IoTDA POST/PUT/DELETE changes something
		return 0, nil, err
	}
	return h(r.Context(), &call{r: r, p: p, body: body, productNames: map[string]string{}})
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	b, err := json.Marshal(v)
	if err != nil {
		writeError(w, ota.Internal(err, "encode response"))
		return
	}
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	_, _ = w.Write(b)
}

func writeError(w http.ResponseWriter, err error) {
	status, body := toWire(err)
	b, _ := json.Marshal(body)
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	_, _ = w.Write(b)
}

// decode reads a JSON body into v; required says whether an empty body is an error.
func (c *call) decode(v any, required bool) error {
	if len(c.body) == 0 {
		if required {
			return ota.Invalid(fieldBody, "a JSON request body is required")
		}
		return nil
	}
	if err := json.Unmarshal(c.body, v); err != nil {
		return ota.Invalid(fieldBody, "the request body is not valid JSON for this operation: %v", err)
	}
	return nil
}

// productName looks a product's name up once per request; "" if it cannot.
func (a *API) productName(ctx context.Context, c *call, key string) string {
	if n, ok := c.productNames[key]; ok {
		return n
	}
	prod, err := a.svc.GetProduct(ctx, c.p, key)
	if err != nil {
		c.productNames[key] = ""
		return ""
	}
	c.productNames[key] = prod.Name
	return prod.Name
}

// pageOf applies Huawei's marker/offset/limit to items sorted newest (highest
// id) first, for listings the dialect filters itself.
func pageOf[T any](items []T, id func(T) string, pq pageQuery) ([]T, pageInfo) {
	info := pageInfo{Count: int64(len(items))}
	start := 0
	if pq.marker != "" {
		start = sort.Search(len(items), func(i int) bool { return id(items[i]) < pq.marker })
	}
	start += pq.offset
	if start > len(items) {
		start = len(items)
	}
	end := min(start+pq.limit, len(items))
	out := items[start:end]
	if len(out) > 0 {
		info.Marker = id(out[len(out)-1])
	}
	return out, info
}

// ---- packages ---------------------------------------------------------------

func (a *API) createOtaPackage(ctx context.Context, c *call) (int, any, error) {
	var req createOtaPackageRequest
	if err := c.decode(&req, true); err != nil {
		return 0, nil, err
	}
	pkg, bucket, key, err := req.toPackage()
	if err != nil {
		return 0, nil, err
	}
	pkg, err = a.svc.RegisterObject(ctx, c.p, pkg, bucket, key)
	if err != nil {
		return 0, nil, err
	}
	return http.StatusCreated, fromPackage(pkg, a.productName(ctx, c, pkg.ProductKey), true), nil
}

func (a *API) listOtaPackages(ctx context.Context, c *call) (int, any, error) {
	q := c.r.URL.Query()
	kind, ok := packageTypes[q.Get("package_type")]
	if !ok {
		return 0, nil, ota.Invalid("package_type", "package_type is required: firmwarePackage, softwarePackage or modulePackage, got %q", q.Get("package_type"))
	}
	appID := q.Get("app_id")
	if err := checkAppID(appID, false); err != nil {
		return 0, nil, err
	}
	pq, err := parsePage(q)
	if err != nil {
		return 0, nil, err
	}
	f := store.PackageFilter{TenantID: c.p.TenantID, Kind: kind, ProductKey: q.Get("product_id"), Version: q.Get("version")}
	var pkgs []ota.Package
	var info pageInfo
	if appID == "" {
		var count int64
		pkgs, count, err = a.svc.ListPackages(ctx, c.p, f, store.Page{Limit: pq.limit, Offset: pq.offset, BeforeID: pq.marker})
		if err != nil {
			return 0, nil, err
		}
		info.Count = count
		if len(pkgs) > 0 {
			info.Marker = pkgs[len(pkgs)-1].ID
		}
	} else {
		// The package listing has no resource-space filter: scan and filter here.
		var all []ota.Package
		before := ""
		for {
			batch, _, err := a.svc.ListPackages(ctx, c.p, f, store.Page{Limit: scanBatch, BeforeID: before})
			if err != nil {
				return 0, nil, err
			}
			for _, p := range batch {
				if p.Space == appID {
					all = append(all, p)
				}
			}
			if len(batch) < scanBatch {
				break
			}
			before = batch[len(batch)-1].ID
		}
		pkgs, info = pageOf(all, func(p ota.Package) string { return p.ID }, pq)
	}
	out := listOtaPackagesResponse{Packages: []otaPackage{}, Page: info}
	for _, p := range pkgs {
		out.Packages = append(out.Packages, fromPackage(p, a.productName(ctx, c, p.ProductKey), false))
	}
	return http.StatusOK, out, nil
}

func (a *API) showOtaPackage(ctx context.Context, c *call) (int, any, error) {
	pkg, err := a.svc.GetPackage(ctx, c.p, c.r.PathValue("package_id"))
	if err != nil {
		return 0, nil, err
	}
	return http.StatusOK, fromPackage(pkg, a.productName(ctx, c, pkg.ProductKey), true), nil
}

func (a *API) deleteOtaPackage(ctx context.Context, c *call) (int, any, error) {
	if err := a.svc.DeletePackage(ctx, c.p, c.r.PathValue("package_id")); err != nil {
		return 0, nil, err
	}
	return http.StatusNoContent, nil, nil
}

// ---- batch tasks ------------------------------------------------------------

func (a *API) createBatchTask(ctx context.Context, c *call) (int, any, error) {
	var req createBatchTaskRequest
	if err := c.decode(&req, true); err != nil {
		return 0, nil, err
	}
	if err := req.validate(); err != nil {
		return 0, nil, err
	}
	pkgID, err := packageIDOf(req.Document)
	if err != nil {
		return 0, nil, err
	}
	pkg, err := a.svc.GetPackage(ctx, c.p, pkgID)
	if err != nil {
		return 0, nil, err
	}
	job, err := req.toJob(pkg)
	if err != nil {
		return 0, nil, err
	}
	job, err = a.svc.CreateJob(ctx, c.p, job)
	if err != nil {
		return 0, nil, err
	}
	view, err := a.svc.GetJob(ctx, c.p, job.ID)
	if err != nil {
		view = service.JobView{Job: job, Counts: ota.TaskCounts{}}
	}
	return http.StatusCreated, fromJob(view, pkg.Kind), nil
}

// kindOf finds a job's package kind (task_type), which jobs do not carry. A
// job whose package is gone is a module upgrade if it names a module, else a
// firmware upgrade.
func (a *API) kindOf(ctx context.Context, c *call, j ota.Job, cache map[string]ota.PackageKind) ota.PackageKind {
	if k, ok := cache[j.PackageID]; ok {
		return k
	}
	k := ota.KindFirmware
	if pkg, err := a.svc.GetPackage(ctx, c.p, j.PackageID); err == nil {
		k = pkg.Kind
	} else if j.Module != "" && j.Module != ota.DefaultModule {
		k = ota.KindModule
	}
	cache[j.PackageID] = k
	return k
}

func (a *API) showBatchTask(ctx context.Context, c *call) (int, any, error) {
	view, err := a.svc.GetJob(ctx, c.p, c.r.PathValue("task_id"))
	if err != nil {
		return 0, nil, err
	}
	q := c.r.URL.Query()
	pq, err := parsePage(q)
	if err != nil {
		return 0, nil, err
	}
	f := store.TaskFilter{TenantID: c.p.TenantID, JobID: view.Job.ID, AfterID: parseTaskMarker(pq.marker)}
	none := false // the filter can match nothing
	if st := q.Get("task_detail_status"); st != "" {
		states, err := statesFor(st)
		if err != nil {
			return 0, nil, err
		}
		f.States = states
		none = states == nil
	}
	if target := q.Get("target"); target != "" {
		if err := checkDeviceID("target", target); err != nil {
			return 0, nil, err
		}
		name, ok := nameInProduct(view.Job.ProductKey, target)
		f.Devices = []string{name}
		none = none || !ok
	}
	out := showBatchTaskResponse{
		Batchtask:   fromJob(view, a.kindOf(ctx, c, view.Job, map[string]ota.PackageKind{})),
		TaskDetails: []taskDetail{},
	}
	if none {
		return http.StatusOK, out, nil
	}
	tasks, count, err := a.svc.ListTasks(ctx, c.p, f, store.Page{Limit: pq.limit, Offset: pq.offset})
	if err != nil {
		return 0, nil, err
	}
	out.Page.Count = count
	for _, t := range tasks {
		out.TaskDetails = append(out.TaskDetails, detailOf(t))
	}
	if len(tasks) > 0 {
		out.Page.Marker = taskMarker(tasks[len(tasks)-1].ID)
	}
	return http.StatusOK, out, nil
}

// jobStatesFor narrows a ListBatchTasks status filter to job states.
var jobStatesFor = map[string][]ota.JobState{
	statusWaitting:       {ota.JobPlanned},
	statusInitializing:   {ota.JobRunning, ota.JobPaused},
	statusProcessing:     {ota.JobRunning, ota.JobPaused},
	statusSuccess:        {ota.JobCompleted},
	statusFail:           {ota.JobCompleted},
	statusPartialSuccess: {ota.JobCompleted},
	statusStopped:        {ota.JobCanceled},
	statusStopping:       nil, // stopping is immediate in Updraft
}

func (a *API) listBatchTasks(ctx context.Context, c *call) (int, any, error) {
	q := c.r.URL.Query()
	kind, ok := taskTypes[q.Get("task_type")]
	if !ok {
		return 0, nil, ota.Invalid("task_type", "task_type is required: firmwareUpgrade, softwareUpgrade or moduleUpgrade, got %q", q.Get("task_type"))
	}
	appID := q.Get("app_id")
	if err := checkAppID(appID, false); err != nil {
		return 0, nil, err
	}
	status := q.Get("status")
	states, known := jobStatesFor[status]
	if status != "" && !known {
		return 0, nil, ota.Invalid("status", "status %q is not one of %v", status, taskStatuses)
	}
	pq, err := parsePage(q)
	if err != nil {
		return 0, nil, err
	}
	out := listBatchTasksResponse{Batchtasks: []batchTask{}}
	if status != "" && states == nil {
		return http.StatusOK, out, nil
	}
	// Jobs do not record their package kind, so the listing is filtered here.
	kinds := map[string]ota.PackageKind{}
	views := map[string]service.JobView{}
	var matched []ota.Job
	before := ""
	for {
		batch, _, err := a.svc.ListJobs(ctx, c.p, store.JobFilter{TenantID: c.p.TenantID, States: states}, store.Page{Limit: scanBatch, BeforeID: before})
		if err != nil {
			return 0, nil, err
		}
		for _, j := range batch {
			if a.kindOf(ctx, c, j, kinds) != kind || appID != "" && j.Space != appID {
				continue
			}
			if status != "" {
				v, err := a.svc.GetJob(ctx, c.p, j.ID)
				if err != nil {
					return 0, nil, err
				}
				if taskStatus(v.Job, v.Counts) != status {
					continue
				}
				views[j.ID] = v
			}
			matched = append(matched, j)
		}
		if len(batch) < scanBatch {
			break
		}
		before = batch[len(batch)-1].ID
	}
	page, info := pageOf(matched, func(j ota.Job) string { return j.ID }, pq)
	out.Page = info
	for _, j := range page {
		v, ok := views[j.ID]
		if !ok {
			if v, err = a.svc.GetJob(ctx, c.p, j.ID); err != nil {
				return 0, nil, err
			}
		}
		out.Batchtasks = append(out.Batchtasks, fromJob(v, kind))
	}
	return http.StatusOK, out, nil
}

// targetAction runs stop, retry or confirm on the listed targets (all when
// none are listed).
func (a *API) targetAction(ctx context.Context, c *call, all func(jobID string) error,
	some func(ctx context.Context, p service.Principal, jobID string, devices []string) ([]service.TaskResult, error)) (int, any, error) {
	var req batchTargets
	if err := c.decode(&req, false); err != nil {
		return 0, nil, err
	}
	if len(req.Targets) > maxOpTargets {
		return 0, nil, ota.Invalid("targets", "at most %d targets per request, got %d", maxOpTargets, len(req.Targets))
	}
	view, err := a.svc.GetJob(ctx, c.p, c.r.PathValue("task_id"))
	if err != nil {
		return 0, nil, err
	}
	job := view.Job
	out := batchTargetResults{Targets: []batchTargetResult{}}
	if len(req.Targets) == 0 {
		if all != nil {
			return http.StatusOK, out, all(job.ID)
		}
		results, err := some(ctx, c.p, job.ID, nil)
		if err != nil {
			return 0, nil, err
		}
		for _, r := range results {
			out.Targets = append(out.Targets, targetResult(DeviceID(job.ProductKey, r.Device), r.Err, r.OK))
		}
		return http.StatusOK, out, nil
	}
	var names []string
	rejected := map[string]error{}
	for _, t := range req.Targets {
		if err := checkDeviceID("targets", t); err != nil {
			rejected[t] = err
			continue
		}
		name, ok := nameInProduct(job.ProductKey, t)
		if !ok {
			rejected[t] = ota.Invalid("targets", "device %q is not a device of this task's product %s", t, job.ProductKey)
			continue
		}
		names = append(names, name)
	}
	byDevice := map[string]service.TaskResult{}
	if len(names) > 0 {
		results, err := some(ctx, c.p, job.ID, names)
		if err != nil {
			return 0, nil, err
		}
		for _, r := range results {
			byDevice[r.Device] = r
		}
	}
	for _, t := range req.Targets {
		if err, bad := rejected[t]; bad {
			out.Targets = append(out.Targets, targetResult(t, err, false))
			continue
		}
		name, _ := nameInProduct(job.ProductKey, t)
		r, ok := byDevice[name]
		if !ok {
			r = service.TaskResult{Device: name, Err: ota.NotFound("sub-task of device", t)}
		}
		out.Targets = append(out.Targets, targetResult(t, r.Err, r.OK))
	}
	return http.StatusOK, out, nil
}

func targetResult(target string, err error, ok bool) batchTargetResult {
	if ok && err == nil {
		return batchTargetResult{Target: target, Status: "success"}
	}
	if err == nil {
		err = ota.Errorf(ota.CodeConflict, "the sub-task is not in a state that allows this operation")
	}
	_, body := toWire(err)
	return batchTargetResult{Target: target, Status: "failure", ErrorCode: body.ErrorCode, ErrorMsg: body.ErrorMsg}
}

func (a *API) stopBatchTask(ctx context.Context, c *call) (int, any, error) {
	return a.targetAction(ctx, c, func(jobID string) error {
		_, err := a.svc.CancelJob(ctx, c.p, jobID)
		return err
	}, a.svc.CancelTasks)
}

func (a *API) retryBatchTask(ctx context.Context, c *call) (int, any, error) {
	return a.targetAction(ctx, c, nil, a.svc.RetryTasks)
}

func (a *API) confirmBatchTask(ctx context.Context, c *call) (int, any, error) {
	return a.targetAction(ctx, c, nil, a.svc.ConfirmTasks)
}

func (a *API) deleteBatchTask(ctx context.Context, c *call) (int, any, error) {
	if err := a.svc.DeleteJob(ctx, c.p, c.r.PathValue("task_id")); err != nil {
		return 0, nil, err
	}
	return http.StatusNoContent, nil, nil
}

// ---- modules ----------------------------------------------------------------

func (a *API) createOtaModule(ctx context.Context, c *call) (int, any, error) {
	var req createOtaModuleRequest
	if err := c.decode(&req, true); err != nil {
		return 0, nil, err
	}
	if err := checkAppID(req.AppID, true); err != nil {
		return 0, nil, err
	}
	if err := checkAlias(req.AliasName); err != nil {
		return 0, nil, err
	}
	m, err := a.svc.CreateModule(ctx, c.p, ota.Module{ProductKey: req.ProductID, Name: req.ModuleName, Alias: req.AliasName, Description: req.Description})
	if err != nil {
		return 0, nil, err
	}
	out := fromModule(m, a.productName(ctx, c, m.ProductKey))
	out.AppID = req.AppID
	return http.StatusCreated, out, nil
}

// modules lists the custom modules of one product, or of all the tenant's
// products, sorted by module_id, highest first (the marker order).
func (a *API) modules(ctx context.Context, c *call, productKey string) ([]ota.Module, error) {
	var products []string
	if productKey != "" {
		products = []string{productKey}
	} else {
		for off := 0; ; off += scanBatch {
			batch, _, err := a.svc.ListProducts(ctx, c.p, store.Page{Limit: scanBatch, Offset: off})
			if err != nil {
				return nil, err
			}
			for _, p := range batch {
				products = append(products, p.Key)
				c.productNames[p.Key] = p.Name
			}
			if len(batch) < scanBatch {
				break
			}
		}
	}
	var out []ota.Module
	for _, pk := range products {
		for off := 0; ; off += scanBatch {
			batch, _, err := a.svc.ListModules(ctx, c.p, pk, store.Page{Limit: scanBatch, Offset: off})
			if err != nil {
				if productKey != "" && ota.ErrorCode(err) == ota.CodeNotFound {
					return nil, nil
				}
				return nil, err
			}
			out = append(out, batch...)
			if len(batch) < scanBatch {
				break
			}
		}
	}
	sort.Slice(out, func(i, j int) bool {
		return ModuleID(out[i].ProductKey, out[i].Name) > ModuleID(out[j].ProductKey, out[j].Name)
	})
	return out, nil
}

func (a *API) findModule(ctx context.Context, c *call, id string) (ota.Module, error) {
	all, err := a.modules(ctx, c, "")
	if err != nil {
		return ota.Module{}, err
	}
	for _, m := range all {
		if ModuleID(m.ProductKey, m.Name) == id {
			return m, nil
		}
	}
	return ota.Module{}, ota.NotFound("OTA module", id)
}

func (a *API) listOtaModules(ctx context.Context, c *call) (int, any, error) {
	q := c.r.URL.Query()
	if err := checkAppID(q.Get("app_id"), false); err != nil {
		return 0, nil, err
	}
	pq, err := parsePage(q)
	if err != nil {
		return 0, nil, err
	}
	all, err := a.modules(ctx, c, q.Get("product_id"))
	if err != nil {
		return 0, nil, err
	}
	page, info := pageOf(all, func(m ota.Module) string { return ModuleID(m.ProductKey, m.Name) }, pq)
	out := listOtaModulesResponse{Modules: []otaModule{}, Page: info}
	for _, m := range page {
		out.Modules = append(out.Modules, fromModule(m, a.productName(ctx, c, m.ProductKey)))
	}
	return http.StatusOK, out, nil
}

func (a *API) showOtaModule(ctx context.Context, c *call) (int, any, error) {
	m, err := a.findModule(ctx, c, c.r.PathValue("module_id"))
	if err != nil {
		return 0, nil, err
	}
	return http.StatusOK, fromModule(m, a.productName(ctx, c, m.ProductKey)), nil
}

func (a *API) updateOtaModule(ctx context.Context, c *call) (int, any, error) {
	var req updateOtaModuleRequest
	if err := c.decode(&req, true); err != nil {
		return 0, nil, err
	}
	if req.AliasName != nil {
		if err := checkAlias(*req.AliasName); err != nil {
			return 0, nil, err
		}
	}
	m, err := a.findModule(ctx, c, c.r.PathValue("module_id"))
	if err != nil {
		return 0, nil, err
	}
	if req.AliasName != nil {
		m.Alias = *req.AliasName
	}
	if req.Description != nil {
		m.Description = *req.Description
	}
	m, err = a.svc.UpdateModule(ctx, c.p, m)
	if err != nil {
		return 0, nil, err
	}
	return http.StatusOK, fromModule(m, a.productName(ctx, c, m.ProductKey)), nil
}

func (a *API) deleteOtaModule(ctx context.Context, c *call) (int, any, error) {
	m, err := a.findModule(ctx, c, c.r.PathValue("module_id"))
	if err != nil {
		return 0, nil, err
	}
	if err := a.svc.DeleteModule(ctx, c.p, m.ProductKey, m.Name); err != nil {
		return 0, nil, err
	}
	return http.StatusNoContent, nil, nil
}
