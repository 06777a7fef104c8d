package client

import (
	"context"
	"net/http"
	"net/url"
	"strconv"

	"github.com/updraft-ota/updraft/apiv1"
)

// TaskStates lists the task states in lifecycle order.
var TaskStates = []string{"waiting", "confirm", "queued", "notified", "in_progress", "retry_wait", "succeeded", "failed",
	"canceled", "skipped"}

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

// TaskFilter narrows ListTasks. Pages go by task id: pass the previous
// page's NextAfter as After.
type TaskFilter struct {
	States  []string
	Devices []string
	Limit   int
	After   int64
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
	body := apiv1.TasksRequest{Devices: devices, All: len(devices) == 0}
	var out TaskResults
	err := c.do(ctx, http.MethodPost, "/api/v1/jobs/"+escape(jobID)+"/tasks/"+action, nil, body, &out)
	return out, err
}

// StartJob starts a job created with Start false.
func (c *Client) StartJob(ctx context.Context, id string) (Job, error) {
	return c.jobAction(ctx, id, "start")
}

// UpdateJob changes a job's description, pace, timeout, tags or source
// versions.
func (c *Client) UpdateJob(ctx context.Context, id string, in JobUpdate) (Job, error) {
	var out Job
	err := c.do(ctx, http.MethodPatch, "/api/v1/jobs/"+escape(id), nil, in, &out)
	return out, err
}

// CancelTasksWhere cancels a job's unfinished tasks in the given states (all
// unfinished states when none) and, when ids are given, only those tasks.
func (c *Client) CancelTasksWhere(ctx context.Context, jobID string, states []string, taskIDs []int64) (int64, error) {
	if len(states) == 0 && len(taskIDs) == 0 {
		states = []string{"waiting", "confirm", "queued", "notified", "in_progress", "retry_wait"}
	}
	body := apiv1.TasksRequest{States: states, TaskIDs: taskIDs}
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
