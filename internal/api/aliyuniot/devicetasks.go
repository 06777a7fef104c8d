package aliyuniot

// Operations on one device's tasks and jobs and on a job's settings (spec
// §2.3): CancelOTATaskByDevice, ListOTAUnfinishedTaskByDevice,
// ListOTAJobByDevice, ConfirmOTATask and UpdateOTAJob, each a translation
// onto a service call.

import (
	"context"
	"strconv"
	"strings"

	"github.com/updraft-ota/updraft/internal/ota"
	"github.com/updraft-ota/updraft/internal/service"
	"github.com/updraft-ota/updraft/internal/store"
)

const (
	// maxCancelDevices bounds DeviceName.N of CancelOTATaskByDevice and
	// maxConfirmTasks TaskId.N of ConfirmOTATask. Alibaba documents no
	// figure (spec §5.5); these match TargetDeviceName.N and ListOTATaskByJob.
	maxCancelDevices = maxStaticDevices
	maxConfirmTasks  = maxTaskPage
	// maxUnfinished bounds one device's unfinished tasks listed (one per
	// module at most, so far more than a device has).
	maxUnfinished = 100
)

func (a *API) deviceTaskOperations(m map[string]action) {
	m["CancelOTATaskByDevice"] = a.cancelOTATaskByDevice
	m["ListOTAUnfinishedTaskByDevice"] = a.listOTAUnfinishedTaskByDevice
	m["ConfirmOTATask"] = a.confirmOTATask
	m["UpdateOTAJob"] = a.updateOTAJob
	m["ListOTAJobByDevice"] = a.listOTAJobByDevice
}

// maxDeviceJobPage is ListOTAJobByDevice's PageSize maximum.
const maxDeviceJobPage = 100

// listOTAJobByDevice lists the firmware's batches that have a task for the
// device, newest first.
func (a *API) listOTAJobByDevice(ctx context.Context, c *call) (any, error) {
	fw, err := c.q.required("FirmwareId")
	if err != nil {
		return nil, err
	}
	pk, err := c.q.required("ProductKey")
	if err != nil {
		return nil, err
	}
	dn, err := c.q.required("DeviceName")
	if err != nil {
		return nil, err
	}
	cur, size, err := c.q.page(maxDeviceJobPage)
	if err != nil {
		return nil, err
	}
	if _, err := a.svc.GetPackage(ctx, c.p, fw); err != nil {
		return nil, err
	}
	if _, err := a.svc.GetDevice(ctx, c.p, pk, dn); err != nil {
		return nil, err
	}
	jobs, total, err := a.svc.ListJobs(ctx, c.p, store.JobFilter{PackageID: fw, ProductKey: pk, Device: &ota.DeviceRef{ProductKey: pk, Name: dn}},
		storePage(cur, size))
	if err != nil {
		return nil, err
	}
	infos := make([]JobInfo, len(jobs))
	for i, j := range jobs {
		infos[i] = jobInfo(j, true)
	}
	return map[string]any{"Data": map[string]any{"SimpleOTAJobInfo": infos},
		"CurrentPage": cur, "PageSize": size, "Total": total, "PageCount": pageCount(total, size)}, nil
}

// cancelByDeviceStates are the states CancelOTATaskByDevice cancels:
// queued (Updraft's waiting and retry-wait show as QUEUED), notified and in
// progress; a task awaiting confirmation is not among them.
var cancelByDeviceStates = []ota.TaskState{ota.TaskWaiting, ota.TaskQueued, ota.TaskRetryWait, ota.TaskNotified, ota.TaskInProgress}

// cancelOTATaskByDevice cancels the named devices' unfinished tasks in the
// firmware's jobs (or in JobId alone).
func (a *API) cancelOTATaskByDevice(ctx context.Context, c *call) (any, error) {
	fw, err := c.q.required("FirmwareId")
	if err != nil {
		return nil, err
	}
	pk, err := c.q.required("ProductKey")
	if err != nil {
		return nil, err
	}
	devices, err := c.q.list("DeviceName", maxCancelDevices)
	if err != nil {
		return nil, err
	}
	if len(devices) == 0 {
		return nil, ota.Invalid(fieldMissing, "DeviceName.1 is required")
	}
	pkg, err := a.svc.GetPackage(ctx, c.p, fw)
	if err != nil {
		return nil, err
	}
	if pkg.ProductKey != pk {
		return nil, ota.Invalid("ProductKey", "firmware %s belongs to product %s, not %s", fw, pkg.ProductKey, pk)
	}
	var jobs []string
	if id := c.q.str("JobId"); id != "" {
		v, err := a.svc.GetJob(ctx, c.p, id)
		if err != nil {
			return nil, err
		}
		if v.Job.PackageID != fw {
			return nil, ota.Invalid("JobId", "job %s is a batch of firmware %s, not %s", id, v.Job.PackageID, fw)
		}
		jobs = append(jobs, id)
	} else {
		for offset := 0; ; {
			page, _, err := a.svc.ListJobs(ctx, c.p, store.JobFilter{PackageID: fw, States: unendedJobs}, store.Page{Limit: maxJobPage, Offset: offset})
			if err != nil {
				return nil, err
			}
			for _, j := range page {
				jobs = append(jobs, j.ID)
			}
			if len(page) < maxJobPage {
				break
			}
			offset += len(page)
		}
	}
	for _, id := range jobs {
		tasks, _, err := a.svc.ListTasks(ctx, c.p, store.TaskFilter{JobID: id, ProductKey: pk, Devices: devices, States: cancelByDeviceStates},
			store.Page{Limit: len(devices)})
		if err != nil {
			return nil, err
		}
		if len(tasks) == 0 {
			continue
		}
		ids := make([]int64, len(tasks))
		for i, t := range tasks {
			ids[i] = t.ID
		}
		// The states again: a task that moved on since it was read stays.
		if _, err := a.svc.CancelTasksWhere(ctx, c.p, id, cancelByDeviceStates, ids); err != nil {
			return nil, err
		}
	}
	return nil, nil
}

// unendedJobs are the job states whose tasks may still be canceled.
var unendedJobs = []ota.JobState{ota.JobPlanned, ota.JobRunning, ota.JobPaused}

// unfinishedStatus are the TaskStatus values ListOTAUnfinishedTaskByDevice
// takes.
var unfinishedStatus = map[string]bool{"CONFIRM": true, "QUEUED": true, "NOTIFIED": true, "IN_PROGRESS": true}

// UnfinishedTaskInfo is ListOTAUnfinishedTaskByDevice's SimpleOTATaskInfo.
type UnfinishedTaskInfo struct {
	TaskID      string `json:"TaskId"`
	JobID       string `json:"JobId"`
	FirmwareID  string `json:"FirmwareId"`
	ProductKey  string `json:"ProductKey"`
	DeviceName  string `json:"DeviceName"`
	IotID       string `json:"IotId"`
	ModuleName  string `json:"ModuleName"`
	SrcVersion  string `json:"SrcVersion"`
	DestVersion string `json:"DestVersion"`
	TaskStatus  string `json:"TaskStatus"`
	TaskDesc    string `json:"TaskDesc"`
	UtcCreate   string `json:"UtcCreate"`
	UtcModified string `json:"UtcModified"`
}

// deviceOf reads IotId ("{ProductKey}.{DeviceName}", as Updraft gives it)
// or ProductKey + DeviceName.
func deviceOf(c *call) (pk, dn string, err error) {
	pk, dn = c.q.str("ProductKey"), c.q.str("DeviceName")
	if id := c.q.str("IotId"); id != "" && (pk == "" || dn == "") {
		var ok bool
		if pk, dn, ok = strings.Cut(id, "."); !ok || pk == "" || dn == "" {
			return "", "", ota.Invalid("IotId", "IotId %q is not an Updraft IotId ({ProductKey}.{DeviceName}): send ProductKey and DeviceName", id)
		}
	}
	if pk == "" || dn == "" {
		return "", "", ota.Invalid(fieldMissing, "name the device with IotId, or ProductKey and DeviceName")
	}
	return pk, dn, nil
}

func (a *API) listOTAUnfinishedTaskByDevice(ctx context.Context, c *call) (any, error) {
	pk, dn, err := deviceOf(c)
	if err != nil {
		return nil, err
	}
	statuses, err := c.q.list("TaskStatusList", len(unfinishedStatus))
	if err != nil {
		return nil, err
	}
	if s := c.q.str("TaskStatus"); s != "" {
		statuses = append(statuses, s)
	}
	if len(statuses) == 0 {
		statuses = []string{"CONFIRM", "QUEUED", "NOTIFIED", "IN_PROGRESS"}
	}
	f := store.TaskFilter{ProductKey: pk, Devices: []string{dn}, Module: c.q.str("ModuleName")}
	for _, s := range statuses {
		if !unfinishedStatus[s] {
			return nil, ota.Invalid("TaskStatus", "TaskStatus %q is not CONFIRM, QUEUED, NOTIFIED or IN_PROGRESS", s)
		}
		states, _ := statesOf(s)
		f.States = append(f.States, states...)
	}
	if _, err := a.svc.GetDevice(ctx, c.p, pk, dn); err != nil {
		return nil, err
	}
	tasks, _, err := a.svc.ListTasks(ctx, c.p, f, store.Page{Limit: maxUnfinished})
	if err != nil {
		return nil, err
	}
	firmware := map[string]string{} // job → firmware
	infos := make([]UnfinishedTaskInfo, len(tasks))
	for i, t := range tasks {
		fw, ok := firmware[t.JobID]
		if !ok {
			v, err := a.svc.GetJob(ctx, c.p, t.JobID)
			if err != nil {
				return nil, err
			}
			fw = v.Job.PackageID
			firmware[t.JobID] = fw
		}
		infos[i] = UnfinishedTaskInfo{TaskID: strconv.FormatInt(t.ID, 10), JobID: t.JobID, FirmwareID: fw, ProductKey: t.ProductKey,
			DeviceName: t.DeviceName, IotID: t.ProductKey + "." + t.DeviceName, ModuleName: t.Module, SrcVersion: t.FromVersion,
			DestVersion: t.ToVersion, TaskStatus: taskStatus[t.State], TaskDesc: t.Detail, UtcCreate: utc(t.CreatedAt), UtcModified: utc(t.UpdatedAt)}
	}
	return map[string]any{"Data": map[string]any{"SimpleOTATaskInfo": infos}}, nil
}

// confirmOTATask confirms tasks in CONFIRM, which may belong to several jobs.
func (a *API) confirmOTATask(ctx context.Context, c *call) (any, error) {
	raw, err := c.q.list("TaskId", maxConfirmTasks)
	if err != nil {
		return nil, err
	}
	if len(raw) == 0 {
		return nil, ota.Invalid(fieldMissing, "TaskId.1 is required")
	}
	ids := make([]int64, len(raw))
	for i, s := range raw {
		if ids[i], err = strconv.ParseInt(s, 10, 64); err != nil {
			return nil, ota.Invalid(fieldParam, "TaskId.%d %q is not a task id", i+1, s)
		}
	}
	tasks, _, err := a.svc.ListTasks(ctx, c.p, store.TaskFilter{IDs: ids}, store.Page{Limit: len(ids)})
	if err != nil {
		return nil, err
	}
	if len(tasks) != len(ids) {
		return nil, ota.NotFound("task", "named in TaskId.N")
	}
	byJob := map[string][]string{}
	var order []string
	for _, t := range tasks {
		if t.State != ota.TaskConfirm {
			return nil, ota.Errorf(ota.CodeConflict, "task %d is %s, not CONFIRM: only tasks awaiting confirmation can be confirmed", t.ID, taskStatus[t.State])
		}
		if _, ok := byJob[t.JobID]; !ok {
			order = append(order, t.JobID)
		}
		byJob[t.JobID] = append(byJob[t.JobID], t.DeviceName)
	}
	for _, job := range order {
		results, err := a.svc.ConfirmTasks(ctx, c.p, job, byJob[job])
		if err != nil {
			return nil, err
		}
		if err := firstFailure(results); err != nil {
			return nil, err
		}
	}
	return nil, nil
}

func firstFailure(results []service.TaskResult) error {
	for _, r := range results {
		if !r.OK {
			return r.Err
		}
	}
	return nil
}

// updateOTAJob changes a job's rate, tags, timeout and source versions.
// MaximumPerMinute is always sent; Tags.N omitted clears the tags (as
// Alibaba does); TimeoutInMinutes and SrcVersionList.N apply to dynamic
// jobs only.
func (a *API) updateOTAJob(ctx context.Context, c *call) (any, error) {
	id, err := c.q.required("JobId")
	if err != nil {
		return nil, err
	}
	if _, err := c.q.required("MaximumPerMinute"); err != nil {
		return nil, err
	}
	per, err := c.q.integer("MaximumPerMinute", 0)
	if err != nil {
		return nil, err
	}
	if per < minPerMinute || per > maxPerMinute {
		return nil, ota.Invalid("MaximumPerMinute", "MaximumPerMinute must be %d–%d, got %d", minPerMinute, maxPerMinute, per)
	}
	tags, err := c.q.tags("Tags", ota.MaxTags)
	if err != nil {
		return nil, err
	}
	v, err := a.svc.GetJob(ctx, c.p, id)
	if err != nil {
		return nil, err
	}
	dynamic := v.Job.Selection == ota.SelectDynamic
	if t := c.q.str("UpgradeType"); t != "" && t != map[bool]string{true: "DYNAMIC", false: "STATIC"}[dynamic] {
		return nil, ota.Invalid("UpgradeType", "UpgradeType %s does not match job %s, which is %s: a batch's type cannot change", t, id, map[bool]string{true: "DYNAMIC", false: "STATIC"}[dynamic])
	}
	n := int(per)
	change := service.JobChange{MaxPerMinute: &n, Tags: &tags}
	if c.q.str("TimeoutInMinutes") != "" {
		if !dynamic {
			return nil, ota.Invalid("TimeoutInMinutes", "TimeoutInMinutes can be changed on dynamic batches only")
		}
		m, err := c.q.integer("TimeoutInMinutes", 0)
		if err != nil {
			return nil, err
		}
		if m < minTimeoutMinutes || m > maxTimeoutMinutes {
			return nil, ota.Invalid("TimeoutInMinutes", "TimeoutInMinutes must be %d–%d, got %d", minTimeoutMinutes, maxTimeoutMinutes, m)
		}
		secs := int(m) * 60
		change.TimeoutSeconds = &secs
	}
	versions, err := c.q.list("SrcVersionList", maxDynamicVersions)
	if err != nil {
		return nil, err
	}
	if len(versions) > 0 {
		if !dynamic {
			return nil, ota.Invalid("SrcVersionList", "SrcVersionList can be changed on dynamic batches only")
		}
		change.SourceVersions = &versions
	}
	_, err = a.svc.UpdateJob(ctx, c.p, id, change)
	return nil, err
}
