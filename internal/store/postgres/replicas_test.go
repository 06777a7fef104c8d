package postgres

import (
	"context"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/updraft-ota/updraft/internal/ota"
	"github.com/updraft-ota/updraft/internal/store"
	"github.com/updraft-ota/updraft/internal/store/storetest"
	"github.com/updraft-ota/updraft/internal/testenv"
)

// These tests cover what only PostgreSQL has: several replicas (separate
// pools) on one schema at once. The behaviour every backend shares is the
// contract suite's (TestPostgres).

var t0 = time.Date(2025, 3, 1, 12, 0, 0, 0, time.UTC)

// openReplicas opens n stores on one fresh schema, as n replicas would.
func openReplicas(t *testing.T, n int) []*Store {
	t.Helper()
	dsn := TestSchemaDSN(t, testenv.PostgresDSN(t))
	out := make([]*Store, n)
	for i := range out {
		s, err := Open(context.Background(), dsn)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { s.Close() })
		out[i] = s
	}
	return out
}

func mustJob(t testing.TB, s *Store, id string) ota.Job {
	t.Helper()
	ctx := context.Background()
	j := ota.Job{ID: id, TenantID: "t1", PackageID: "p1", ProductKey: "prod", Module: ota.DefaultModule,
		Name: id, Target: ota.Target{All: true}, State: ota.JobRunning, CreatedAt: t0}
	j.Normalize()
	if err := s.CreateJob(ctx, j); err != nil {
		t.Fatal(err)
	}
	return j
}

func queuedTasks(jobID string, from, to int) []ota.Task {
	out := make([]ota.Task, 0, to-from)
	for i := from; i < to; i++ {
		out = append(out, ota.Task{JobID: jobID, TenantID: "t1", ProductKey: "prod", DeviceName: fmt.Sprintf("dev%07d", i),
			Module: ota.DefaultModule, State: ota.TaskQueued, ToVersion: "2.0", CreatedAt: t0, UpdatedAt: t0})
	}
	return out
}

func TestMigrateConcurrentReplicas(t *testing.T) {
	replicas := openReplicas(t, 4)
	ctx := context.Background()
	var wg sync.WaitGroup
	errs := make([]error, len(replicas))
	for i, s := range replicas {
		wg.Go(func() { errs[i] = s.Migrate(ctx) })
	}
	testenv.Within(t, 5*time.Minute, "every replica goroutine to finish", wg.Wait)
	for i, err := range errs {
		if err != nil {
			t.Fatalf("replica %d: %v", i, err)
		}
	}
	applied, latest, err := replicas[0].SchemaVersion(ctx)
	if err != nil || applied != latest || latest != len(migrations) {
		t.Fatalf("SchemaVersion = %d, %d, %v; want %d, %d", applied, latest, err, len(migrations), len(migrations))
	}
	var rows int
	if err := replicas[0].pool.QueryRow(ctx, `SELECT count(*) FROM schema_migrations`).Scan(&rows); err != nil {
		t.Fatal(err)
	}
	if rows != len(migrations) {
		t.Fatalf("schema_migrations has %d rows, want %d (each migration applied once)", rows, len(migrations))
	}
}

func TestSchemaVersionBeforeMigrate(t *testing.T) {
	s := openReplicas(t, 1)[0]
	applied, latest, err := s.SchemaVersion(context.Background())
	if err != nil || applied != 0 || latest != len(migrations) {
		t.Fatalf("SchemaVersion = %d, %d, %v; want 0, %d", applied, latest, err, len(migrations))
	}
}

// Two replicas materialise overlapping device sets for two jobs on the same
// module at once: every device ends with exactly one active task, and the
// inserted counts add up to the rows stored.
func TestInsertTasksConcurrentReplicasKeepOneActive(t *testing.T) {
	replicas := openReplicas(t, 3)
	ctx := context.Background()
	if err := replicas[0].Migrate(ctx); err != nil {
		t.Fatal(err)
	}
	const devices, batch = 6000, 500
	jobs := []string{"jobA", "jobB", "jobC"}
	for _, j := range jobs {
		mustJob(t, replicas[0], j)
	}
	var wg sync.WaitGroup
	inserted := make([]int64, len(jobs))
	errs := make([]error, len(jobs))
	for i, job := range jobs {
		s := replicas[i]
		wg.Go(func() {
			// Each replica walks the devices from a different start, in
			// batches, so batches overlap in different orders.
			for k := range devices / batch {
				b := (k + i*3) % (devices / batch)
				n, err := s.InsertTasks(ctx, queuedTasks(job, b*batch, (b+1)*batch))
				if err != nil {
					errs[i] = err
					return
				}
				inserted[i] += n
			}
		})
	}
	testenv.Within(t, 5*time.Minute, "every replica goroutine to finish", wg.Wait)
	for i, err := range errs {
		if err != nil {
			t.Fatalf("replica %d: %v", i, err)
		}
	}
	var rows, distinct int64
	err := replicas[0].pool.QueryRow(ctx, `SELECT count(*), count(DISTINCT (product_key, device_name, module)) FROM tasks
		WHERE state NOT IN `+terminalStates).Scan(&rows, &distinct)
	if err != nil {
		t.Fatal(err)
	}
	if rows != devices || distinct != devices {
		t.Fatalf("%d active tasks on %d distinct device modules, want %d each", rows, distinct, devices)
	}
	if sum := inserted[0] + inserted[1] + inserted[2]; sum != devices {
		t.Fatalf("InsertTasks reported %v = %d inserted, want %d", inserted, sum, devices)
	}
}

// Two replicas, each with two workers, claim one job's 10 000 tasks in
// batches: every task is claimed exactly once, each batch comes back in id
// order, and each claimed task is notified once (attempts 1).
func TestClaimTasksConcurrentReplicasNoDuplicates(t *testing.T) {
	replicas := openReplicas(t, 2)
	ctx := context.Background()
	if err := replicas[0].Migrate(ctx); err != nil {
		t.Fatal(err)
	}
	const total = 10_000
	mustJob(t, replicas[0], "job")
	if n, err := replicas[0].InsertTasks(ctx, queuedTasks("job", 0, total)); err != nil || n != total {
		t.Fatalf("InsertTasks = %d, %v", n, err)
	}

	var mu sync.Mutex
	claimed := map[int64]int{}
	var wg sync.WaitGroup
	errs := make(chan error, 4)
	for w := range 4 {
		s := replicas[w%2]
		wg.Go(func() {
			var after int64
			for {
				res, err := s.ClaimTasks(ctx, store.ClaimRequest{JobID: "job", AfterID: after, Limit: 97, Now: t0})
				got := res.Tasks
				if err != nil {
					errs <- err
					return
				}
				if len(got) == 0 {
					return
				}
				for i := range got {
					if i > 0 && got[i].ID <= got[i-1].ID {
						errs <- fmt.Errorf("claim batch not in id order: %d after %d", got[i].ID, got[i-1].ID)
						return
					}
					if got[i].State != ota.TaskNotified || got[i].Attempts != 1 || !got[i].NotifiedAt.Equal(t0) {
						errs <- fmt.Errorf("claimed task %+v: want notified, 1 attempt, notified at %v", got[i], t0)
						return
					}
				}
				mu.Lock()
				for _, task := range got {
					claimed[task.ID]++
				}
				mu.Unlock()
				after = got[len(got)-1].ID
			}
		})
	}
	testenv.Within(t, 5*time.Minute, "every replica goroutine to finish", wg.Wait)
	close(errs)
	for err := range errs {
		t.Fatal(err)
	}
	if len(claimed) != total {
		t.Fatalf("%d distinct tasks claimed, want %d", len(claimed), total)
	}
	for id, n := range claimed {
		if n != 1 {
			t.Fatalf("task %d claimed %d times", id, n)
		}
	}
	counts, err := replicas[1].CountTasks(ctx, "job")
	if err != nil || counts[ota.TaskNotified] != total || counts.Total() != total {
		t.Fatalf("CountTasks = %v, %v; want %d notified", counts, err, total)
	}
}

// Concurrent compare-and-set on one task and one job: exactly one writer wins,
// the others get CodeConflict.
func TestCompareAndSetConcurrentReplicas(t *testing.T) {
	replicas := openReplicas(t, 2)
	ctx := context.Background()
	if err := replicas[0].Migrate(ctx); err != nil {
		t.Fatal(err)
	}
	job := mustJob(t, replicas[0], "job")
	if _, err := replicas[0].InsertTasks(ctx, queuedTasks("job", 0, 1)); err != nil {
		t.Fatal(err)
	}
	tasks, _, err := replicas[0].ListTasks(ctx, store.TaskFilter{JobID: "job"}, store.Page{}, false)
	if err != nil || len(tasks) != 1 {
		t.Fatalf("ListTasks = %v, %v", tasks, err)
	}

	const writers = 8
	var wg sync.WaitGroup
	taskErrs := make([]error, writers)
	jobErrs := make([]error, writers)
	for i := range writers {
		s := replicas[i%2]
		wg.Go(func() {
			task := tasks[0]
			task.State, task.Progress, task.UpdatedAt = ota.TaskInProgress, i, t0.Add(time.Second)
			taskErrs[i] = s.UpdateTask(ctx, task, ota.TaskQueued)
			j := job
			j.State, j.StateReason = ota.JobPaused, fmt.Sprint("writer ", i)
			jobErrs[i] = s.UpdateJob(ctx, j, ota.JobRunning)
		})
	}
	testenv.Within(t, 5*time.Minute, "every replica goroutine to finish", wg.Wait)
	for name, errs := range map[string][]error{"UpdateTask": taskErrs, "UpdateJob": jobErrs} {
		wins := 0
		for _, err := range errs {
			switch ota.ErrorCode(err) {
			case "":
				wins++
			case ota.CodeConflict:
			default:
				t.Fatalf("%s: %v, want nil or CodeConflict", name, err)
			}
		}
		if wins != 1 {
			t.Fatalf("%s: %d writers won, want exactly 1 (%v)", name, wins, errs)
		}
	}
	got, err := replicas[1].GetTask(ctx, tasks[0].ID)
	if err != nil || got.State != ota.TaskInProgress || taskErrs[got.Progress] != nil {
		t.Fatalf("stored task %+v (%v) is not the winner's write", got, err)
	}
	gotJob, err := replicas[1].GetJob(ctx, "t1", "job")
	if err != nil || gotJob.State != ota.JobPaused || !strings.HasPrefix(gotJob.StateReason, "writer ") {
		t.Fatalf("stored job %+v (%v)", gotJob, err)
	}
}

// The SQL list of terminal states must be ota's, or the one-active-task index
// and UpdateTasks' conflict check would disagree with the domain.
func TestTerminalStatesMatchDomain(t *testing.T) {
	for _, st := range ota.TaskStates {
		listed := strings.Contains(terminalStates, "'"+string(st)+"'")
		if listed != st.Terminal() {
			t.Errorf("state %s: in terminalStates = %v, ota Terminal() = %v", st, listed, st.Terminal())
		}
	}
	// The migration that defined tasks_one_active last must use the list.
	last := ""
	for _, m := range migrations {
		if i := strings.Index(m.sql, "CREATE UNIQUE INDEX tasks_one_active"); i >= 0 {
			last = m.sql[i:]
		}
	}
	if !strings.Contains(last, "WHERE state NOT IN "+terminalStates) {
		t.Errorf("tasks_one_active's latest predicate does not use %s", terminalStates)
	}
}

func TestTranslateUnreachableServer(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	// Port 1 on loopback: nothing listens there, so the connect is refused.
	_, err := Open(ctx, "postgres://postgres@127.0.0.1:1/test?sslmode=disable&connect_timeout=2")
	if ota.ErrorCode(err) != ota.CodeUnavailable {
		t.Fatalf("Open on a closed port: %v, want CodeUnavailable", err)
	}
}

// TestClaimPacedReplicas: claimers on two pools (two replicas) of one schema
// never take a job past its cap or its rate together.
func TestClaimPacedReplicas(t *testing.T) {
	replicas := openReplicas(t, 2)
	if err := replicas[0].Migrate(t.Context()); err != nil {
		t.Fatal(err)
	}
	storetest.ClaimPacedReplicas(t, []store.Store{replicas[0], replicas[1]})
}

// Issue 8: a replica killed with -9 held its slot until the 30 s lease
// ended, and its sessions kept their share of the device messages meanwhile.
// On PostgreSQL the owner also holds the slot's advisory lock on its own
// session, which PostgreSQL releases the moment the process dies: a slot
// whose owner's session is gone is taken at once, lease or not; a slot whose
// owner lives is never taken before its lease ends.
func TestReplicaSlotOfDeadOwnerTakenAtOnce(t *testing.T) {
	stores := openReplicas(t, 3)
	a, b, c := stores[0], stores[1], stores[2]
	ctx := t.Context()
	ttl := 30 * time.Second
	if err := a.Migrate(ctx); err != nil {
		t.Fatal(err)
	}
	lease := func(s *Store, owner string, now time.Time) (int, error) {
		n, _, err := s.LeaseReplicaSlot(ctx, owner, "base", 2, now, now.Add(ttl))
		return n, err
	}
	if n, err := lease(a, "a", t0); err != nil || n != 0 {
		t.Fatalf("a leased %d, %v; want 0", n, err)
	}
	if n, err := lease(b, "b", t0); err != nil || n != 1 {
		t.Fatalf("b leased %d, %v; want 1", n, err)
	}
	// Both live, leases live: nothing for a third, however often it asks,
	// and nothing to drain.
	for i := 0; i < 3; i++ {
		if n, err := lease(c, "c", t0.Add(ttl-time.Millisecond)); ota.ErrorCode(err) != ota.CodeUnavailable {
			t.Fatalf("c leased %d, %v while both owners live; want unavailable", n, err)
		}
		if n, _, err := c.ClaimVacantReplicaSlot(ctx, "c", t0.Add(ttl-time.Millisecond), t0.Add(2*ttl)); err != nil || n != -1 {
			t.Fatalf("c claimed %d, %v while both owners live", n, err)
		}
	}
	// b dies (its connections close, as with kill -9; no release): its slot
	// is vacant at once, 1 ms into its 30 s lease.
	// PostgreSQL ends the dead session within moments (the server notices
	// the closed socket): within 5 s here, on a loaded machine.
	b.Close()
	start := time.Now()
	for {
		n, err := lease(c, "c", t0.Add(time.Millisecond))
		if err == nil && n == 1 {
			break
		}
		if ota.ErrorCode(err) != ota.CodeUnavailable || time.Since(start) > 5*time.Second {
			t.Fatalf("c leased %d, %v %v after b died; want b's 1 within 5 s", n, err, time.Since(start))
		}
		time.Sleep(20 * time.Millisecond)
	}
	t.Logf("dead owner's slot taken %v after its death", time.Since(start))
	// The new owner holds it as firmly: a's store does not take it, and the
	// dead owner cannot renew it.
	if n, _, err := a.ClaimVacantReplicaSlot(ctx, "a2", t0.Add(time.Second), t0.Add(ttl)); err != nil || n != -1 {
		t.Fatalf("claimed %d, %v from a live owner", n, err)
	}
	if err := c.RenewReplicaSlot(ctx, 1, "c", t0.Add(ttl)); err != nil {
		t.Fatal(err)
	}
	// a dies too: a live replica's drainer claims its slot at once.
	a.Close()
	for start := time.Now(); ; time.Sleep(20 * time.Millisecond) {
		n, _, err := c.ClaimVacantReplicaSlot(ctx, "c-drain", t0.Add(2*time.Millisecond), t0.Add(ttl))
		if err != nil {
			t.Fatal(err)
		}
		if n == 0 {
			break
		}
		if time.Since(start) > 5*time.Second {
			t.Fatalf("drainer claimed %d, %v 5 s after a died; want 0", n, err)
		}
	}
	// The drainer's lock survives c's renewals and is released with the slot.
	if err := c.ReleaseReplicaSlot(ctx, 0, "c-drain", true); err != nil {
		t.Fatal(err)
	}
	if n, err := lease(c, "c2", t0.Add(3*time.Millisecond)); err != nil || n != 0 {
		t.Fatalf("leased %d, %v; want the dropped 0", n, err)
	}
}
