package aliyuniot

import (
	"context"
	"strconv"
	"time"

	"github.com/updraft-ota/updraft/internal/ota"
	"github.com/updraft-ota/updraft/internal/store"
)

// Dialect limits on jobs (spec §2.3).
const (
	maxVerifyDevices   = 10
	maxStaticDevices   = 200 // TargetDeviceName.N per call
	maxDynamicVersions = 10
	maxJobPage         = 200 // ListOTAJobByFirmware
	maxTaskPage        = 100 // ListOTATaskByJob
	maxTaskWindow      = 100_000
	minTimeoutMinutes  = 1
	maxTimeoutMinutes  = 1440
	minPerMinute       = 10
	maxPerMinute       = 10000
)

func (a *API) jobOperations(m map[string]action) {
	m["CreateOTAVerifyJob"] = a.createOTAVerifyJob
	m["CreateOTAStaticUpgradeJob"] = a.createOTAStaticUpgradeJob
	m["CreateOTADynamicUpgradeJob"] = a.createOTADynamicUpgradeJob
	m["QueryOTAJob"] = a.queryOTAJob
	m["ListOTAJobByFirmware"] = a.listOTAJobByFirmware
	m["ListOTATaskByJob"] = a.listOTATaskByJob
	m["CancelOTATaskByJob"] = a.cancelOTATaskByJob
	m["CancelOTAStrategyByJob"] = a.cancelOTAStrategyByJob
	m["ReupgradeOTATask"] = a.reupgradeOTATask
	a.deviceTaskOperations(m)
	a.moduleOperations(m)
}

// jobCommon reads what every create-job call shares into j.
func (a *API) jobCommon(c *call, j *ota.Job) error {
	var err error
	if j.PackageID, err = c.q.required("FirmwareId"); err != nil {
		return err
	}
	if j.ProductKey, err = c.q.required("ProductKey"); err != nil {
		return err
	}
	timeout, err := c.q.integer("TimeoutInMinutes", 0)
	if err != nil {
		return err
	}
	if c.q.str("TimeoutInMinutes") != "" && (timeout < minTimeoutMinutes || timeout > maxTimeoutMinutes) {
		return ota.Invalid("TimeoutInMinutes", "TimeoutInMinutes must be %d–%d, got %d", minTimeoutMinutes, maxTimeoutMinutes, timeout)
	}
	j.TimeoutSeconds = int(timeout) * 60
	if j.NeedPush, err = c.q.boolean("NeedPush", true); err != nil {
		return err
	}
	if j.NeedConfirm, err = c.q.boolean("NeedConfirm", false); err != nil {
		return err
	}
	if p := c.q.str("DownloadProtocol"); p != "" && p != "HTTPS" {
		return ota.Errorf(ota.CodeUnsupported, "DownloadProtocol %q is not supported by Updraft: use HTTPS", p)
	}
	if j.Tags, err = c.q.tags("Tag", ota.MaxTags); err != nil {
		return err
	}
	// Alibaba starts the timeout clock at the device's first progress report.
	j.TimeoutFrom = ota.TimeoutFromInProgress
	return nil
}

// upgradeCommon reads the rate, retry and overwrite settings of upgrade jobs.
func (a *API) upgradeCommon(c *call, j *ota.Job) error {
	per, err := c.q.integer("MaximumPerMinute", maxPerMinute)
	if err != nil {
		return err
	}
	if per < minPerMinute || per > maxPerMinute {
		return ota.Invalid("MaximumPerMinute", "MaximumPerMinute must be %d–%d, got %d", minPerMinute, maxPerMinute, per)
	}
	j.MaxPerMinute = int(per)
	count, err := c.q.integer("RetryCount", 0)
	if err != nil {
		return err
	}
	interval, err := c.q.integer("RetryInterval", -1)
	if err != nil {
		return err
	}
	if (count != 0) != (interval >= 0) {
		return ota.Invalid("RetryCount", "RetryCount and RetryInterval go together")
	}
	if count != 0 {
		if count != 1 && count != 2 && count != 5 {
			return ota.Invalid("RetryCount", "RetryCount must be 1, 2 or 5, got %d", count)
		}
		switch interval {
		case 0, 10, 30, 60, 1440:
		default:
			return ota.Invalid("RetryInterval", "RetryInterval must be 0, 10, 30, 60 or 1440 minutes, got %d", interval)
		}
		if j.TimeoutSeconds > 0 && interval*60 >= int64(j.TimeoutSeconds) {
			return ota.Invalid("RetryInterval", "RetryInterval must be shorter than TimeoutInMinutes")
		}
		j.Retry = ota.Retry{Count: int(count), Interval: time.Duration(interval) * time.Minute}
	}
	switch mode, _ := c.q.integer("OverwriteMode", 1); mode {
	case 1:
		j.Overwrite = ota.OverwriteKeep
	case 2:
		j.Overwrite = ota.OverwriteReplace
	default:
		return ota.Invalid("OverwriteMode", "OverwriteMode must be 1 or 2, got %d", mode)
	}
	if mm, err := c.q.boolean("MultiModuleMode", false); err != nil || mm {
		if err != nil {
			return err
		}
		return ota.Errorf(ota.CodeUnsupported, "MultiModuleMode is not supported by Updraft")
	}
	return nil
}

func (a *API) createJob(ctx context.Context, c *call, j ota.Job) (any, error) {
	created, err := a.svc.CreateJob(ctx, c.p, j)
	if err != nil {
		return nil, err
	}
	return map[string]any{"Data": map[string]any{"JobId": created.ID, "UtcCreate": utc(created.CreatedAt)}}, nil
}

func (a *API) createOTAVerifyJob(ctx context.Context, c *call) (any, error) {
	j := ota.Job{Type: ota.JobVerify, Selection: ota.SelectStatic}
	if err := a.jobCommon(c, &j); err != nil {
		return nil, err
	}
	devs, err := c.q.list("TargetDeviceName", maxVerifyDevices)
	if err != nil {
		return nil, err
	}
	if len(devs) == 0 {
		return nil, ota.Invalid(fieldMissing, "TargetDeviceName.1 is required")
	}
	j.Target.Devices = devs
	return a.createJob(ctx, c, j)
}

func (a *API) createOTAStaticUpgradeJob(ctx context.Context, c *call) (any, error) {
	j := ota.Job{Type: ota.JobUpgrade, Selection: ota.SelectStatic}
	if err := a.jobCommon(c, &j); err != nil {
		return nil, err
	}
	if err := a.upgradeCommon(c, &j); err != nil {
		return nil, err
	}
	sel, err := c.q.required("TargetSelection")
	if err != nil {
		return nil, err
	}
	if j.Target.SourceVersions, err = c.q.list("SrcVersion", ota.MaxSourceVersions); err != nil {
		return nil, err
	}
	switch sel {
	case "ALL":
		j.Target.All = true
	case "SPECIFIC":
		if c.q.str("DnListFileUrl") != "" {
			return nil, ota.Errorf(ota.CodeUnsupported, "DnListFileUrl is not supported by Updraft: pass TargetDeviceName.N")
		}
		if j.Target.Devices, err = c.q.list("TargetDeviceName", maxStaticDevices); err != nil {
			return nil, err
		}
		if len(j.Target.Devices) == 0 {
			return nil, ota.Invalid(fieldMissing, "TargetDeviceName.1 is required with TargetSelection SPECIFIC")
		}
	case "GRAY":
		g, err := c.q.required("GrayPercent")
		if err != nil {
			return nil, err
		}
		pct, perr := strconv.ParseFloat(g, 64)
		if perr != nil {
			return nil, ota.Invalid(fieldParam, "GrayPercent %q is not a number", g)
		}
		j.Target.All, j.Target.GrayPercent = true, pct
	case "GROUP":
		gid, err := c.q.required("GroupId")
		if err != nil {
			return nil, err
		}
		j.Target.Groups = []string{gid}
	default:
		return nil, ota.Invalid("TargetSelection", "TargetSelection must be ALL, SPECIFIC, GRAY or GROUP, got %q", sel)
	}
	if err := a.schedule(c, &j); err != nil {
		return nil, err
	}
	return a.createJob(ctx, c, j)
}

// schedule reads ScheduleTime / ScheduleFinishTime (epoch ms).
func (a *API) schedule(c *call, j *ota.Job) error {
	for _, f := range []struct {
		name string
		t    *time.Time
	}{{"ScheduleTime", &j.Schedule.Start}, {"ScheduleFinishTime", &j.Schedule.Finish}} {
		ms, err := c.q.integer(f.name, 0)
		if err != nil {
			return err
		}
		if ms != 0 {
			*f.t = time.UnixMilli(ms).UTC()
		}
	}
	now := a.opts.Now()
	if s := j.Schedule.Start; !s.IsZero() && (s.Before(now.Add(5*time.Minute)) || s.After(now.Add(7*24*time.Hour))) {
		return ota.Invalid("ScheduleTime", "ScheduleTime must be 5 minutes to 7 days ahead")
	}
	if f := j.Schedule.Finish; !f.IsZero() {
		start := j.Schedule.Start
		if start.IsZero() {
			start = now
		}
		if f.Before(start.Add(time.Hour)) || f.After(start.Add(30*24*time.Hour)) {
			return ota.Invalid("ScheduleFinishTime", "ScheduleFinishTime must be 1 hour to 30 days after the start")
		}
	}
	return nil
}

func (a *API) createOTADynamicUpgradeJob(ctx context.Context, c *call) (any, error) {
	j := ota.Job{Type: ota.JobUpgrade, Selection: ota.SelectDynamic}
	if err := a.jobCommon(c, &j); err != nil {
		return nil, err
	}
	if err := a.upgradeCommon(c, &j); err != nil {
		return nil, err
	}
	var err error
	if j.Target.SourceVersions, err = c.q.list("SrcVersion", maxDynamicVersions); err != nil {
		return nil, err
	}
	if gid := c.q.str("GroupId"); gid != "" {
		j.Target.Groups = []string{gid}
	} else {
		j.Target.All = true
	}
	if mode, _ := c.q.integer("DynamicMode", 1); mode != 1 {
		return nil, ota.Errorf(ota.CodeUnsupported, "DynamicMode %d is not supported by Updraft: use 1", mode)
	}
	return a.createJob(ctx, c, j)
}

// JobInfo is QueryOTAJob's Data and ListOTAJobByFirmware's SimpleOTAJobInfo.
type JobInfo struct {
	JobID            string       `json:"JobId"`
	FirmwareID       string       `json:"FirmwareId"`
	ProductKey       string       `json:"ProductKey"`
	Name             string       `json:"Name,omitempty"`
	JobDesc          string       `json:"JobDesc,omitempty"`
	JobType          string       `json:"JobType"`
	JobStatus        string       `json:"JobStatus"`
	SelectionType    string       `json:"SelectionType"`
	TargetSelection  string       `json:"TargetSelection"`
	GrayPercent      string       `json:"GrayPercent,omitempty"`
	GroupID          string       `json:"GroupId,omitempty"`
	SrcVersions      *srcVersions `json:"SrcVersions,omitempty"`
	MaximumPerMinute int          `json:"MaximumPerMinute,omitempty"`
	RetryCount       int          `json:"RetryCount,omitempty"`
	RetryInterval    int          `json:"RetryInterval,omitempty"`
	TimeoutInMinutes int          `json:"TimeoutInMinutes,omitempty"`
	NeedPush         bool         `json:"NeedPush"`
	NeedConfirm      bool         `json:"NeedConfirm"`
	OverwriteMode    int          `json:"OverwriteMode,omitempty"`
	Tags             *tagList     `json:"Tags,omitempty"`
	UtcCreate        string       `json:"UtcCreate"`
	UtcModified      string       `json:"UtcModified"`
	UtcStartTime     string       `json:"UtcStartTime,omitempty"`
	UtcEndTime       string       `json:"UtcEndTime,omitempty"`
}

type srcVersions struct {
	SrcVersion []string `json:"SrcVersion"`
}

type tagList struct {
	OtaTagDTO []tagDTO `json:"OtaTagDTO"`
}

type tagDTO struct {
	Key   string `json:"Key"`
	Value string `json:"Value"`
}

// jobStatus is Alibaba's JobStatus; the list spells completed COMPLETE.
func jobStatus(s ota.JobState, list bool) string {
	switch s {
	case ota.JobPlanned:
		return "PLANNED"
	case ota.JobCompleted:
		if list {
			return "COMPLETE"
		}
		return "COMPLETED"
	case ota.JobCanceled:
		return "CANCELED"
	}
	return "IN_PROGRESS"
}

func jobInfo(j ota.Job, list bool) JobInfo {
	info := JobInfo{JobID: j.ID, FirmwareID: j.PackageID, ProductKey: j.ProductKey, Name: j.Name, JobDesc: j.Description,
		JobType: "UPGRADE_FIRMWARE", JobStatus: jobStatus(j.State, list), SelectionType: "STATIC", TargetSelection: "ALL",
		MaximumPerMinute: j.MaxPerMinute, RetryCount: j.Retry.Count, RetryInterval: int(j.Retry.Interval / time.Minute),
		TimeoutInMinutes: j.TimeoutSeconds / 60, NeedPush: j.NeedPush, NeedConfirm: j.NeedConfirm,
		UtcCreate: utc(j.CreatedAt), UtcModified: utc(j.UpdatedAt), UtcStartTime: utc(j.StartedAt), UtcEndTime: utc(j.FinishedAt)}
	if j.Type == ota.JobVerify {
		info.JobType = "VERFIY_FIRMWARE" // sic, Alibaba's spelling
	}
	if j.Selection == ota.SelectDynamic {
		info.SelectionType = "DYNAMIC"
	}
	switch t := j.Target; {
	case t.GrayPercent > 0:
		info.TargetSelection, info.GrayPercent = "GRAY", strconv.FormatFloat(t.GrayPercent, 'f', -1, 64)
	case len(t.Groups) > 0:
		info.TargetSelection, info.GroupID = "GROUP", t.Groups[0]
	case len(t.Devices) > 0:
		info.TargetSelection = "SPECIFIC"
	}
	if len(j.Target.SourceVersions) > 0 {
		info.SrcVersions = &srcVersions{SrcVersion: j.Target.SourceVersions}
	}
	if j.Overwrite == ota.OverwriteReplace {
		info.OverwriteMode = 2
	} else if j.Type == ota.JobUpgrade {
		info.OverwriteMode = 1
	}
	if len(j.Tags) > 0 {
		info.Tags = &tagList{}
		for _, t := range j.Tags {
			info.Tags.OtaTagDTO = append(info.Tags.OtaTagDTO, tagDTO{Key: t.Key, Value: t.Value})
		}
	}
	return info
}

func (a *API) queryOTAJob(ctx context.Context, c *call) (any, error) {
	id, err := c.q.required("JobId")
	if err != nil {
		return nil, err
	}
	v, err := a.svc.GetJob(ctx, c.p, id)
	if err != nil {
		return nil, err
	}
	return map[string]any{"Data": jobInfo(v.Job, false)}, nil
}

func (a *API) listOTAJobByFirmware(ctx context.Context, c *call) (any, error) {
	id, err := c.q.required("FirmwareId")
	if err != nil {
		return nil, err
	}
	cur, size, err := c.q.page(maxJobPage)
	if err != nil {
		return nil, err
	}
	jobs, total, err := a.svc.ListJobs(ctx, c.p, store.JobFilter{PackageID: id}, storePage(cur, size))
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

// taskStatus maps task states to Alibaba's TaskStatus and back.
var taskStatus = map[ota.TaskState]string{
	ota.TaskConfirm: "CONFIRM", ota.TaskQueued: "QUEUED", ota.TaskWaiting: "QUEUED", ota.TaskRetryWait: "QUEUED",
	ota.TaskNotified: "NOTIFIED", ota.TaskInProgress: "IN_PROGRESS", ota.TaskSucceeded: "SUCCEEDED",
	ota.TaskFailed: "FAILED", ota.TaskCanceled: "CANCELED", ota.TaskSkipped: "CANCELED",
}

func statesOf(status string) ([]ota.TaskState, error) {
	var out []ota.TaskState
	for s, name := range taskStatus {
		if name == status {
			out = append(out, s)
		}
	}
	if len(out) == 0 {
		return nil, ota.Invalid("TaskStatus", "TaskStatus %q is not CONFIRM, QUEUED, NOTIFIED, IN_PROGRESS, SUCCEEDED, FAILED or CANCELED", status)
	}
	return out, nil
}

// TaskInfo is ListOTATaskByJob's SimpleOTATaskInfo.
type TaskInfo struct {
	TaskID      string `json:"TaskId"`
	JobID       string `json:"JobId"`
	FirmwareID  string `json:"FirmwareId"`
	ProductKey  string `json:"ProductKey"`
	DeviceName  string `json:"DeviceName"`
	IotID       string `json:"IotId"`
	SrcVersion  string `json:"SrcVersion"`
	DestVersion string `json:"DestVersion"`
	Progress    string `json:"Progress"`
	TaskStatus  string `json:"TaskStatus"`
	TaskDesc    string `json:"TaskDesc"`
	UtcCreate   string `json:"UtcCreate"`
	UtcModified string `json:"UtcModified"`
}

func (a *API) listOTATaskByJob(ctx context.Context, c *call) (any, error) {
	id, err := c.q.required("JobId")
	if err != nil {
		return nil, err
	}
	cur, size, err := c.q.page(maxTaskPage)
	if err != nil {
		return nil, err
	}
	if cur*size > maxTaskWindow {
		return nil, ota.Invalid(fieldPage, "CurrentPage × PageSize may be at most %d", maxTaskWindow)
	}
	v, err := a.svc.GetJob(ctx, c.p, id)
	if err != nil {
		return nil, err
	}
	f := store.TaskFilter{JobID: id}
	if s := c.q.str("TaskStatus"); s != "" {
		if f.States, err = statesOf(s); err != nil {
			return nil, err
		}
	}
	if f.Devices, err = c.q.list("DeviceNames", maxTaskPage); err != nil {
		return nil, err
	}
	tasks, total, err := a.svc.ListTasks(ctx, c.p, f, storePage(cur, size))
	if err != nil {
		return nil, err
	}
	infos := make([]TaskInfo, len(tasks))
	for i, t := range tasks {
		desc := t.Detail
		if desc == "" {
			desc = string(t.Reason)
		}
		infos[i] = TaskInfo{TaskID: strconv.FormatInt(t.ID, 10), JobID: t.JobID, FirmwareID: v.Job.PackageID, ProductKey: t.ProductKey,
			DeviceName: t.DeviceName, IotID: t.ProductKey + "." + t.DeviceName, SrcVersion: t.FromVersion, DestVersion: t.ToVersion,
			Progress: strconv.Itoa(t.Progress), TaskStatus: taskStatus[t.State], TaskDesc: desc, UtcCreate: utc(t.CreatedAt), UtcModified: utc(t.UpdatedAt)}
	}
	return map[string]any{"Data": map[string]any{"SimpleOTATaskInfo": infos},
		"CurrentPage": cur, "PageSize": size, "Total": total, "PageCount": pageCount(total, size)}, nil
}

func (a *API) cancelOTATaskByJob(ctx context.Context, c *call) (any, error) {
	id, err := c.q.required("JobId")
	if err != nil {
		return nil, err
	}
	flags := map[string][]ota.TaskState{
		"CancelScheduledTask":   {ota.TaskWaiting},
		"CancelQueuedTask":      {ota.TaskQueued, ota.TaskRetryWait, ota.TaskWaiting},
		"CancelNotifiedTask":    {ota.TaskNotified},
		"CancelInProgressTask":  {ota.TaskInProgress},
		"CancelUnconfirmedTask": {ota.TaskConfirm},
	}
	seen := map[ota.TaskState]bool{}
	var states []ota.TaskState
	for name, ss := range flags {
		on, err := c.q.boolean(name, false)
		if err != nil {
			return nil, err
		}
		if !on {
			continue
		}
		for _, s := range ss {
			if !seen[s] {
				seen[s] = true
				states = append(states, s)
			}
		}
	}
	// CancelQueuedTask without CancelUnconfirmedTask cancels CONFIRM too.
	if seen[ota.TaskQueued] && !seen[ota.TaskConfirm] {
		states = append(states, ota.TaskConfirm)
	}
	if len(states) == 0 {
		return nil, ota.Invalid(fieldMissing, "set at least one of CancelScheduledTask, CancelQueuedTask, CancelNotifiedTask, CancelInProgressTask, CancelUnconfirmedTask")
	}
	_, err = a.svc.CancelTasksWhere(ctx, c.p, id, states, nil)
	return nil, err
}

func (a *API) cancelOTAStrategyByJob(ctx context.Context, c *call) (any, error) {
	id, err := c.q.required("JobId")
	if err != nil {
		return nil, err
	}
	v, err := a.svc.GetJob(ctx, c.p, id)
	if err != nil {
		return nil, err
	}
	if v.Job.Selection != ota.SelectDynamic {
		return nil, ota.Errorf(ota.CodeConflict, "job %s is a static batch: CancelOTAStrategyByJob stops dynamic batches; use CancelOTATaskByJob", id)
	}
	_, err = a.svc.CancelJob(ctx, c.p, id)
	return nil, err
}

func (a *API) reupgradeOTATask(ctx context.Context, c *call) (any, error) {
	id, err := c.q.required("JobId")
	if err != nil {
		return nil, err
	}
	raw, err := c.q.list("TaskId", maxTaskPage)
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
	tasks, _, err := a.svc.ListTasks(ctx, c.p, store.TaskFilter{JobID: id, IDs: ids}, store.Page{Limit: len(ids)})
	if err != nil {
		return nil, err
	}
	if len(tasks) != len(ids) {
		return nil, ota.NotFound("task", "of job "+id)
	}
	devices := make([]string, len(tasks))
	for i, t := range tasks {
		devices[i] = t.DeviceName
	}
	results, err := a.svc.RetryTasks(ctx, c.p, id, devices)
	if err != nil {
		return nil, err
	}
	for _, r := range results {
		if !r.OK {
			return nil, r.Err
		}
	}
	return nil, nil
}
