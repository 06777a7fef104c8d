package client

import (
	"context"
	"net/http"
	"net/url"
	"strconv"
	"time"
)

// JobTarget chooses a job's devices: one of All, Devices or Groups (or
// SourceVersions alone); SourceVersions and GrayPercent narrow them.
type JobTarget struct {
	All     bool     `json:"all,omitempty"`
	Devices []string `json:"devices,omitempty"`
	Groups  []string `json:"groups,omitempty"`
	// Attributes and Tags: devices carrying every one of these pairs.
	Attributes     map[string]string `json:"attributes,omitempty"`
	Tags           map[string]string `json:"tags,omitempty"`
	GrayPercent    float64           `json:"gray_percent,omitempty"`
	SourceVersions []string          `json:"source_versions,omitempty"`
}

// JobWindow is a daily dispatch window: From and To are "HH:MM" local time at
// UTCOffsetMinutes; From > To spans midnight.
type JobWindow struct {
	From             string `json:"from"`
	To               string `json:"to"`
	UTCOffsetMinutes int    `json:"utc_offset_minutes"`
}

// JobSchedule is when a job may send notices. Nil times mean now and never.
type JobSchedule struct {
	Start  *time.Time `json:"start,omitempty"`
	Finish *time.Time `json:"finish,omitempty"`
	Window *JobWindow `json:"window,omitempty"`
}

// JobRetry re-queues failed tasks.
type JobRetry struct {
	Count           int `json:"count"`
	IntervalSeconds int `json:"interval_seconds"`
}

// JobAbort cancels a job whose failure share reaches FailurePercent once
// MinFinished tasks have finished.
type JobAbort struct {
	FailurePercent float64 `json:"failure_percent"`
	MinFinished    int     `json:"min_finished"`
}

// JobCreate is a new job. Zero fields take the server's defaults; NeedPush
// nil means true.
type JobCreate struct {
	PackageID          string      `json:"package_id"`
	Name               string      `json:"name,omitempty"`
	Description        string      `json:"description,omitempty"`
	Type               string      `json:"type,omitempty"`      // upgrade (default) or verify
	Selection          string      `json:"selection,omitempty"` // static (default) or dynamic
	Target             JobTarget   `json:"target"`
	Schedule           JobSchedule `json:"schedule"`
	MaxConcurrency     int         `json:"max_concurrency,omitempty"`
	MaxPerMinute       int         `json:"max_per_minute,omitempty"`
	Retry              JobRetry    `json:"retry"`
	TimeoutSeconds     int         `json:"timeout_seconds,omitempty"`
	NeedPush           *bool       `json:"need_push,omitempty"`
	NeedConfirm        bool        `json:"need_confirm,omitempty"`
	Overwrite          string      `json:"overwrite,omitempty"` // keep (default) or overwrite
	AllowDeviceRequest bool        `json:"allow_device_request,omitempty"`
	AllowDowngrade     bool        `json:"allow_downgrade,omitempty"` // move devices on a newer version back
	TimeoutFrom        string      `json:"timeout_from,omitempty"`    // notified (default) or in_progress
	Abort              JobAbort    `json:"abort"`
	Tags               []Tag       `json:"tags,omitempty"`
	ExtInfo            string      `json:"ext_info,omitempty"`
	// Start false creates the job held, until StartJob; nil means true.
	Start *bool `json:"start,omitempty"`
}

// TaskStates lists the task states in lifecycle order.
var TaskStates = []string{"waiting", "confirm", "queued", "notified", "in_progress", "retry_wait", "succeeded", "failed",
	"canceled", "skipped"}

// Job is a rollout of a package. Counts (tasks per state) is set by GetJob
// and the actions, not by ListJobs.
type Job struct {
	ID                 string           `json:"id"`
	PackageID          string           `json:"package_id"`
	Product            string           `json:"product"`
	Module             string           `json:"module"`
	Name               string           `json:"name"`
	Description        string           `json:"description"`
	Type               string           `json:"type"`
	Selection          string           `json:"selection"`
	Target             JobTarget        `json:"target"`
	Schedule           JobSchedule      `json:"schedule"`
	MaxConcurrency     int              `json:"max_concurrency"`
	MaxPerMinute       int              `json:"max_per_minute"`
	Retry              JobRetry         `json:"retry"`
	TimeoutSeconds     int              `json:"timeout_seconds"`
	NeedPush           bool             `json:"need_push"`
	NeedConfirm        bool             `json:"need_confirm"`
	Overwrite          string           `json:"overwrite"`
	AllowDeviceRequest bool             `json:"allow_device_request"`
	AllowDowngrade     bool             `json:"allow_downgrade"`
	TimeoutFrom        string           `json:"timeout_from"`
	PackageKind        string           `json:"package_kind"`
	Abort              JobAbort         `json:"abort"`
	Tags               []Tag            `json:"tags"`
	ExtInfo            string           `json:"ext_info"`
	State              string           `json:"state"` // planned, running, paused, completed, canceled
	StateReason        string           `json:"state_reason"`
	Materialized       bool             `json:"materialized"`
	Initializing       bool             `json:"initializing"` // tasks still being created; Counts so far
	Counts             map[string]int64 `json:"counts,omitempty"`
	Outcome            string           `json:"outcome,omitempty"` // once ended: succeeded, partial, failed, canceled
	CreatedAt          time.Time        `json:"created_at"`
	UpdatedAt          time.Time        `json:"updated_at"`
	StartedAt          *time.Time       `json:"started_at"`
	FinishedAt         *time.Time       `json:"finished_at"`
}

// Ended reports whether the job can no longer change.
func (j Job) Ended() bool { return j.State == "completed" || j.State == "canceled" }

// TaskTotal sums Counts.
func (j Job) TaskTotal() int64 {
	var n int64
	for _, v := range j.Counts {
		n += v
	}
	return n
}

// TasksFinished sums the finished states of Counts.
func (j Job) TasksFinished() int64 {
	return j.Counts["succeeded"] + j.Counts["failed"] + j.Counts["canceled"]
}

// JobFilter narrows ListJobs. Zero fields do not filter.
type JobFilter struct {
	Package   string
	Product   string
	Module    string
	Type      string
	Selection string
	States    []string
	Page
}

// Task is one device's part in a job.
type Task struct {
	ID            int64      `json:"id"`
	JobID         string     `json:"job_id"`
	Product       string     `json:"product"`
	Device        string     `json:"device"`
	Module        string     `json:"module"`
	State         string     `json:"state"`
	FromVersion   string     `json:"from_version"`
	ToVersion     string     `json:"to_version"`
	Progress      int        `json:"progress"`
	Attempts      int        `json:"attempts"`
	Reason        string     `json:"reason"`
	Detail        string     `json:"detail"`
	NotifiedAt    *time.Time `json:"notified_at"`
	StartedAt     *time.Time `json:"started_at"`
	FinishedAt    *time.Time `json:"finished_at"`
	NextAttemptAt *time.Time `json:"next_attempt_at"`
	CreatedAt     time.Time  `json:"created_at"`
	UpdatedAt     time.Time  `json:"updated_at"`
}

// TaskFilter narrows ListTasks. Pages go by task id: pass the previous
// page's NextAfter as After.
type TaskFilter struct {
	States  []string
	Devices []string
	Limit   int
	After   int64
}

// TaskPage is a page of tasks. NextAfter is 0 on the last page.
type TaskPage struct {
	Items     []Task `json:"items"`
	Total     int64  `json:"total"`
	NextAfter int64  `json:"next_after"`
}

// TaskResult is the outcome of a task action for one device.
type TaskResult struct {
	Device  string `json:"device"`
	OK      bool   `json:"ok"`
	Code    string `json:"code,omitempty"`
	Message string `json:"message,omitempty"`
}

// TaskResults is the answer to a task action.
type TaskResults struct {
	Results   []TaskResult `json:"results"`
	Succeeded int          `json:"succeeded"`
	Failed    int          `json:"failed"`
}

// CreateJob creates a job; it returns at once, before the job's tasks exist.
func (c *Client) CreateJob(ctx context.Context, in JobCreate) (Job, error) {
	var out Job
	err := c.do(ctx, http.MethodPost, "/api/v1/jobs", nil, in, &out)
	return out, err
}

// ListJobs lists jobs, newest first.
func (c *Client) ListJobs(ctx context.Context, f JobFilter) (List[Job], error) {
	q := url.Values{}
	f.Page.set(q)
	for k, v := range map[string]string{"package": f.Package, "product": f.Product, "module": f.Module, "type": f.Type, "selection": f.Selection} {
		if v != "" {
			q.Set(k, v)
		}
	}
	q["state"] = f.States
	var out List[Job]
	err := c.do(ctx, http.MethodGet, "/api/v1/jobs", q, nil, &out)
	return out, err
}

// GetJob returns a job with its task counts.
func (c *Client) GetJob(ctx context.Context, id string) (Job, error) {
	var out Job
	err := c.do(ctx, http.MethodGet, "/api/v1/jobs/"+escape(id), nil, nil, &out)
	return out, err
}

// DeleteJob deletes a completed or canceled job.
func (c *Client) DeleteJob(ctx context.Context, id string) error {
	return c.do(ctx, http.MethodDelete, "/api/v1/jobs/"+escape(id), nil, nil, nil)
}

// PauseJob stops a job's notices.
func (c *Client) PauseJob(ctx context.Context, id string) (Job, error) {
	return c.jobAction(ctx, id, "pause")
}

// ResumeJob resumes a paused job.
func (c *Client) ResumeJob(ctx context.Context, id string) (Job, error) {
	return c.jobAction(ctx, id, "resume")
}

// CancelJob cancels a job and its unfinished tasks.
func (c *Client) CancelJob(ctx context.Context, id string) (Job, error) {
	return c.jobAction(ctx, id, "cancel")
}

func (c *Client) jobAction(ctx context.Context, id, action string) (Job, error) {
	var out Job
	err := c.do(ctx, http.MethodPost, "/api/v1/jobs/"+escape(id)+"/"+action, nil, nil, &out)
	return out, err
}

// ListTasks pages a job's tasks by id.
func (c *Client) ListTasks(ctx context.Context, jobID string, f TaskFilter) (TaskPage, error) {
	q := url.Values{}
	q["state"] = f.States
	q["device"] = f.Devices
	if f.Limit > 0 {
		q.Set("limit", strconv.Itoa(f.Limit))
	}
	if f.After > 0 {
		q.Set("after", strconv.FormatInt(f.After, 10))
	}
	var out TaskPage
	err := c.do(ctx, http.MethodGet, "/api/v1/jobs/"+escape(jobID)+"/tasks", q, nil, &out)
	return out, err
}

// RetryTasks sends the devices' failed or canceled tasks back to the queue;
// no devices means every such task.
func (c *Client) RetryTasks(ctx context.Context, jobID string, devices []string) (TaskResults, error) {
	return c.taskAction(ctx, jobID, "retry", devices)
}

// CancelTasks cancels the devices' unfinished tasks; no devices means all.
func (c *Client) CancelTasks(ctx context.Context, jobID string, devices []string) (TaskResults, error) {
	return c.taskAction(ctx, jobID, "cancel", devices)
}

// ConfirmTasks confirms the devices' tasks waiting for confirmation; no
// devices means all.
func (c *Client) ConfirmTasks(ctx context.Context, jobID string, devices []string) (TaskResults, error) {
	return c.taskAction(ctx, jobID, "confirm", devices)
}

func (c *Client) taskAction(ctx context.Context, jobID, action string, devices []string) (TaskResults, error) {
	body := struct {
		Devices []string `json:"devices,omitempty"`
		All     bool     `json:"all,omitempty"`
	}{Devices: devices, All: len(devices) == 0}
	var out TaskResults
	err := c.do(ctx, http.MethodPost, "/api/v1/jobs/"+escape(jobID)+"/tasks/"+action, nil, body, &out)
	return out, err
}

// StartJob starts a job created with Start false.
func (c *Client) StartJob(ctx context.Context, id string) (Job, error) {
	return c.jobAction(ctx, id, "start")
}

// JobUpdate changes an unfinished job; nil fields stay as they are.
type JobUpdate struct {
	Description    *string   `json:"description,omitempty"`
	MaxConcurrency *int      `json:"max_concurrency,omitempty"`
	MaxPerMinute   *int      `json:"max_per_minute,omitempty"`
	TimeoutSeconds *int      `json:"timeout_seconds,omitempty"`
	Tags           *[]Tag    `json:"tags,omitempty"`
	SourceVersions *[]string `json:"source_versions,omitempty"`
}

// UpdateJob changes a job's description, pace, timeout, tags or source
// versions.
func (c *Client) UpdateJob(ctx context.Context, id string, in JobUpdate) (Job, error) {
	var out Job
	err := c.do(ctx, http.MethodPatch, "/api/v1/jobs/"+escape(id), nil, in, &out)
	return out, err
}

// CanceledCount is how many tasks a set-based cancel canceled.
type CanceledCount struct {
	Canceled int64 `json:"canceled"`
}

// CancelTasksWhere cancels a job's unfinished tasks in the given states (all
// unfinished states when none) and, when ids are given, only those tasks.
func (c *Client) CancelTasksWhere(ctx context.Context, jobID string, states []string, taskIDs []int64) (int64, error) {
	if len(states) == 0 && len(taskIDs) == 0 {
		states = []string{"waiting", "confirm", "queued", "notified", "in_progress", "retry_wait"}
	}
	body := struct {
		States  []string `json:"states,omitempty"`
		TaskIDs []int64  `json:"task_ids,omitempty"`
	}{States: states, TaskIDs: taskIDs}
	var out CanceledCount
	err := c.do(ctx, http.MethodPost, "/api/v1/jobs/"+escape(jobID)+"/tasks/cancel", nil, body, &out)
	return out.Canceled, err
}

// CancelDeviceTasks cancels every unfinished task of a device in any job
// (module "" = on every module).
func (c *Client) CancelDeviceTasks(ctx context.Context, product, device, module string) (int64, error) {
	q := url.Values{}
	if module != "" {
		q.Set("module", module)
	}
	var out CanceledCount
	err := c.do(ctx, http.MethodPost, "/api/v1/products/"+escape(product)+"/devices/"+escape(device)+"/tasks/cancel", q, nil, &out)
	return out.Canceled, err
}
