package postgres

import (
	"context"
	"fmt"
	"sync"
	"testing"

	"github.com/updraft-ota/updraft/internal/ota"
	"github.com/updraft-ota/updraft/internal/store"
)

// Run with: go test -run '^$' -bench . -benchtime 1x ./internal/store/postgres/
// (one iteration = one 1M-task job; anchors in research/perf-baselines.md:
// COPY of 1M rows 1.9 s, keyset claim of 1M in batches of 300: 7.7 s with one
// worker, 5.4 s with two).

const (
	benchTasks       = 1_000_000
	benchInsertBatch = 5_000
	benchClaimBatch  = 500
)

// insertJob creates job id and inserts benchTasks tasks for it in batches
// through insert, on product prod.
func insertJob(b *testing.B, s *Store, id, prod string, insert func([]ota.Task) (int64, error)) (inserted int64) {
	b.Helper()
	mustJob(b, s, id)
	tasks := queuedTasks(id, 0, benchTasks)
	for i := range tasks {
		tasks[i].ProductKey = prod
	}
	for start := 0; start < len(tasks); start += benchInsertBatch {
		n, err := insert(tasks[start:min(start+benchInsertBatch, len(tasks))])
		if err != nil {
			b.Fatal(err)
		}
		inserted += n
	}
	return inserted
}

// BenchmarkInsertTasks1M inserts a 1M-task job in batches of 5 000:
// InsertTasks as it is (COPY straight into tasks), the staging path alone
// (COPY into a temporary table, INSERT … ON CONFLICT DO NOTHING), and a
// second job over the same devices, where every row conflicts (COPY fails,
// staging skips all).
func BenchmarkInsertTasks1M(b *testing.B) {
	ctx := context.Background()
	staged := func(s *Store) func([]ota.Task) (int64, error) {
		return func(tasks []ota.Task) (int64, error) {
			order := make([]int, len(tasks))
			for i := range order {
				order[i] = i
			}
			return s.insertTasksOnce(ctx, &taskBatch{tasks: tasks, order: order}, false)
		}
	}
	for _, path := range []string{"copy", "staged", "all-conflict"} {
		b.Run(path, func(b *testing.B) {
			s := OpenTestStore(b)
			i := 0
			for ; b.Loop(); i++ {
				id, prod := fmt.Sprint("job", i), fmt.Sprint("prod", i)
				want := int64(benchTasks)
				insert := func(tasks []ota.Task) (int64, error) { return s.InsertTasks(ctx, tasks) }
				switch path {
				case "staged":
					insert = staged(s)
				case "all-conflict":
					b.StopTimer()
					insertJob(b, s, "first-"+id, prod, insert)
					b.StartTimer()
					want = 0
				}
				if n := insertJob(b, s, id, prod, insert); n != want {
					b.Fatalf("inserted %d tasks, want %d", n, want)
				}
			}
			b.ReportMetric(float64(benchTasks*i)/b.Elapsed().Seconds(), "tasks/s")
		})
	}
}

func BenchmarkClaim1M(b *testing.B) {
	for _, workers := range []int{1, 2} {
		b.Run(fmt.Sprintf("workers=%d", workers), func(b *testing.B) {
			s := OpenTestStore(b)
			ctx := context.Background()
			i := 0
			for ; b.Loop(); i++ {
				b.StopTimer()
				id := fmt.Sprint("job", i)
				insertJob(b, s, id, "prod-"+id, func(tasks []ota.Task) (int64, error) { return s.InsertTasks(ctx, tasks) })
				if _, err := s.pool.Exec(ctx, "VACUUM ANALYZE tasks"); err != nil {
					b.Fatal(err)
				}
				b.StartTimer()

				var wg sync.WaitGroup
				claimed := make([]int, workers)
				for w := range workers {
					wg.Go(func() {
						// Each worker keeps its own keyset cursor, as each
						// replica's engine does.
						var after int64
						for {
							res, err := s.ClaimTasks(ctx, store.ClaimRequest{JobID: id, AfterID: after, Limit: benchClaimBatch, Now: t0})
							got := res.Tasks
							if err != nil {
								b.Error(err)
								return
							}
							if len(got) == 0 {
								return
							}
							claimed[w] += len(got)
							after = got[len(got)-1].ID
						}
					})
				}
				wg.Wait()
				if sum := claimedSum(claimed); sum != benchTasks {
					b.Fatalf("claimed %d tasks, want %d", sum, benchTasks)
				}
			}
			b.ReportMetric(float64(benchTasks*i)/b.Elapsed().Seconds(), "tasks/s")
		})
	}
}

func claimedSum(v []int) int {
	n := 0
	for _, x := range v {
		n += x
	}
	return n
}
