package sqlite

import (
	"context"
	"fmt"
	"path/filepath"
	"runtime"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/updraft-ota/updraft/internal/ota"
	"github.com/updraft-ota/updraft/internal/store"
)

// Run: go test -run '^$' -bench . -benchtime 1x ./internal/store/sqlite/

const (
	benchTasks = 1_000_000
	benchBatch = 5_000 // InsertTasks batch, as the engine materializes
	benchClaim = 300   // ClaimTasks batch
)

var benchBase = time.Date(2026, 3, 14, 0, 0, 0, 0, time.UTC)

// benchStore opens a migrated store on a fresh file with one job.
func benchStore(b *testing.B) (*Store, ota.Job) {
	b.Helper()
	s, err := Open(b.Context(), filepath.Join(b.TempDir(), "bench.db"))
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { s.Close() })
	if err := s.Migrate(b.Context()); err != nil {
		b.Fatal(err)
	}
	j := ota.Job{ID: ota.NewID(benchBase), TenantID: "bench", PackageID: "pkg", ProductKey: "pk", Module: ota.DefaultModule,
		Name: "bench", Type: ota.JobUpgrade, Selection: ota.SelectStatic, Target: ota.Target{All: true},
		MaxConcurrency: 1000, TimeoutSeconds: 3600, Overwrite: ota.OverwriteKeep, State: ota.JobRunning,
		CreatedAt: benchBase, UpdatedAt: benchBase}
	if err := s.CreateJob(b.Context(), j); err != nil {
		b.Fatal(err)
	}
	return s, j
}

// insertBench inserts n queued tasks of j in batches, one device each.
func insertBench(b *testing.B, s *Store, j ota.Job, n int) {
	b.Helper()
	batch := make([]ota.Task, 0, benchBatch)
	for start := 0; start < n; start += benchBatch {
		batch = batch[:0]
		for i := start; i < min(start+benchBatch, n); i++ {
			batch = append(batch, ota.Task{JobID: j.ID, TenantID: j.TenantID, ProductKey: j.ProductKey,
				DeviceName: fmt.Sprintf("device-%07d", i), Module: j.Module, State: ota.TaskQueued,
				FromVersion: "1.0.0", ToVersion: "2.0.0", CreatedAt: benchBase, UpdatedAt: benchBase})
		}
		got, err := s.InsertTasks(b.Context(), batch)
		if err != nil {
			b.Fatal(err)
		}
		if got != int64(len(batch)) {
			b.Fatalf("inserted %d of %d", got, len(batch))
		}
	}
}

// BenchmarkInsertTasks1M: 1 000 000 tasks in batches of 5 000, with every
// index of the tasks table in place.
func BenchmarkInsertTasks1M(b *testing.B) {
	for range b.N {
		b.StopTimer()
		s, j := benchStore(b)
		b.StartTimer()
		start := time.Now()
		insertBench(b, s, j, benchTasks)
		b.ReportMetric(float64(benchTasks)/time.Since(start).Seconds(), "tasks/s")
	}
}

// BenchmarkClaim: claim 1 000 000 queued tasks in batches of 300 with a
// per-worker keyset cursor, with 1 and 2 workers.
func BenchmarkClaim(b *testing.B) {
	for _, workers := range []int{1, 2} {
		b.Run(fmt.Sprintf("workers=%d", workers), func(b *testing.B) {
			for range b.N {
				b.StopTimer()
				s, j := benchStore(b)
				insertBench(b, s, j, benchTasks)
				b.StartTimer()
				start := time.Now()
				var wg sync.WaitGroup
				claimed := make([]int, workers)
				for w := range workers {
					wg.Go(func() {
						var last int64
						for {
							res, err := s.ClaimTasks(b.Context(), store.ClaimRequest{JobID: j.ID, AfterID: last, Limit: benchClaim, Now: benchBase.Add(time.Minute)})
							ts := res.Tasks
							if err != nil {
								b.Error(err)
								return
							}
							if len(ts) == 0 {
								return
							}
							claimed[w] += len(ts)
							last = ts[len(ts)-1].ID
						}
					})
				}
				wg.Wait()
				elapsed := time.Since(start)
				total := 0
				for _, n := range claimed {
					total += n
				}
				if total != benchTasks {
					b.Fatalf("claimed %d tasks, want %d", total, benchTasks)
				}
				b.ReportMetric(float64(benchTasks)/elapsed.Seconds(), "tasks/s")
			}
		})
	}
}

// BenchmarkTaskReport: the store's path of a device's first progress
// report (ModifyTask: read the task, write the columns that changed, under a
// cancellable context as every caller's is; here only the progress changes,
// so a task can be written again and again), one writer at a time and from
// 32 at once (the broker's executors).
//
//	go test -run '^$' -bench TaskReport -count 6 ./internal/store/sqlite/
func BenchmarkTaskReport(b *testing.B) {
	const devices = 1000
	s, j := benchStore(b)
	insertBench(b, s, j, devices)
	ts, _, err := s.ListTasks(b.Context(), store.TaskFilter{JobID: j.ID}, store.Page{Limit: devices}, false)
	if err != nil || len(ts) != devices {
		b.Fatalf("%d tasks, %v", len(ts), err)
	}
	ctx, cancel := context.WithCancel(b.Context())
	defer cancel()
	var n atomic.Int64
	report := func(b *testing.B) {
		i := n.Add(1)
		_, err := s.ModifyTask(ctx, ts[i%devices].ID, func(t *ota.Task) error {
			t.Progress = int(i % 100)
			t.UpdatedAt = benchBase.Add(time.Duration(i) * time.Microsecond)
			return nil
		})
		if err != nil {
			b.Error(err)
		}
	}
	b.Run("writers=1", func(b *testing.B) {
		for b.Loop() {
			report(b)
		}
	})
	b.Run("writers=32", func(b *testing.B) {
		b.SetParallelism(max(1, 32/runtime.GOMAXPROCS(0))) // goroutines = parallelism × GOMAXPROCS
		b.RunParallel(func(pb *testing.PB) {
			for pb.Next() {
				report(b)
			}
		})
	})
}
