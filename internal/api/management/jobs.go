package management

// Jobs and their tasks: /api/v1/jobs. The create body is a stable contract
// (openapi/jobs.json); rules are the service's (CreateJob and the engine).

import (
	"context"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/updraft-ota/updraft/apiv1"
	"github.com/updraft-ota/updraft/internal/api/httpx"
	"github.com/updraft-ota/updraft/internal/ota"
	"github.com/updraft-ota/updraft/internal/service"
	"github.com/updraft-ota/updraft/internal/store"
)

func (a *API) registerJobs(mux *http.ServeMux) {
	a.route(mux, "POST /api/v1/jobs", a.createJob)
	a.route(mux, "GET /api/v1/jobs", a.listJobs)
	a.route(mux, "GET /api/v1/jobs/{id}", a.getJob)
	a.route(mux, "DELETE /api/v1/jobs/{id}", a.deleteJob)
	a.route(mux, "POST /api/v1/jobs/{id}/pause", a.jobAction((*service.Service).PauseJob))
	a.route(mux, "POST /api/v1/jobs/{id}/resume", a.jobAction((*service.Service).ResumeJob))
	a.route(mux, "POST /api/v1/jobs/{id}/cancel", a.jobAction((*service.Service).CancelJob))
	a.route(mux, "GET /api/v1/jobs/{id}/tasks", a.listTasks)
	a.route(mux, "POST /api/v1/jobs/{id}/tasks/retry", a.taskAction((*service.Service).RetryTasks, nil))
	a.route(mux, "POST /api/v1/jobs/{id}/tasks/cancel", a.taskAction((*service.Service).CancelTasks, a.cancelTasksWhere))
	a.route(mux, "POST /api/v1/jobs/{id}/tasks/confirm", a.taskAction((*service.Service).ConfirmTasks, nil))
}

// Converters to and from the wire types (package apiv1).

func jobFromCreate(in apiv1.JobCreate) (ota.Job, error) {
	j := ota.Job{
		PackageID: in.PackageID, Name: in.Name, LocalNames: in.LocalNames, Description: in.Description, Type: ota.JobType(in.Type),
		Selection: ota.Selection(in.Selection),
		Target: ota.Target{All: in.Target.All, Devices: in.Target.Devices, Groups: in.Target.Groups,
			Attributes: in.Target.Attributes, Tags: in.Target.Tags, GrayPercent: in.Target.GrayPercent, SourceVersions: in.Target.SourceVersions},
		MaxConcurrency: in.MaxConcurrency, MaxPerMinute: in.MaxPerMinute,
		Retry:          ota.Retry{Count: in.Retry.Count, Interval: time.Duration(in.Retry.IntervalSeconds) * time.Second},
		TimeoutSeconds: in.TimeoutSeconds, NeedPush: in.NeedPush == nil || *in.NeedPush, NeedConfirm: in.NeedConfirm,
		Overwrite: ota.OverwriteMode(in.Overwrite), AllowDeviceRequest: in.AllowDeviceRequest,
		AllowDowngrade: in.AllowDowngrade, TimeoutFrom: ota.TimeoutFrom(in.TimeoutFrom),
		Abort: ota.Abort{FailurePercent: in.Abort.FailurePercent, MinFinished: in.Abort.MinFinished},
		Tags:  tagsToOTA(in.Tags), ExtInfo: in.ExtInfo,
	}
	if in.Start != nil && !*in.Start {
		j.State = ota.JobPaused
	}
	if in.Retry.IntervalSeconds < 0 {
		return j, ota.Invalid("retry.interval_seconds", "retry interval must not be negative")
	}
	if in.Schedule.Start != nil {
		j.Schedule.Start = *in.Schedule.Start
	}
	if in.Schedule.Finish != nil {
		j.Schedule.Finish = *in.Schedule.Finish
	}
	if w := in.Schedule.Window; w != nil {
		from, err := ota.ParseTimeOfDay("schedule.window.from", w.From)
		if err != nil {
			return j, err
		}
		to, err := ota.ParseTimeOfDay("schedule.window.to", w.To)
		if err != nil {
			return j, err
		}
		j.Schedule.Window = &ota.DailyWindow{FromMinute: from, ToMinute: to, UTCOffsetMinutes: w.UTCOffsetMinutes}
	}
	return j, nil
}

func jobFromOTA(j ota.Job) apiv1.Job {
	out := apiv1.Job{
		ID: j.ID, PackageID: j.PackageID, Product: j.ProductKey, Module: j.Module, Name: j.Name, LocalNames: j.LocalNames,
		Description: j.Description, Type: string(j.Type), Selection: string(j.Selection),
		Target: apiv1.JobTarget{All: j.Target.All, Devices: emptyIfNil(j.Target.Devices), Groups: emptyIfNil(j.Target.Groups),
			Attributes: emptyMapIfNil(j.Target.Attributes), Tags: emptyMapIfNil(j.Target.Tags), GrayPercent: j.Target.GrayPercent, SourceVersions: emptyIfNil(j.Target.SourceVersions)},
		Schedule:       apiv1.JobSchedule{Start: utcOrNil(j.Schedule.Start), Finish: utcOrNil(j.Schedule.Finish)},
		MaxConcurrency: j.MaxConcurrency, MaxPerMinute: j.MaxPerMinute,
		Retry:          apiv1.JobRetry{Count: j.Retry.Count, IntervalSeconds: int(j.Retry.Interval / time.Second)},
		TimeoutSeconds: j.TimeoutSeconds, NeedPush: j.NeedPush, NeedConfirm: j.NeedConfirm,
		Overwrite: string(j.Overwrite), AllowDeviceRequest: j.AllowDeviceRequest,
		AllowDowngrade: j.AllowDowngrade, TimeoutFrom: string(j.TimeoutFrom), PackageKind: string(j.PackageKind),
		Abort: apiv1.JobAbort{FailurePercent: j.Abort.FailurePercent, MinFinished: j.Abort.MinFinished},
		Tags:  tagsFromOTA(j.Tags), ExtInfo: j.ExtInfo, State: string(j.State), StateReason: j.StateReason,
		Materialized: j.Materialized, Initializing: !j.Materialized, CreatedAt: utc(j.CreatedAt), UpdatedAt: utc(j.UpdatedAt),
		StartedAt: utcOrNil(j.StartedAt), FinishedAt: utcOrNil(j.FinishedAt),
	}
	if w := j.Schedule.Window; w != nil {
		out.Schedule.Window = &apiv1.JobWindow{From: ota.FormatTimeOfDay(w.FromMinute), To: ota.FormatTimeOfDay(w.ToMinute),
			UTCOffsetMinutes: w.UTCOffsetMinutes}
	}
	return out
}

// countsJSON has one number per task state, zeros included.
func countsJSON(c ota.TaskCounts) map[string]int64 {
	out := make(map[string]int64, len(ota.TaskStates))
	for _, s := range ota.TaskStates {
		out[string(s)] = c[s]
	}
	return out
}

func taskFromOTA(t ota.Task) apiv1.Task {
	return apiv1.Task{
		ID: t.ID, JobID: t.JobID, Product: t.ProductKey, Device: t.DeviceName, Module: t.Module, State: string(t.State),
		FromVersion: t.FromVersion, ToVersion: t.ToVersion, Progress: t.Progress, Attempts: t.Attempts,
		Reason: string(t.Reason), Detail: t.Detail, NotifiedAt: utcOrNil(t.NotifiedAt), StartedAt: utcOrNil(t.StartedAt),
		FinishedAt: utcOrNil(t.FinishedAt), NextAttemptAt: utcOrNil(t.NextAttemptAt), CreatedAt: utc(t.CreatedAt),
		UpdatedAt: utc(t.UpdatedAt),
	}
}

// Handlers.

func (a *API) createJob(w http.ResponseWriter, r *http.Request, p service.Principal) error {
	var in apiv1.JobCreate
	if err := httpx.DecodeJSON(w, r, &in, a.opts.MaxJSONBody); err != nil {
		return err
	}
	j, err := jobFromCreate(in)
	if err != nil {
		return err
	}
	job, err := a.svc.CreateJob(r.Context(), p, j)
	if err != nil {
		return err
	}
	// Read back with its counts: a job on a device list has all its tasks.
	v, err := a.svc.GetJob(r.Context(), p, job.ID)
	if err != nil {
		return err
	}
	httpx.WriteJSON(w, http.StatusCreated, jobViewJSON(v))
	return nil
}

func (a *API) listJobs(w http.ResponseWriter, r *http.Request, p service.Principal) error {
	pg, err := page(r)
	if err != nil {
		return err
	}
	q := r.URL.Query()
	f := store.JobFilter{PackageID: q.Get("package"), ProductKey: q.Get("product"), Module: q.Get("module"),
		Type: ota.JobType(q.Get("type")), Selection: ota.Selection(q.Get("selection")),
		PackageKind: ota.PackageKind(q.Get("package_kind"))}
	if f.PackageKind != "" {
		if err := ota.CheckPackageKind("package_kind", f.PackageKind); err != nil {
			return err
		}
	}
	for _, s := range splitList(q["state"]) {
		st := ota.JobState(s)
		if err := ota.CheckJobState("state", st); err != nil {
			return err
		}
		f.States = append(f.States, st)
	}
	if f.Type != "" {
		if err := ota.CheckJobType("type", f.Type); err != nil {
			return err
		}
	}
	if f.Selection != "" {
		if err := ota.CheckSelection("selection", f.Selection); err != nil {
			return err
		}
	}
	jobs, total, err := a.svc.ListJobs(r.Context(), p, f, pg)
	if err != nil {
		return err
	}
	httpx.WriteJSON(w, http.StatusOK, newList(jobs, total, jobFromOTA))
	return nil
}

func (a *API) getJob(w http.ResponseWriter, r *http.Request, p service.Principal) error {
	v, err := a.svc.GetJob(r.Context(), p, r.PathValue("id"))
	if err != nil {
		return err
	}
	httpx.WriteJSON(w, http.StatusOK, jobViewJSON(v))
	return nil
}

// jobViewJSON is a job with its counts and, once ended, its outcome.
func jobViewJSON(v service.JobView) apiv1.Job {
	out := jobFromOTA(v.Job)
	out.Counts = countsJSON(v.Counts)
	out.Outcome = string(v.Outcome())
	return out
}

func (a *API) deleteJob(w http.ResponseWriter, r *http.Request, p service.Principal) error {
	if err := a.svc.DeleteJob(r.Context(), p, r.PathValue("id")); err != nil {
		return err
	}
	w.WriteHeader(http.StatusNoContent)
	return nil
}

// jobAction serves pause, resume and cancel: the job as it is afterwards.
func (a *API) jobAction(act func(*service.Service, context.Context, service.Principal, string) (ota.Job, error)) handlerFunc {
	return func(w http.ResponseWriter, r *http.Request, p service.Principal) error {
		if _, err := act(a.svc, r.Context(), p, r.PathValue("id")); err != nil {
			return err
		}
		return a.getJob(w, r, p)
	}
}

func (a *API) listTasks(w http.ResponseWriter, r *http.Request, p service.Principal) error {
	q := r.URL.Query()
	f := store.TaskFilter{JobID: r.PathValue("id"), Devices: splitList(q["device"])}
	for _, s := range splitList(q["state"]) {
		st := ota.TaskState(s)
		if !isTaskState(st) {
			return ota.Invalid("state", "task state %q is not one of %s", s, taskStateNames())
		}
		f.States = append(f.States, st)
	}
	pg := store.Page{Limit: 100}
	if s := q.Get("limit"); s != "" {
		n, err := strconv.Atoi(s)
		if err != nil || n < 1 || n > MaxPageLimit {
			return ota.Invalid("limit", "limit must be an integer from 1 to %d, got %q", MaxPageLimit, s)
		}
		pg.Limit = n
	}
	if s := q.Get("after"); s != "" {
		n, err := strconv.ParseInt(s, 10, 64)
		if err != nil || n < 0 {
			return ota.Invalid("after", "after must be a task id (a non-negative integer), got %q", s)
		}
		f.AfterID = n
	}
	tasks, total, err := a.svc.ListTasks(r.Context(), p, f, pg)
	if err != nil {
		return err
	}
	out := apiv1.TaskPage{Items: make([]apiv1.Task, 0, len(tasks)), Total: total}
	for _, t := range tasks {
		out.Items = append(out.Items, taskFromOTA(t))
	}
	if len(tasks) == pg.Limit {
		out.NextAfter = tasks[len(tasks)-1].ID
	}
	httpx.WriteJSON(w, http.StatusOK, out)
	return nil
}

// taskAction serves retry, cancel and confirm with per-device results.
// where, when not nil, serves a body with states or task ids.
func (a *API) taskAction(act func(*service.Service, context.Context, service.Principal, string, []string) ([]service.TaskResult, error),
	where func(http.ResponseWriter, *http.Request, service.Principal, apiv1.TasksRequest) error) handlerFunc {
	return func(w http.ResponseWriter, r *http.Request, p service.Principal) error {
		var in apiv1.TasksRequest
		if err := httpx.DecodeJSON(w, r, &in, a.opts.MaxJSONBody); err != nil {
			return err
		}
		if len(in.States) > 0 || len(in.TaskIDs) > 0 {
			switch {
			case where == nil:
				return ota.Invalid("states", "only cancel takes states or task ids; name the devices, or send \"all\": true")
			case len(in.Devices) > 0 || in.All:
				return ota.Invalid("states", `send "states"/"task_ids", or "devices", or "all": true — one of them`)
			}
			return where(w, r, p, in)
		}
		switch {
		case len(in.Devices) == 0 && !in.All:
			return ota.Invalid("devices", `name the devices ("devices": [...]), or send "all": true to act on every task it applies to`)
		case len(in.Devices) > 0 && in.All:
			return ota.Invalid("all", `send either "devices" or "all": true, not both`)
		}
		results, err := act(a.svc, r.Context(), p, r.PathValue("id"), in.Devices)
		if err != nil {
			return err
		}
		out := apiv1.TaskResults{Results: make([]apiv1.TaskResult, 0, len(results))}
		for _, res := range results {
			rj := apiv1.TaskResult{Device: res.Device, OK: res.OK}
			if res.OK {
				out.Succeeded++
			} else {
				out.Failed++
				rj.Code, rj.Message = string(ota.ErrorCode(res.Err)), ota.ErrorMessage(res.Err)
			}
			out.Results = append(out.Results, rj)
		}
		httpx.WriteJSON(w, http.StatusOK, out)
		return nil
	}
}

// splitList accepts repeated parameters and comma-separated values alike.
func splitList(vals []string) []string {
	var out []string
	for _, v := range vals {
		for _, s := range strings.Split(v, ",") {
			if s = strings.TrimSpace(s); s != "" {
				out = append(out, s)
			}
		}
	}
	return out
}

func isTaskState(s ota.TaskState) bool {
	for _, t := range ota.TaskStates {
		if s == t {
			return true
		}
	}
	return false
}

func taskStateNames() string {
	names := make([]string, len(ota.TaskStates))
	for i, s := range ota.TaskStates {
		names[i] = string(s)
	}
	return strings.Join(names, ", ")
}
