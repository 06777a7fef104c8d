package management

// Job and package lifecycle calls beyond create/pause/resume/cancel: start a
// job created held, change a job's or package's settings, cancel tasks by
// state or id, and a device's tasks across jobs. Each is one service call
// (service/lifecycle.go); the vendor dialects map onto the same calls.

import (
	"net/http"

	"github.com/updraft-ota/updraft/apiv1"
	"github.com/updraft-ota/updraft/internal/api/httpx"
	"github.com/updraft-ota/updraft/internal/ota"
	"github.com/updraft-ota/updraft/internal/service"
)

func (a *API) registerLifecycle(mux *http.ServeMux) {
	a.route(mux, "POST /api/v1/jobs/{id}/start", a.jobAction((*service.Service).StartJob))
	a.route(mux, "PATCH /api/v1/jobs/{id}", a.updateJob)
	a.route(mux, "PATCH /api/v1/packages/{id}", a.updatePackage)
	a.route(mux, "POST /api/v1/products/{product}/devices/{device}/tasks/cancel", a.cancelDeviceTasks)
}

func (a *API) updateJob(w http.ResponseWriter, r *http.Request, p service.Principal) error {
	var in apiv1.JobUpdate
	if err := httpx.DecodeJSON(w, r, &in, a.opts.MaxJSONBody); err != nil {
		return err
	}
	c := service.JobChange{Description: in.Description, MaxConcurrency: in.MaxConcurrency, MaxPerMinute: in.MaxPerMinute,
		TimeoutSeconds: in.TimeoutSeconds, SourceVersions: in.SourceVersions}
	if in.Tags != nil {
		tags := tagsToOTA(*in.Tags)
		c.Tags = &tags
	}
	if _, err := a.svc.UpdateJob(r.Context(), p, r.PathValue("id"), c); err != nil {
		return err
	}
	return a.getJob(w, r, p)
}

func (a *API) updatePackage(w http.ResponseWriter, r *http.Request, p service.Principal) error {
	var in apiv1.PackageUpdate
	if err := httpx.DecodeJSON(w, r, &in, a.opts.MaxJSONBody); err != nil {
		return err
	}
	c := service.PackageChange{Name: in.Name, LocalNames: in.LocalNames, Description: in.Description, CustomInfo: in.CustomInfo}
	if in.Tags != nil {
		tags := tagsToOTA(*in.Tags)
		c.Tags = &tags
	}
	pkg, err := a.svc.UpdatePackage(r.Context(), p, r.PathValue("id"), c)
	if err != nil {
		return err
	}
	httpx.WriteJSON(w, http.StatusOK, packageFromOTA(pkg))
	return nil
}

// cancelDeviceTasks cancels every unfinished task of one device, in any job
// (?module=M: on that module only).
func (a *API) cancelDeviceTasks(w http.ResponseWriter, r *http.Request, p service.Principal) error {
	module := r.URL.Query().Get("module")
	if module != "" {
		if err := ota.CheckModuleName("module", module); err != nil {
			return err
		}
	}
	n, err := a.svc.CancelDeviceTasks(r.Context(), p, r.PathValue("product"), r.PathValue("device"), module)
	if err != nil {
		return err
	}
	httpx.WriteJSON(w, http.StatusOK, apiv1.CanceledCount{Canceled: n})
	return nil
}

// cancelTasksWhere serves POST /api/v1/jobs/{id}/tasks/cancel with "states"
// and/or "task_ids" instead of devices: one set-based cancel.
func (a *API) cancelTasksWhere(w http.ResponseWriter, r *http.Request, p service.Principal, in apiv1.TasksRequest) error {
	states := make([]ota.TaskState, 0, len(in.States))
	for _, s := range in.States {
		st := ota.TaskState(s)
		if !isTaskState(st) {
			return ota.Invalid("states", "task state %q is not one of %s", s, taskStateNames())
		}
		states = append(states, st)
	}
	n, err := a.svc.CancelTasksWhere(r.Context(), p, r.PathValue("id"), states, in.TaskIDs)
	if err != nil {
		return err
	}
	httpx.WriteJSON(w, http.StatusOK, apiv1.CanceledCount{Canceled: n})
	return nil
}
