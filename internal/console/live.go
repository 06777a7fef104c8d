package console

import (
	"encoding/json"
	"fmt"
	"net/http"
	"time"

	"github.com/updraft-ota/updraft/internal/api/httpx"
	"github.com/updraft-ota/updraft/internal/ota"
	"github.com/updraft-ota/updraft/internal/store"
)

func httpStatus(code ota.Code) int { return httpx.Status(code) }

// snapshot is the live job page's state: what the page renders first and
// what every server-sent event carries.
type snapshot struct {
	Job          ota.Job          `json:"-"`
	ID           string           `json:"id"`
	State        ota.JobState     `json:"state"`
	StateReason  string           `json:"state_reason"`
	Outcome      ota.JobOutcome   `json:"outcome"`
	Initializing bool             `json:"initializing"`
	Counts       map[string]int64 `json:"counts"`
	Total        int64            `json:"total"`
	Finished     int64            `json:"finished"`
	Succeeded    int64            `json:"succeeded"`
	Failed       int64            `json:"failed"`
	Percent      int              `json:"percent"` // finished of total, 0–100
	Failures     []failure        `json:"failures"`
	FailedTotal  int64            `json:"failed_total"`
	At           int64            `json:"at"` // unix milliseconds
}

type failure struct {
	Product string `json:"product"`
	Device  string `json:"device"`
	Reason  string `json:"reason"`
	Detail  string `json:"detail"`
	At      string `json:"at"`
}

// maxFailures is how many failing devices the live page lists.
const maxFailures = 20

func (c *Console) snapshot(r *http.Request, s *session, id string) (snapshot, error) {
	v, err := c.svc.GetJob(r.Context(), s.p, id)
	if err != nil {
		return snapshot{}, err
	}
	counts := map[string]int64{}
	for _, st := range ota.TaskStates {
		counts[string(st)] = v.Counts[st]
	}
	snap := snapshot{
		Job: v.Job, ID: v.Job.ID, State: v.Job.State, StateReason: v.Job.StateReason, Outcome: v.Outcome(),
		Initializing: v.Initializing(), Counts: counts, Total: v.Counts.Total(), Finished: v.Counts.Finished(),
		Succeeded: v.Counts[ota.TaskSucceeded], Failed: v.Counts[ota.TaskFailed], FailedTotal: v.Counts[ota.TaskFailed],
		At: time.Now().UnixMilli(), Failures: []failure{},
	}
	if snap.Total > 0 {
		snap.Percent = int(snap.Finished * 100 / snap.Total)
	}
	if snap.Failed > 0 {
		tasks, err := c.recentFailures(r, s, store.TaskFilter{JobID: id}, maxFailures)
		if err != nil {
			return snapshot{}, err
		}
		for _, t := range tasks {
			snap.Failures = append(snap.Failures, failure{Product: t.ProductKey, Device: t.DeviceName, Reason: string(t.Reason),
				Detail: t.Detail, At: t.FinishedAt.UTC().Format("15:04:05")})
		}
	}
	return snap, nil
}

// events streams the job's snapshot as server-sent events until the client
// leaves; the session is checked again before every event, so a revoked key
// stops the stream at once.
func (c *Console) events(w http.ResponseWriter, r *http.Request) {
	s, err := c.currentSession(r)
	if err != nil {
		c.fail(w, r, nil, err)
		return
	}
	id := r.PathValue("id")
	snap, err := c.snapshot(r, s, id)
	if err != nil {
		c.fail(w, r, s, err)
		return
	}
	rc := http.NewResponseController(w)
	w.Header().Set("Content-Type", "text/event-stream")
	w.Header().Set("Cache-Control", "no-store")
	w.Header().Set("X-Accel-Buffering", "no")
	w.WriteHeader(http.StatusOK)
	tick := time.NewTicker(c.opts.LiveInterval)
	defer tick.Stop()
	for {
		// Every tick, changed or not: the page's chart plots a point per event.
		b, _ := json.Marshal(snap)
		if _, err := fmt.Fprintf(w, "event: snapshot\ndata: %s\n\n", b); err != nil {
			return
		}
		if err := rc.Flush(); err != nil {
			return
		}
		if snap.State.Terminal() && snap.Counts[string(ota.TaskRetryWait)] == 0 && snap.Total == snap.Finished {
			// Nothing will change any more unless an operator acts, and
			// acting reloads the page.
			fmt.Fprint(w, "event: end\ndata: {}\n\n")
			_ = rc.Flush()
			return
		}
		select {
		case <-r.Context().Done():
			return
		case <-tick.C:
		}
		if s, err = c.currentSession(r); err != nil {
			fmt.Fprint(w, "event: signedout\ndata: {}\n\n")
			_ = rc.Flush()
			return
		}
		if snap, err = c.snapshot(r, s, id); err != nil {
			c.log.Warn("console: live job", "job", id, "err", err)
			return
		}
	}
}
