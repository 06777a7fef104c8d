package main

// The floor of P5: what the tools a rollout stands on cost for the same
// work with nothing of Updraft in between, measured in the same run right
// after the rollout, so that P5 can be read as a ratio as well as against
// its absolute target.
//
//   - download: nginx (sendfile on, access log off) serving the same package
//     to the same number of devices over the same number of keep-alive
//     connections: its master's and workers' CPU per download.
//   - broker: Mosquitto carrying a rollout's messages per device (a QoS 1
//     notice from a server client to the device, and the device's three
//     QoS 1 reports back to that client: progress 0, progress 100, the new
//     version) between the same number of connected devices: its CPU per
//     device. It counts only when the rollout ran on the embedded broker; on
//     an external broker neither side carries the broker's CPU.
//   - database: SQLite through the same driver and settings (WAL,
//     synchronous NORMAL), with the least a rollout's writes must touch: a
//     tasks table indexed for per-state counts and one active task per
//     device, device versions indexed for targeting by version, and a
//     device's last sighting. Per device, three reports: start (notified →
//     in progress), progress 100, and the version report (device seen,
//     version recorded, task succeeded). Measured twice: one transaction
//     per report (a server that acknowledges each report once it is
//     committed, when reports seldom arrive together), and 48 reports per
//     transaction (what grouping commits can reach at best). The bench's own
//     CPU for each phase, the simulator stopped. The floor counts the
//     grouped figure: it is the lower bound.
//
// Updraft does more than this per device (signed download links, the
// engine's claims and notices, presence, the API's reads); the floor is a
// lower bound, not a target.

import (
	"context"
	"crypto/rand"
	"database/sql"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"runtime"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	_ "modernc.org/sqlite"

	"github.com/updraft-ota/updraft/bench/internal/benchkit"
	"github.com/updraft-ota/updraft/sdk/device/wire"
)

// floor is CPU seconds per device of each tool.
type floor struct {
	download, broker float64
	// database is the grouped figure; databaseAlone one transaction per
	// report.
	database, databaseAlone float64
}

// groupedReports is the reports per transaction of the grouped database floor.
const groupedReports = 48

func measureFloor(ctx context.Context, count, size, conns int, nginxBin, mosqBin string) (floor, error) {
	var f floor
	work, err := os.MkdirTemp("", "updraft-floor-")
	if err != nil {
		return f, err
	}
	defer os.RemoveAll(work)
	// nginx's workers drop root to its default user: let them in.
	if err := os.Chmod(work, 0o755); err != nil {
		return f, err
	}
	if f.download, err = downloadFloor(work, count, size, conns, nginxBin); err != nil {
		return f, fmt.Errorf("download floor: %w", err)
	}
	if f.broker, err = brokerFloor(work, count, mosqBin); err != nil {
		return f, fmt.Errorf("broker floor: %w", err)
	}
	if f.databaseAlone, err = databaseFloor(ctx, filepath.Join(work, "alone.db"), count, 1); err != nil {
		return f, fmt.Errorf("database floor: %w", err)
	}
	if f.database, err = databaseFloor(ctx, filepath.Join(work, "grouped.db"), count, groupedReports); err != nil {
		return f, fmt.Errorf("database floor: %w", err)
	}
	return f, nil
}

func downloadFloor(work string, count, size, conns int, nginxBin string) (float64, error) {
	root := filepath.Join(work, "www")
	if err := os.Mkdir(root, 0o755); err != nil {
		return 0, err
	}
	content := make([]byte, size)
	_, _ = rand.Read(content)
	if err := os.WriteFile(filepath.Join(root, "fw.bin"), content, 0o644); err != nil {
		return 0, err
	}
	ng, err := benchkit.StartNginx(nginxBin, work, root)
	if err != nil {
		return 0, err
	}
	defer ng.Stop()
	url := "http://" + ng.Addr + "/fw.bin"
	hc := &http.Client{Transport: &http.Transport{MaxConnsPerHost: conns, MaxIdleConnsPerHost: conns, DisableCompression: true}}
	defer hc.CloseIdleConnections()
	c0, err := benchkit.TreeCPUSeconds(ng.Pid())
	if err != nil {
		return 0, err
	}
	var next atomic.Int64
	errs := make(chan error, conns)
	var wg sync.WaitGroup
	for range conns {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for next.Add(1) <= int64(count) {
				if err := get(hc, url, size); err != nil {
					errs <- err
					return
				}
			}
		}()
	}
	wg.Wait()
	c1, _ := benchkit.TreeCPUSeconds(ng.Pid())
	close(errs)
	if err := <-errs; err != nil {
		return 0, err
	}
	return (c1 - c0) / float64(count), nil
}

func get(hc *http.Client, url string, size int) error {
	resp, err := hc.Get(url)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	n, err := io.Copy(io.Discard, resp.Body)
	if err != nil {
		return err
	}
	if resp.StatusCode != http.StatusOK || n != int64(size) {
		return fmt.Errorf("GET %s: %s, %d of %d bytes", url, resp.Status, n, size)
	}
	return nil
}

func brokerFloor(work string, count int, mosqBin string) (float64, error) {
	// The rollout's tuning for a private Mosquitto: nothing dropped while a
	// consumer catches up.
	m, err := benchkit.StartMosquitto(mosqBin, work, "max_queued_messages 0", "max_inflight_messages 100")
	if err != nil {
		return 0, err
	}
	defer m.Stop()
	const product = "floor"
	fleet := benchkit.Fleet{Product: product, Count: count}
	var devices []*benchkit.MQTTConn
	ready := make(chan struct{})
	progress := func(step int, desc string) []byte {
		return []byte(`{"task_id":` + strconv.Itoa(1_000_000+step) + `,"module":"default","step":` + strconv.Itoa(step) + `,"desc":"` + desc + `"}`)
	}
	start, installing := progress(0, "downloading"), progress(100, "installing")
	version := []byte(`{"module":"default","version":"2.0"}`)
	devices, err = fleet.ConnectAll(m.Addr, benchkit.ConnectOptions{Anonymous: true, OnNotice: func(i int) {
		<-ready
		d := devices[i]
		name := fleet.Name(i)
		_ = d.Publish(wire.Topic(product, name, wire.TopicProgress), 1, start)
		_ = d.Publish(wire.Topic(product, name, wire.TopicProgress), 1, installing)
		_ = d.Publish(wire.Topic(product, name, wire.TopicVersion), 1, version)
	}})
	if err != nil {
		return 0, err
	}
	close(ready)
	defer benchkit.CloseAll(devices)

	server, err := benchkit.DialMQTT(m.Addr, "floor-server", "", "")
	if err != nil {
		return 0, err
	}
	defer server.Close()
	for _, suffix := range []string{wire.TopicProgress, wire.TopicVersion} {
		if err := server.Subscribe(wire.Topic(product, "+", suffix), 1); err != nil {
			return 0, err
		}
	}
	var reports, acks atomic.Int64
	done := make(chan struct{})
	var once sync.Once
	check := func() {
		if reports.Load() >= 3*int64(count) && acks.Load() >= int64(count) {
			once.Do(func() { close(done) })
		}
	}
	go func() {
		_ = server.Listen(func(string, []byte) { reports.Add(1); check() }, func() { acks.Add(1); check() })
	}()
	c0, err := benchkit.CPUSeconds(m.Cmd.Process.Pid)
	if err != nil {
		return 0, err
	}
	for i := range count {
		name := fleet.Name(i)
		// The size of a native notice: task, module, version, size,
		// digest and a signed download link.
		notice := []byte(`{"task_id":` + strconv.Itoa(1_000_000+i) + `,"module":"default","version":"2.0","size":1048576,` +
			`"sha256":"9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08",` +
			`"url":"http://127.0.0.1:8080/blob/v1/packages/pkg-000001/fw.bin?expires=1765000000&sig=0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef"}`)
		if err := server.Publish(wire.Topic(product, name, wire.TopicNotice), 1, notice); err != nil {
			return 0, err
		}
	}
	select {
	case <-done:
	case <-time.After(2 * time.Minute):
		return 0, fmt.Errorf("after 2 minutes the server client has %d of %d reports and %d of %d acknowledgements", reports.Load(), 3*count, acks.Load(), count)
	}
	c1, _ := benchkit.CPUSeconds(m.Cmd.Process.Pid)
	return (c1 - c0) / float64(count), nil
}

// floorSchema is the least a rollout's writes must touch (see the top of
// this file).
const floorSchema = `
CREATE TABLE devices (product_key TEXT NOT NULL, name TEXT NOT NULL, last_seen INTEGER, PRIMARY KEY (product_key, name));
CREATE TABLE device_versions (product_key TEXT NOT NULL, device_name TEXT NOT NULL, module TEXT NOT NULL,
	version TEXT NOT NULL, reported_at INTEGER, PRIMARY KEY (product_key, device_name, module));
CREATE INDEX device_versions_module_version ON device_versions (product_key, module, version);
CREATE TABLE tasks (id INTEGER PRIMARY KEY, job_id INTEGER NOT NULL, product_key TEXT NOT NULL, device_name TEXT NOT NULL,
	module TEXT NOT NULL, state TEXT NOT NULL, progress INTEGER NOT NULL DEFAULT 0, updated_at INTEGER);
CREATE UNIQUE INDEX tasks_one_active ON tasks (product_key, device_name, module) WHERE state IN ('queued', 'notified', 'in_progress');
CREATE INDEX tasks_job_state ON tasks (job_id, state, id);
`

// databaseFloor applies count devices' three reports, perTx reports per
// transaction, and returns the CPU seconds per device.
func databaseFloor(ctx context.Context, path string, count, perTx int) (float64, error) {
	db, err := sql.Open("sqlite", path+"?_txlock=immediate&_pragma=journal_mode(WAL)&_pragma=synchronous(NORMAL)")
	if err != nil {
		return 0, err
	}
	defer db.Close()
	db.SetMaxOpenConns(1)
	if _, err := db.ExecContext(ctx, floorSchema); err != nil {
		return 0, err
	}
	name := func(i int) string { return fmt.Sprintf("sim-%06d", i) }
	err = inTx(ctx, db, func(tx *sql.Tx) error {
		for i := range count {
			if _, err := tx.ExecContext(ctx, `INSERT INTO devices VALUES ('bench', ?, 0)`, name(i)); err != nil {
				return err
			}
			if _, err := tx.ExecContext(ctx, `INSERT INTO device_versions VALUES ('bench', ?, 'default', '1.0', 0)`, name(i)); err != nil {
				return err
			}
			if _, err := tx.ExecContext(ctx, `INSERT INTO tasks (id, job_id, product_key, device_name, module, state)
				VALUES (?, 1, 'bench', ?, 'default', 'notified')`, i+1, name(i)); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		return 0, err
	}
	stmt := func(q string) *sql.Stmt {
		if err != nil {
			return nil
		}
		var s *sql.Stmt
		s, err = db.PrepareContext(ctx, q)
		return s
	}
	started := stmt(`UPDATE tasks SET state = 'in_progress', progress = 0, updated_at = ? WHERE id = ? AND state = 'notified'`)
	progressed := stmt(`UPDATE tasks SET progress = ?, updated_at = ? WHERE id = ? AND state = 'in_progress'`)
	seen := stmt(`UPDATE devices SET last_seen = ? WHERE product_key = 'bench' AND name = ?`)
	versioned := stmt(`INSERT INTO device_versions VALUES ('bench', ?, 'default', ?, ?)
		ON CONFLICT (product_key, device_name, module) DO UPDATE SET version = excluded.version, reported_at = excluded.reported_at`)
	succeeded := stmt(`UPDATE tasks SET state = 'succeeded', progress = 100, updated_at = ? WHERE id = ? AND state = 'in_progress'`)
	if err != nil {
		return 0, err
	}
	reports := []func(tx *sql.Tx, id int, dev string, now int64) error{
		func(tx *sql.Tx, id int, _ string, now int64) error {
			return one(tx.Stmt(started).ExecContext(ctx, now, id))
		},
		func(tx *sql.Tx, id int, _ string, now int64) error {
			return one(tx.Stmt(progressed).ExecContext(ctx, 100, now, id))
		},
		func(tx *sql.Tx, id int, dev string, now int64) error {
			if err := one(tx.Stmt(seen).ExecContext(ctx, now, dev)); err != nil {
				return err
			}
			if _, err := tx.Stmt(versioned).ExecContext(ctx, dev, "2.0", now); err != nil {
				return err
			}
			return one(tx.Stmt(succeeded).ExecContext(ctx, now, id))
		},
	}
	runtime.GC()
	c0, err := benchkit.CPUSeconds(os.Getpid())
	if err != nil {
		return 0, err
	}
	var tx *sql.Tx
	pending := 0
	for i := range count {
		id, dev, now := i+1, name(i), time.Now().UnixMicro()
		for _, report := range reports {
			if tx == nil {
				if tx, err = db.BeginTx(ctx, nil); err != nil {
					return 0, err
				}
			}
			if err := report(tx, id, dev, now); err != nil {
				_ = tx.Rollback()
				return 0, fmt.Errorf("device %d: %w", i, err)
			}
			if pending++; pending == perTx {
				if err := tx.Commit(); err != nil {
					return 0, err
				}
				tx, pending = nil, 0
			}
		}
	}
	if tx != nil {
		if err := tx.Commit(); err != nil {
			return 0, err
		}
	}
	c1, err := benchkit.CPUSeconds(os.Getpid())
	return (c1 - c0) / float64(count), err
}

func inTx(ctx context.Context, db *sql.DB, fn func(tx *sql.Tx) error) error {
	tx, err := db.BeginTx(ctx, nil)
	if err != nil {
		return err
	}
	if err := fn(tx); err != nil {
		_ = tx.Rollback()
		return err
	}
	return tx.Commit()
}

// one checks that a statement changed exactly one row.
func one(res sql.Result, err error) error {
	if err != nil {
		return err
	}
	if n, err := res.RowsAffected(); err != nil || n != 1 {
		return errors.Join(err, fmt.Errorf("%d rows changed, want 1", n))
	}
	return nil
}
