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
	"slices"
	"time"

	"github.com/updraft-ota/updraft/internal/api/httpx"
	"github.com/updraft-ota/updraft/internal/ota"
	"github.com/updraft-ota/updraft/internal/service"
	"github.com/updraft-ota/updraft/internal/store"
)

// PathPrefix is where the dialect mounts.
const PathPrefix = "/v5/iot/"

const (
	// MaxBodyBytes limits a request body (IOTDA.000006 beyond it): a
	// 30 000-target CreateBatchTask is about 4 MB.
	MaxBodyBytes = 8 << 20
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
		h := a.serve(rt.h)
		mux.Handle(rt.pattern, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			httpx.RecordRoute(r, rt.pattern)
			h.ServeHTTP(w, r)
		}))
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
	body, err := io.ReadAll(http.MaxBytesReader(nil, r.Body, MaxBodyBytes))
	if err != nil {
		var tooBig *http.MaxBytesError
		if errors.As(err, &tooBig) {
			return 0, nil, &ota.Error{Code: ota.CodeTooLarge, Field: fieldBody, Message: "the request body exceeds 8 MiB"}
		}
		return 0, nil, ota.Invalid(fieldBody, "the request body could not be read")
	}
	p, err := httpx.Authenticated(r, func() (service.Principal, error) {
		return a.verify.authenticate(r, body, r.PathValue("project_id"))
	})
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
	httpx.SetRetryAfter(w, err)
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
	out := fromPackage(pkg, a.productName(ctx, c, pkg.ProductKey), true)
	// Seed 000: a sign_method the request carried is echoed (as the method
	// used); one it left out stays out, as in the documented example.
	if req.FileLocation != nil && req.FileLocation.ObsLocation != nil && req.FileLocation.ObsLocation.SignMethod != "" {
		out.FileLocation.ObsLocation.SignMethod = string(pkg.SignMethod)
	}
	return http.StatusCreated, out, nil
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
	f := store.PackageFilter{TenantID: c.p.TenantID, Kind: kind, ProductKey: q.Get("product_id"), Version: q.Get("version"), Space: appID}
	pkgs, count, err := a.svc.ListPackages(ctx, c.p, f, pq.storePage())
	if err != nil {
		return 0, nil, err
	}
	info := pageInfo{Count: count}
	if len(pkgs) > 0 {
		info.Marker = pkgs[len(pkgs)-1].ID
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
	return http.StatusCreated, fromJob(view), nil
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
		Batchtask:   fromJob(view),
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

// jobFilterFor narrows a ListBatchTasks status filter to a job filter; ok
// is false for a status no job has (Stopping: stopping is immediate).
func jobFilterFor(status string) (f store.JobFilter, ok bool) {
	materialized, initializing := true, false
	switch status {
	case "":
	case statusWaitting:
		f.States = []ota.JobState{ota.JobPlanned}
	case statusInitializing:
		f.States, f.Materialized = []ota.JobState{ota.JobRunning, ota.JobPaused}, &initializing
	case statusProcessing:
		f.States, f.Materialized = []ota.JobState{ota.JobRunning, ota.JobPaused}, &materialized
	case statusSuccess:
		f.States, f.Outcome = []ota.JobState{ota.JobCompleted}, ota.OutcomeSucceeded
	case statusFail:
		f.States, f.Outcome = []ota.JobState{ota.JobCompleted}, ota.OutcomeFailed
	case statusPartialSuccess:
		f.States, f.Outcome = []ota.JobState{ota.JobCompleted}, ota.OutcomePartial
	case statusStopped:
		f.States = []ota.JobState{ota.JobCanceled}
	default:
		return f, false
	}
	return f, status != statusStopping
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
	if status != "" && !slices.Contains(taskStatuses, status) {
		return 0, nil, ota.Invalid("status", "status %q is not one of %v", status, taskStatuses)
	}
	pq, err := parsePage(q)
	if err != nil {
		return 0, nil, err
	}
	out := listBatchTasksResponse{Batchtasks: []batchTask{}}
	f, some := jobFilterFor(status)
	if !some {
		return http.StatusOK, out, nil
	}
	f.TenantID, f.PackageKind, f.Space = c.p.TenantID, kind, appID
	jobs, count, err := a.svc.ListJobs(ctx, c.p, f, pq.storePage())
	if err != nil {
		return 0, nil, err
	}
	out.Page.Count = count
	for _, j := range jobs {
		v, err := a.svc.GetJob(ctx, c.p, j.ID)
		if err != nil {
			return 0, nil, err
		}
		out.Batchtasks = append(out.Batchtasks, fromJob(v))
	}
	if len(jobs) > 0 {
		out.Page.Marker = jobs[len(jobs)-1].ID
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

func (a *API) findModule(ctx context.Context, c *call, id string) (ota.Module, error) {
	ms, _, err := a.svc.FindModules(ctx, c.p, store.ModuleFilter{ID: id}, store.Page{Limit: 1})
	if err != nil {
		return ota.Module{}, err
	}
	if len(ms) == 0 {
		return ota.Module{}, ota.NotFound("OTA module", id)
	}
	return ms[0], nil
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
	ms, count, err := a.svc.FindModules(ctx, c.p, store.ModuleFilter{ProductKey: q.Get("product_id")}, pq.storePage())
	if err != nil {
		return 0, nil, err
	}
	out := listOtaModulesResponse{Modules: []otaModule{}, Page: pageInfo{Count: count}}
	for _, m := range ms {
		out.Modules = append(out.Modules, fromModule(m, a.productName(ctx, c, m.ProductKey)))
	}
	if len(ms) > 0 {
		out.Page.Marker = ms[len(ms)-1].ID
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
