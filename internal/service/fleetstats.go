package service

// Fleet figures for the server's metrics: what is running and who is there,
// over every tenant. Read from the store at each scrape, so every replica
// reports the same numbers.

import (
	"context"
	"time"

	"github.com/updraft-ota/updraft/internal/ota"
	"github.com/updraft-ota/updraft/internal/store"
)

// PresenceWindow is how recent a device-HTTP request must be for its device
// to count as present: three of the device API's default poll intervals.
const PresenceWindow = 3 * time.Minute

// RunningJobs returns up to limit running jobs of every tenant, newest
// first, each with its task counts.
func (s *Service) RunningJobs(ctx context.Context, limit int) ([]JobView, error) {
	jobs, _, err := s.store.ListJobs(ctx, store.JobFilter{States: []ota.JobState{ota.JobRunning}}, store.Page{Limit: limit}, false)
	if err != nil {
		return nil, err
	}
	out := make([]JobView, 0, len(jobs))
	for _, j := range jobs {
		counts, err := s.store.CountTasks(ctx, j.ID)
		if err != nil {
			return nil, err
		}
		out = append(out, JobView{Job: j, Counts: counts})
	}
	return out, nil
}

// DevicesPresent counts devices online over MQTT and polling over device
// HTTP within PresenceWindow, per protocol.
func (s *Service) DevicesPresent(ctx context.Context) ([]store.Presence, error) {
	return s.store.CountPresent(ctx, s.clock.Now().Add(-PresenceWindow))
}
