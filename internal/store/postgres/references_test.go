package postgres

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/updraft-ota/updraft/internal/ota"
	"github.com/updraft-ota/updraft/internal/store"
)

// Rows that refer to a missing product or job are refused with CodeNotFound,
// as the SQLite backend's foreign keys do (the suite does not pin this down).
func TestMissingReferences(t *testing.T) {
	s := OpenTestStore(t)
	ctx := context.Background()
	err := s.CreateDevice(ctx, ota.Device{TenantID: "t1", ProductKey: "nope", Name: "d"})
	if ota.ErrorCode(err) != ota.CodeNotFound || !strings.Contains(ota.ErrorMessage(err), "nope") {
		t.Fatalf("CreateDevice of a missing product: %v, want CodeNotFound naming it", err)
	}
	err = s.CreateModule(ctx, ota.Module{TenantID: "t1", ProductKey: "nope", Name: "mcu"})
	if ota.ErrorCode(err) != ota.CodeNotFound {
		t.Fatalf("CreateModule of a missing product: %v, want CodeNotFound", err)
	}
	mustJob(t, s, "job")
	batch := append(queuedTasks("job", 0, 3), queuedTasks("ghost", 3, 4)...)
	n, err := s.InsertTasks(ctx, batch)
	if ota.ErrorCode(err) != ota.CodeNotFound || !strings.Contains(ota.ErrorMessage(err), "ghost") || n != 0 {
		t.Fatalf("InsertTasks with a missing job = %d, %v; want 0, CodeNotFound naming it", n, err)
	}
	if list, _, err := s.ListTasks(ctx, store.TaskFilter{}, store.Page{}, false); err != nil || len(list) != 0 {
		t.Fatalf("after the refused batch the store holds %v, %v; want nothing", list, err)
	}
}

// A device's active task is looked up through tasks_one_active, not by
// scanning its job (there is no other index on the device).
func TestActiveTaskLookupUsesIndex(t *testing.T) {
	s := OpenTestStore(t)
	ctx := context.Background()
	mustJob(t, s, "job")
	if _, err := s.InsertTasks(ctx, queuedTasks("job", 0, 20_000)); err != nil {
		t.Fatal(err)
	}
	if _, err := s.pool.Exec(ctx, "ANALYZE tasks"); err != nil {
		t.Fatal(err)
	}
	f := store.TaskFilter{ProductKey: "prod", Module: ota.DefaultModule, Devices: []string{"dev0000042"},
		States: []ota.TaskState{ota.TaskQueued, ota.TaskNotified, ota.TaskInProgress}}
	w := taskWhere(f)
	plan := genericPlan(t, s, "SELECT "+taskColumns+" FROM tasks"+w.String()+" ORDER BY id LIMIT 100", w.args...)
	if !strings.Contains(plan, "tasks_one_active") {
		t.Fatalf("active-task lookup does not use tasks_one_active:\n%s", plan)
	}
	list, _, err := s.ListTasks(ctx, f, store.Page{}, false)
	if err != nil || len(list) != 1 || list[0].DeviceName != "dev0000042" {
		t.Fatalf("ListTasks = %v, %v; want dev0000042's task", list, err)
	}
}

// A claim walks its own job's queued tasks in the job index when the job is a
// small one among big ones (a walk of the primary key from afterID would read
// every later job's tasks), and updates them through the primary key.
func TestClaimUsesJobIndex(t *testing.T) {
	s := OpenTestStore(t)
	ctx := context.Background()
	mustJob(t, s, "small")
	mustJob(t, s, "big")
	if _, err := s.InsertTasks(ctx, queuedTasks("small", 0, 10)); err != nil {
		t.Fatal(err)
	}
	if _, err := s.InsertTasks(ctx, queuedTasks("big", 10, 20_000)); err != nil {
		t.Fatal(err)
	}
	if _, err := s.pool.Exec(ctx, "ANALYZE tasks"); err != nil {
		t.Fatal(err)
	}
	// The store's sessions plan for the parameters (see Open); EXPLAIN with
	// bound parameters does too.
	var mode string
	if err := s.pool.QueryRow(ctx, "SHOW plan_cache_mode").Scan(&mode); err != nil || mode != "force_custom_plan" {
		t.Fatalf("plan_cache_mode = %q, %v; want force_custom_plan", mode, err)
	}
	rows, err := s.pool.Query(ctx, "EXPLAIN "+claimSQL, "small", int64(0), 500, ts(t0))
	if err != nil {
		t.Fatal(err)
	}
	lines, err := pgx.CollectRows(rows, pgx.RowTo[string])
	if err != nil {
		t.Fatal(err)
	}
	plan := strings.Join(lines, "\n")
	if !strings.Contains(plan, "tasks_job_state_id") || strings.Contains(plan, "Seq Scan") {
		t.Fatalf("claim does not go through tasks_job_state_id and the primary key:\n%s", plan)
	}
}

// genericPlan returns the plan PostgreSQL makes for sql once it caches a
// generic plan, as it does for a statement run often: the planner cannot
// look at the parameter values then. (EXPLAIN with bound parameters would
// plan for their values, so the statement is PREPAREd in SQL and EXPLAINed
// with the arguments as literals.)
func genericPlan(t *testing.T, s *Store, sql string, args ...any) string {
	t.Helper()
	ctx := context.Background()
	conn, err := s.pool.Acquire(ctx)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Release()
	for _, q := range []string{"SET plan_cache_mode = force_generic_plan", "PREPARE plan_probe AS " + sql} {
		if _, err := conn.Exec(ctx, q); err != nil {
			t.Fatalf("%s: %v", q, err)
		}
	}
	defer conn.Exec(ctx, "DEALLOCATE plan_probe; RESET plan_cache_mode")
	var literals []string
	for _, a := range args {
		switch v := a.(type) {
		case string:
			literals = append(literals, "'"+v+"'")
		case []string:
			literals = append(literals, "'{"+strings.Join(v, ",")+"}'")
		case int, int64:
			literals = append(literals, fmt.Sprint(v))
		case time.Time:
			literals = append(literals, "'"+v.Format(time.RFC3339Nano)+"'")
		default:
			t.Fatalf("no SQL literal for %T", a)
		}
	}
	rows, err := conn.Query(ctx, "EXPLAIN EXECUTE plan_probe("+strings.Join(literals, ", ")+")")
	if err != nil {
		t.Fatal(err)
	}
	lines, err := pgx.CollectRows(rows, pgx.RowTo[string])
	if err != nil {
		t.Fatal(err)
	}
	return strings.Join(lines, "\n")
}
