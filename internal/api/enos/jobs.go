package enos

import (
	"context"
	"encoding/json"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/updraft-ota/updraft/internal/ota"
	"github.com/updraft-ota/updraft/internal/store"
)

// EnOS task states and the Updraft states each one shows (spec §3.4).
var taskStates = map[string][]ota.TaskState{
	"init":      {ota.TaskWaiting, ota.TaskConfirm, ota.TaskQueued, ota.TaskRetryWait},
	"published": {ota.TaskNotified},
	"upgrading": {ota.TaskInProgress},
	"succeeded": {ota.TaskSucceeded},
	"failed":    {ota.TaskFailed, ota.TaskSkipped}, // a skipped target did not upgrade; desc says why
	"canceled":  {ota.TaskCanceled},
}

func taskStatus(s ota.TaskState) string {
	for name, states := range taskStates {
		if slices.Contains(states, s) {
			return name
		}
	}
	return string(s)
}

// jobStates: EnOS shows started or stopped.
var jobStates = map[string][]ota.JobState{
	"started": {ota.JobPlanned, ota.JobRunning},
	"stopped": {ota.JobPaused, ota.JobCompleted, ota.JobCanceled},
}

func jobStatus(s ota.JobState) string {
	if slices.Contains(jobStates["started"], s) {
		return "started"
	}
	return "stopped"
}

func (a *API) createJob(ctx context.Context, c *call) (any, error) {
	c.op = opJobCreate
	fwID, err := c.param("firmwareId")
	if err != nil {
		return nil, err
	}
	var req jobRequest
	if len(strings.TrimSpace(string(c.body))) == 0 {
		return nil, ota.Invalid("body", "create OTA job needs a JSON body with type and upgradeScope")
	}
	if err := c.decode(&req); err != nil {
		return nil, err
	}
	pkg, err := a.svc.GetPackage(ctx, c.p, fwID)
	if err != nil {
		return nil, err
	}
	job, err := req.toJob(pkg, a.svc.Now())
	if err != nil {
		return nil, err
	}
	created, err := a.svc.CreateJob(ctx, c.p, job)
	if err != nil {
		if ota.ErrorField(err) == "target.devices" && job.Type == ota.JobVerify && len(job.Target.Devices) > ota.MaxVerifyDevices {
			return nil, wireErr(codeVerifyTooMany, "Exceeded max verification deviceKeys, max["+strconv.Itoa(ota.MaxVerifyDevices)+"]")
		}
		return nil, err
	}
	return map[string]string{"jobId": created.ID}, nil
}

// toJob translates the request; limits and rules are ota's and service's.
func (r jobRequest) toJob(pkg ota.Package, now time.Time) (ota.Job, error) {
	j := ota.Job{PackageID: pkg.ID, NeedPush: true, TimeoutFrom: ota.TimeoutFromInProgress, State: ota.JobPaused}
	if r.Name != nil {
		j.Name, j.LocalNames = r.Name.DefaultValue, r.Name.translations()
	}
	switch r.Type {
	case "upgrade":
		j.Type = ota.JobUpgrade
		if r.UpgradePolicy == "" || r.EnableUpgradeRequest == nil {
			return j, ota.Invalid("upgradePolicy", "an upgrade job needs upgradePolicy (snapshot or incremental) and enableUpgradeRequest")
		}
	case "verify":
		j.Type = ota.JobVerify
		// The verify job's clock starts when its task is published (spec §3.3).
		j.TimeoutFrom = ota.TimeoutFromNotified
	default:
		return j, ota.Invalid("type", "type %q is not upgrade or verify", r.Type)
	}
	switch r.UpgradePolicy {
	case "", "snapshot":
		j.Selection = ota.SelectStatic
	case "incremental":
		j.Selection = ota.SelectDynamic
	default:
		return j, ota.Invalid("upgradePolicy", "upgradePolicy %q is not snapshot or incremental", r.UpgradePolicy)
	}
	if r.EnableUpgradeRequest != nil {
		j.AllowDeviceRequest = *r.EnableUpgradeRequest
	}
	s := r.UpgradeScope
	if s == nil {
		return j, ota.Invalid("upgradeScope", "upgradeScope is required")
	}
	if len(s.AssetTrees) > 0 && string(s.AssetTrees) != "null" || len(s.AssetIDs) > 0 {
		return j, ota.Invalid("upgradeScope", "upgradeScope.assetTrees and assetIds are not supported: Updraft has no asset trees; scope by deviceKeys, deviceGroupIds or versionNumbers")
	}
	attrs, err := attributeStrings(s.Attributes)
	if err != nil {
		return j, err
	}
	if s.ProductKey != "" && s.ProductKey != pkg.ProductKey {
		return j, ota.Invalid("upgradeScope.productKey", "upgradeScope.productKey %q is not the firmware's product %q", s.ProductKey, pkg.ProductKey)
	}
	switch s.Type {
	case "total":
		if j.Type == ota.JobVerify {
			return j, wireErr(codeVerifyTotal, "upgradeScope type total is not allowed for a verify job: use partial with deviceKeys")
		}
		if len(s.DeviceKeys) > 0 || len(s.DeviceGroupIDs) > 0 || len(attrs) > 0 || len(s.Tags) > 0 {
			return j, ota.Invalid("upgradeScope", "a total scope takes every device of the product: drop deviceKeys, deviceGroupIds, attributes and tags or use partial")
		}
		j.Target.All = len(s.VersionNumbers) == 0
	case "partial":
		if len(s.DeviceKeys) == 0 && len(s.DeviceGroupIDs) == 0 && len(s.VersionNumbers) == 0 && len(attrs) == 0 && len(s.Tags) == 0 {
			return j, ota.Invalid("upgradeScope", "a partial scope needs deviceKeys, deviceGroupIds, attributes, tags or versionNumbers")
		}
		j.Target.Devices, j.Target.Groups = s.DeviceKeys, s.DeviceGroupIDs
		if len(attrs) > 0 {
			j.Target.Attributes = attrs
		}
		if len(s.Tags) > 0 {
			j.Target.Tags = s.Tags
		}
	default:
		return j, ota.Invalid("upgradeScope.type", "upgradeScope.type %q is not total or partial", s.Type)
	}
	j.Target.SourceVersions = s.VersionNumbers
	if r.UpgradeTimeout != nil {
		if *r.UpgradeTimeout < 1 || *r.UpgradeTimeout > 1<<31-1 {
			return j, ota.Invalid("upgradeTimeout", "upgradeTimeout must be %d–%d seconds, got %d", ota.MinTimeoutSeconds, ota.MaxTimeoutSeconds, *r.UpgradeTimeout)
		}
		j.TimeoutSeconds = int(*r.UpgradeTimeout)
	}
	if r.MaximumConcurrency != nil {
		if *r.MaximumConcurrency < 1 { // 0 would mean "default" to ota
			return j, ota.Invalid("maximumConcurrency", "maximumConcurrency must be at least 1, got %d", *r.MaximumConcurrency)
		}
		j.MaxConcurrency = *r.MaximumConcurrency
	}
	if rp := r.RetryPolicy; rp != nil && rp.EnableRetry {
		minutes, err := retryMinutes(rp.RetryInterval)
		if err != nil {
			return j, err
		}
		j.Retry = ota.Retry{Count: rp.RetryCount, Interval: time.Duration(minutes) * time.Minute}
	}
	if sp := r.SchedulePolicy; sp != nil {
		start, end := time.UnixMilli(sp.StartTimestamp).UTC(), time.UnixMilli(sp.EndTimestamp).UTC()
		if sp.StartTimestamp != 0 {
			j.Schedule.Start = start
		}
		if sp.IsRepeatDaily {
			if sp.StartTimestamp == 0 || sp.EndTimestamp == 0 {
				return j, ota.Invalid("schedulePolicy", "a daily window needs startTimestamp and endTimestamp (their times of day are the window)")
			}
			off := time.Duration(sp.TimezoneOffsetInMinutes) * time.Minute
			ls, le := start.Add(off), end.Add(off)
			j.Schedule.Window = &ota.DailyWindow{FromMinute: ls.Hour()*60 + ls.Minute(), ToMinute: le.Hour()*60 + le.Minute(),
				UTCOffsetMinutes: sp.TimezoneOffsetInMinutes}
		} else if sp.EndTimestamp != 0 {
			j.Schedule.Finish = end
		}
	}
	return j, nil
}

// retryMinutes reads retryInterval, a number or numeric string of minutes
// (the sample sends "10"; EnOS states no unit, Updraft takes minutes).
func retryMinutes(raw json.RawMessage) (int, error) {
	s := strings.Trim(strings.TrimSpace(string(raw)), `"`)
	if s == "" || s == "null" {
		return 0, nil
	}
	n, err := strconv.Atoi(s)
	if err != nil || n < 0 {
		return 0, ota.Invalid("retryPolicy.retryInterval", "retryPolicy.retryInterval %s is not a number of minutes", s)
	}
	return n, nil
}

func (a *API) jobOf(ctx context.Context, c *call, j ota.Job, fw map[string]ota.Package) jobInfo {
	pkg, ok := fw[j.PackageID]
	if !ok {
		pkg, _ = a.svc.GetPackage(ctx, c.p, j.PackageID)
		fw[j.PackageID] = pkg
	}
	info := jobInfo{OrgID: j.TenantID, ProductKey: j.ProductKey, JobID: j.ID, Name: nameOf(j.Name, j.LocalNames),
		FirmwareID: j.PackageID, FirmwareVersion: pkg.Version, FirmwareName: nameOf(pkg.Name, pkg.LocalNames),
		Type: string(j.Type), EnableUpgradeRequest: j.AllowDeviceRequest, UpgradePolicy: "snapshot",
		UpgradeTimeout: j.TimeoutSeconds, MaximumConcurrency: j.MaxConcurrency, Status: jobStatus(j.State),
		CreateTime: j.CreatedAt.UnixMilli()}
	if j.Selection == ota.SelectDynamic {
		info.UpgradePolicy = "incremental"
	}
	info.UpgradeScope = upgradeScope{Type: "partial", VersionNumbers: j.Target.SourceVersions, DeviceKeys: j.Target.Devices,
		DeviceGroupIDs: j.Target.Groups, Tags: j.Target.Tags}
	if len(j.Target.Attributes) > 0 {
		info.UpgradeScope.Attributes = map[string]any{}
		for k, v := range j.Target.Attributes {
			info.UpgradeScope.Attributes[k] = v
		}
	}
	if j.Target.All || len(j.Target.Devices) == 0 && len(j.Target.Groups) == 0 && len(j.Target.Attributes) == 0 && len(j.Target.Tags) == 0 {
		info.UpgradeScope.Type = "total"
	}
	if j.Retry.Count > 0 {
		info.RetryPolicy = &retryPolicy{EnableRetry: true, RetryCount: j.Retry.Count,
			RetryInterval: json.RawMessage(strconv.Itoa(int(j.Retry.Interval / time.Minute)))}
	}
	if !j.Schedule.Start.IsZero() || !j.Schedule.Finish.IsZero() || j.Schedule.Window != nil {
		sp := &schedulePolicy{}
		if !j.Schedule.Start.IsZero() {
			sp.StartTimestamp = j.Schedule.Start.UnixMilli()
		}
		if !j.Schedule.Finish.IsZero() {
			sp.EndTimestamp = j.Schedule.Finish.UnixMilli()
		}
		if w := j.Schedule.Window; w != nil {
			sp.IsRepeatDaily, sp.TimezoneOffsetInMinutes = true, w.UTCOffsetMinutes
		}
		info.SchedulePolicy = sp
	}
	return info
}

func (a *API) getJob(ctx context.Context, c *call) (any, error) {
	c.op = opJob
	id, err := c.param("jobId")
	if err != nil {
		return nil, err
	}
	v, err := a.svc.GetJob(ctx, c.p, id)
	if err != nil {
		return nil, err
	}
	return a.jobOf(ctx, c, v.Job, map[string]ota.Package{}), nil
}

var jobFields = map[string][]string{"productKey": {"="}, "firmwareId": {"="}, "type": {"="}, "status": {"="},
	"name": {"like"}, "name.defaultValue": {"like"}, localizedName: {"like"}}

func (a *API) searchJobs(ctx context.Context, c *call) (any, error) {
	c.op = opJob
	page, conds, err := c.search(jobFields)
	if err != nil {
		return nil, err
	}
	var f store.JobFilter
	f.NameLocale = nameLocale(conds)
	for _, cd := range conds {
		v := cd.values[0]
		switch cd.field {
		case "productKey":
			f.ProductKey = v
		case "firmwareId":
			f.PackageID = v
		case "name", "name.defaultValue", localizedName:
			f.NameContains = likeText(v)
		case "type":
			if v != "upgrade" && v != "verify" {
				return nil, ota.Invalid("expression", "type %q is not upgrade or verify", v)
			}
			f.Type = ota.JobType(v)
		case "status":
			states, ok := jobStates[v]
			if !ok {
				return nil, ota.Invalid("expression", "status %q is not started or stopped", v)
			}
			f.States = states
		}
	}
	list, total, err := a.svc.ListJobs(ctx, c.p, f, page)
	if err != nil {
		return nil, err
	}
	c.page.TotalSize = total
	fw := map[string]ota.Package{}
	out := make([]jobInfo, 0, len(list))
	for _, j := range list {
		out = append(out, a.jobOf(ctx, c, j, fw))
	}
	return out, nil
}

func (a *API) startJob(ctx context.Context, c *call) (any, error) {
	c.op = opJobStart
	id, err := c.param("jobId")
	if err != nil {
		return nil, err
	}
	v, err := a.svc.GetJob(ctx, c.p, id)
	if err != nil {
		return nil, err
	}
	switch {
	case v.Job.State == ota.JobPaused && v.Job.StartedAt.IsZero():
		_, err = a.svc.StartJob(ctx, c.p, id)
	case v.Job.State == ota.JobPaused:
		_, err = a.svc.ResumeJob(ctx, c.p, id)
	case v.Job.State.Terminal():
		err = ota.Errorf(ota.CodeConflict, "Job has ended (%s): create a new job", v.Job.State)
	default:
		err = ota.Errorf(ota.CodeConflict, "Job has started")
	}
	return nil, err
}

func (a *API) stopJob(ctx context.Context, c *call) (any, error) {
	c.op = opJob
	id, err := c.param("jobId")
	if err != nil {
		return nil, err
	}
	if err := a.requireRunning(ctx, c, id); err != nil {
		return nil, err
	}
	_, err = a.svc.PauseJob(ctx, c.p, id)
	return nil, err
}

func (a *API) deleteJob(ctx context.Context, c *call) (any, error) {
	c.op = opJob
	id, err := c.param("jobId")
	if err != nil {
		return nil, err
	}
	v, err := a.svc.GetJob(ctx, c.p, id)
	if err != nil {
		return nil, err
	}
	// EnOS deletes a job in any state; Updraft ends it first.
	if !v.Job.State.Terminal() {
		if _, err := a.svc.CancelJob(ctx, c.p, id); err != nil {
			return nil, err
		}
	}
	return nil, a.svc.DeleteJob(ctx, c.p, id)
}

// requireRunning answers 24617 unless the job is started.
func (a *API) requireRunning(ctx context.Context, c *call, id string) error {
	v, err := a.svc.GetJob(ctx, c.p, id)
	if err != nil {
		return err
	}
	if jobStatus(v.Job.State) != "started" {
		return wireErr(codeJobNotRunning, "Job not running: start it first")
	}
	return nil
}

var taskFields = map[string][]string{"jobId": {"="}, "deviceKey": {"=", "in"}, "status": {"=", "in"}}

func (a *API) searchTasks(ctx context.Context, c *call) (any, error) {
	c.op = opJob
	page, conds, err := c.search(taskFields)
	if err != nil {
		return nil, err
	}
	var f store.TaskFilter
	for _, cd := range conds {
		switch cd.field {
		case "jobId":
			f.JobID = cd.values[0]
		case "deviceKey":
			f.Devices = cd.values
		case "status":
			for _, v := range cd.values {
				states, ok := taskStates[v]
				if !ok {
					return nil, ota.Invalid("expression", "status %q is not one of init, published, upgrading, succeeded, failed, canceled", v)
				}
				f.States = append(f.States, states...)
			}
		}
	}
	list, total, err := a.svc.ListTasks(ctx, c.p, f, page)
	if err != nil {
		return nil, err
	}
	c.page.TotalSize = total
	out := make([]taskInfo, 0, len(list))
	for _, t := range list {
		desc := t.Detail
		if t.Reason != ota.ReasonNone {
			desc = strings.TrimSpace(string(t.Reason) + " " + t.Detail)
		}
		progress := t.Progress
		if t.State == ota.TaskFailed {
			progress = -1
		}
		out = append(out, taskInfo{TaskID: strconv.FormatInt(t.ID, 10), OrgID: t.TenantID, ProductKey: t.ProductKey,
			DeviceKey: t.DeviceName, JobID: t.JobID, FromVersion: t.FromVersion, ToVersion: t.ToVersion, Desc: desc,
			Progress: progress, Status: taskStatus(t.State), UpdateTime: t.UpdatedAt.UnixMilli()})
	}
	return out, nil
}

// jobTasks reads the body's deviceKeys and their tasks in the job, after
// checking the job is running (24617).
func (a *API) jobTasks(ctx context.Context, c *call) (string, []ota.Task, error) {
	id, err := c.param("jobId")
	if err != nil {
		return "", nil, err
	}
	var req deviceKeysRequest
	if err := c.decode(&req); err != nil {
		return "", nil, err
	}
	if len(req.DeviceKeys) == 0 {
		return "", nil, ota.Invalid("deviceKeys", "deviceKeys is required")
	}
	if len(req.DeviceKeys) > ota.MaxJobDevices {
		return "", nil, ota.Invalid("deviceKeys", "at most %d deviceKeys per call, got %d", ota.MaxJobDevices, len(req.DeviceKeys))
	}
	if err := a.requireRunning(ctx, c, id); err != nil {
		return "", nil, err
	}
	tasks, _, err := a.svc.ListTasks(ctx, c.p, store.TaskFilter{JobID: id, Devices: req.DeviceKeys}, store.Page{Limit: len(req.DeviceKeys)})
	if err != nil {
		return "", nil, err
	}
	found := map[string]bool{}
	for _, t := range tasks {
		found[t.DeviceName] = true
	}
	for _, d := range req.DeviceKeys {
		if !found[d] {
			return "", nil, ota.Errorf(ota.CodeNotFound, "device %q has no task in job %s", d, id)
		}
	}
	return id, tasks, nil
}

func (a *API) cancelTasks(ctx context.Context, c *call) (any, error) {
	c.op = opTaskCancel
	id, tasks, err := a.jobTasks(ctx, c)
	if err != nil {
		return nil, err
	}
	cancelable := append(slices.Clone(taskStates["init"]), taskStates["published"]...)
	ids := make([]int64, 0, len(tasks))
	for _, t := range tasks {
		if !slices.Contains(cancelable, t.State) {
			return nil, ota.Errorf(ota.CodeConflict, "Only init or published tasks can be canceled: the task of %s is %s", t.DeviceName, taskStatus(t.State))
		}
		ids = append(ids, t.ID)
	}
	_, err = a.svc.CancelTasksWhere(ctx, c.p, id, cancelable, ids)
	return nil, err
}

func (a *API) retryTasks(ctx context.Context, c *call) (any, error) {
	c.op = opTaskRetry
	id, tasks, err := a.jobTasks(ctx, c)
	if err != nil {
		return nil, err
	}
	devices := make([]string, 0, len(tasks))
	for _, t := range tasks {
		if t.State != ota.TaskFailed {
			return nil, ota.Errorf(ota.CodeConflict, "Only failed tasks can be retried: the task of %s is %s", t.DeviceName, taskStatus(t.State))
		}
		devices = append(devices, t.DeviceName)
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

// attributeStrings turns upgradeScope.attributes into Updraft's string
// labels: EnOS attribute values may be numbers or booleans, which match a
// device attribute holding their JSON text ("2", "true"); objects, arrays
// and null cannot be matched and are refused.
func attributeStrings(in map[string]any) (map[string]string, error) {
	if len(in) == 0 {
		return nil, nil
	}
	out := make(map[string]string, len(in))
	for k, v := range in {
		switch v := v.(type) {
		case string:
			out[k] = v
		case float64, bool:
			b, _ := json.Marshal(v)
			out[k] = string(b)
		default:
			return nil, ota.Invalid("upgradeScope.attributes", "attribute %q: only string, number or boolean values can be matched", k)
		}
	}
	return out, nil
}
