package server

import (
	"context"
	"log/slog"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/updraft-ota/updraft/internal/ota"
	"github.com/updraft-ota/updraft/internal/service"
)

// maxJobsInMetrics bounds the per-job series: the newest running jobs.
const maxJobsInMetrics = 50

// fleetCollector reads job progress and device presence from the service
// at each scrape (so they are the same on every replica).
type fleetCollector struct {
	svc      *service.Service
	log      *slog.Logger
	jobTasks *prometheus.Desc
	present  *prometheus.Desc
}

func newFleetCollector(svc *service.Service, log *slog.Logger) *fleetCollector {
	return &fleetCollector{svc: svc, log: log,
		jobTasks: prometheus.NewDesc("updraft_job_tasks", "Tasks of each running job by state (the newest 50 running jobs).",
			[]string{"tenant", "job", "state"}, nil),
		present: prometheus.NewDesc("updraft_devices_present", "Devices online over MQTT, or polling over device HTTP in the last 3 minutes, by protocol.",
			[]string{"protocol", "transport"}, nil),
	}
}

func (c *fleetCollector) Describe(ch chan<- *prometheus.Desc) {
	ch <- c.jobTasks
	ch <- c.present
}

func (c *fleetCollector) Collect(ch chan<- prometheus.Metric) {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	jobs, err := c.svc.RunningJobs(ctx, maxJobsInMetrics)
	if err != nil {
		c.log.Warn("metrics: reading running jobs failed", "err", err)
		ch <- prometheus.NewInvalidMetric(c.jobTasks, err)
	}
	for _, j := range jobs {
		for _, st := range ota.TaskStates {
			ch <- prometheus.MustNewConstMetric(c.jobTasks, prometheus.GaugeValue, float64(j.Counts[st]), j.Job.TenantID, j.Job.ID, string(st))
		}
	}
	present, err := c.svc.DevicesPresent(ctx)
	if err != nil {
		c.log.Warn("metrics: counting present devices failed", "err", err)
		ch <- prometheus.NewInvalidMetric(c.present, err)
		return
	}
	for _, p := range present {
		ch <- prometheus.MustNewConstMetric(c.present, prometheus.GaugeValue, float64(p.Devices), string(p.Protocol), p.Transport)
	}
}

// tasksFinishedCounter counts the tasks this replica saw end, by state and
// reason (service.Options.TasksFinished).
func tasksFinishedCounter() *prometheus.CounterVec {
	return prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "updraft_tasks_finished_total",
		Help: "Tasks that ended succeeded or failed in this replica, by state and failure reason (timeout included).",
	}, []string{"state", "reason"})
}
