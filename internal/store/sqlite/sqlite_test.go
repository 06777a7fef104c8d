package sqlite

import (
	"fmt"
	"os"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/updraft-ota/updraft/internal/ota"
	"github.com/updraft-ota/updraft/internal/store"
	"github.com/updraft-ota/updraft/internal/store/secrets"
	"github.com/updraft-ota/updraft/internal/store/storetest"
	"github.com/updraft-ota/updraft/internal/testenv"
)

// openTest opens a migrated store on a fresh file in tb's temp dir.
func openTest(tb testing.TB) *Store {
	tb.Helper()
	box, err := secrets.New(storetest.TestKey)
	if err != nil {
		tb.Fatal(err)
	}
	// Sealed, as a server opens it: the contract suite's round trips then
	// cover the sealing of every secret.
	s, err := Open(tb.Context(), filepath.Join(tb.TempDir(), "updraft.db"), store.Options{Secrets: box})
	if err != nil {
		tb.Fatalf("Open: %v", err)
	}
	tb.Cleanup(func() { s.Close() })
	if err := s.Migrate(tb.Context()); err != nil {
		tb.Fatalf("Migrate: %v", err)
	}
	return s
}

func TestSQLite(t *testing.T) {
	storetest.Run(t, func(t *testing.T) store.Store { return openTest(t) })
}

// TestSQLiteMemory runs the suite on :memory: (one connection for
// everything), which tests of other packages may use.
func TestSQLiteMemory(t *testing.T) {
	storetest.Run(t, func(t *testing.T) store.Store {
		s, err := Open(t.Context(), ":memory:")
		if err != nil {
			t.Fatalf("Open: %v", err)
		}
		t.Cleanup(func() { s.Close() })
		if err := s.Migrate(t.Context()); err != nil {
			t.Fatalf("Migrate: %v", err)
		}
		return s
	})
}

func TestOpenConfiguresConnections(t *testing.T) {
	s := openTest(t)
	read := func(db string, name string) string {
		t.Helper()
		pool := s.write
		if db == "read" {
			pool = s.read
		}
		var v string
		if err := pool.QueryRowContext(t.Context(), "PRAGMA "+name).Scan(&v); err != nil {
			t.Fatalf("PRAGMA %s on %s: %v", name, db, err)
		}
		return v
	}
	for _, c := range []struct{ pool, pragma, want string }{
		{"write", "journal_mode", "wal"},
		{"write", "foreign_keys", "1"},
		{"write", "synchronous", "1"}, // NORMAL
		{"write", "busy_timeout", fmt.Sprint(busyTimeout.Milliseconds())},
		{"read", "journal_mode", "wal"},
		{"read", "foreign_keys", "1"},
		{"read", "query_only", "1"},
		{"read", "busy_timeout", fmt.Sprint(busyTimeout.Milliseconds())},
	} {
		if got := read(c.pool, c.pragma); got != c.want {
			t.Errorf("%s pool: PRAGMA %s = %s, want %s", c.pool, c.pragma, got, c.want)
		}
	}
	if n := s.write.Stats().MaxOpenConnections; n != 1 {
		t.Errorf("writer pool allows %d connections, want 1", n)
	}
	if _, err := s.read.ExecContext(t.Context(), "INSERT INTO tenants (id, name) VALUES ('x', 'x')"); err == nil {
		t.Errorf("the read pool accepted a write")
	}
}

func TestOpenCreatesDirectory(t *testing.T) {
	path := filepath.Join(t.TempDir(), "nested", "dir", "updraft.db")
	s, err := Open(t.Context(), path)
	if err != nil {
		t.Fatalf("Open in a missing directory: %v", err)
	}
	defer s.Close()
	if err := s.Migrate(t.Context()); err != nil {
		t.Fatalf("Migrate: %v", err)
	}
}

// TestConcurrentUse hammers one store from many goroutines mixing writes and
// reads: the single writer connection must queue them, never SQLITE_BUSY.
func TestConcurrentUse(t *testing.T) {
	s := openTest(t)
	ctx := t.Context()
	base := time.Date(2026, 3, 14, 9, 0, 0, 0, time.UTC)
	if err := s.CreateProduct(ctx, ota.Product{TenantID: "t", Key: "pk", Name: "p", CreatedAt: base}); err != nil {
		t.Fatal(err)
	}
	const workers, ops = 16, 40
	errs := make(chan error, workers*ops)
	var wg sync.WaitGroup
	for w := range workers {
		wg.Go(func() {
			for i := range ops {
				name := fmt.Sprintf("w%02d-d%03d", w, i)
				at := base.Add(time.Duration(i) * time.Second)
				if err := s.CreateDevice(ctx, ota.Device{TenantID: "t", ProductKey: "pk", Name: name, Secret: "s", CreatedAt: at}); err != nil {
					errs <- fmt.Errorf("CreateDevice %s: %w", name, err)
					continue
				}
				if err := s.SetDeviceVersion(ctx, "pk", name, ota.DefaultModule, "1.0", at); err != nil {
					errs <- fmt.Errorf("SetDeviceVersion %s: %w", name, err)
				}
				if _, err := s.SetDeviceOnline(ctx, "pk", name, true, at, 0); err != nil {
					errs <- fmt.Errorf("SetDeviceOnline %s: %w", name, err)
				}
				if _, err := s.GetDevice(ctx, "pk", name); err != nil {
					errs <- fmt.Errorf("GetDevice %s: %w", name, err)
				}
				if _, _, err := s.ListDevices(ctx, store.DeviceFilter{ProductKey: "pk", Limit: 10}, store.Page{}, true); err != nil {
					errs <- fmt.Errorf("ListDevices: %w", err)
				}
			}
		})
	}
	testenv.Within(t, 5*time.Minute, "every concurrent store caller to finish", wg.Wait)
	close(errs)
	for err := range errs {
		t.Error(err)
	}
	_, total, err := s.ListDevices(ctx, store.DeviceFilter{ProductKey: "pk", Module: ota.DefaultModule, Versions: []string{"1.0"}}, store.Page{}, true)
	if err != nil || total != workers*ops {
		t.Fatalf("devices on 1.0 = %d, %v; want %d", total, err, workers*ops)
	}
}

// TestMigrateConcurrently: two stores on one file (two processes) migrating
// at once apply each migration once and both succeed.
func TestMigrateConcurrently(t *testing.T) {
	path := filepath.Join(t.TempDir(), "updraft.db")
	var stores [3]*Store
	for i := range stores {
		s, err := Open(t.Context(), path)
		if err != nil {
			t.Fatalf("Open %d: %v", i, err)
		}
		defer s.Close()
		stores[i] = s
	}
	var wg sync.WaitGroup
	errs := make([]error, len(stores))
	for i, s := range stores {
		wg.Go(func() { errs[i] = s.Migrate(t.Context()) })
	}
	testenv.Within(t, 5*time.Minute, "every concurrent store caller to finish", wg.Wait)
	for i, err := range errs {
		if err != nil {
			t.Fatalf("Migrate in store %d: %v", i, err)
		}
	}
	applied, latest, err := stores[0].SchemaVersion(t.Context())
	if err != nil || applied != latest || latest < 1 {
		t.Fatalf("SchemaVersion = %d, %d, %v", applied, latest, err)
	}
	var rows int
	if err := stores[0].read.QueryRowContext(t.Context(), "SELECT count(*) FROM schema_migrations").Scan(&rows); err != nil {
		t.Fatal(err)
	}
	if rows != latest {
		t.Fatalf("schema_migrations has %d rows, want %d (one per migration)", rows, latest)
	}
}

func TestSchemaVersionBeforeMigrate(t *testing.T) {
	s, err := Open(t.Context(), filepath.Join(t.TempDir(), "updraft.db"))
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	applied, latest, err := s.SchemaVersion(t.Context())
	if err != nil || applied != 0 || latest < 1 {
		t.Fatalf("SchemaVersion before Migrate = %d, %d, %v; want 0, >=1, nil", applied, latest, err)
	}
}

// TestFilesOwnerOnly: the database and its WAL and SHM files are 0600, also
// when an older version left them 0644.
func TestFilesOwnerOnly(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "sub", "updraft.db")
	check := func(when string) {
		t.Helper()
		for _, p := range []string{path, path + "-wal", path + "-shm"} {
			fi, err := os.Stat(p)
			if err != nil {
				t.Fatalf("%s: %v", when, err)
			}
			if fi.Mode().Perm() != 0o600 {
				t.Errorf("%s: %s has mode %v, want 0600", when, filepath.Base(p), fi.Mode().Perm())
			}
		}
		fi, _ := os.Stat(filepath.Dir(path))
		if fi.Mode().Perm()&0o077 != 0 {
			t.Errorf("%s: directory mode %v is open to group/others", when, fi.Mode().Perm())
		}
	}
	s, err := Open(t.Context(), path)
	if err != nil {
		t.Fatal(err)
	}
	if err := s.Migrate(t.Context()); err != nil {
		t.Fatal(err)
	}
	check("new database")
	s.Close()
	for _, p := range []string{path, path + "-wal", path + "-shm"} {
		_ = os.Chmod(p, 0o644)
	}
	s, err = Open(t.Context(), path)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	if _, err := s.CountTenants(t.Context()); err != nil {
		t.Fatal(err)
	}
	check("reopened 0644 database")
}

// TestClaimPacedTwoStores: claimers on two stores of one file (two
// processes) never take a job past its cap or its rate together.
func TestClaimPacedTwoStores(t *testing.T) {
	path := filepath.Join(t.TempDir(), "updraft.db")
	var stores []store.Store
	for i := range 2 {
		s, err := Open(t.Context(), path)
		if err != nil {
			t.Fatalf("Open %d: %v", i, err)
		}
		t.Cleanup(func() { s.Close() })
		stores = append(stores, s)
	}
	if err := stores[0].Migrate(t.Context()); err != nil {
		t.Fatal(err)
	}
	storetest.ClaimPacedReplicas(t, stores)
}

// TestSQLiteSecrets: secrets at rest, with the database file and its WAL
// read as bytes (what `strings updraft.db` shows).
func TestSQLiteSecrets(t *testing.T) {
	var path string
	open := func(t *testing.T, p string, box *secrets.Box) store.Store {
		s, err := Open(t.Context(), p, store.Options{Secrets: box})
		if err != nil {
			t.Fatalf("Open: %v", err)
		}
		t.Cleanup(func() { s.Close() })
		if err := s.Migrate(t.Context()); err != nil {
			t.Fatalf("Migrate: %v", err)
		}
		return s
	}
	storetest.RunSecrets(t, storetest.SecretsHarness{
		Open: func(t *testing.T, box *secrets.Box) store.Store {
			path = filepath.Join(t.TempDir(), "updraft.db")
			return open(t, path, box)
		},
		Reopen: func(t *testing.T, box *secrets.Box) store.Store { return open(t, path, box) },
		Raw: func(t *testing.T) string {
			var all []byte
			for _, suffix := range []string{"", "-wal"} {
				b, err := os.ReadFile(path + suffix)
				if err != nil && !os.IsNotExist(err) {
					t.Fatal(err)
				}
				all = append(all, b...)
			}
			return string(all)
		},
	})
}
