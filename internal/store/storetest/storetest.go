// Package storetest is the contract suite every store backend must pass:
//
//	func TestSQLite(t *testing.T) { storetest.Run(t, openSQLite) }
//
// Beyond what the store interfaces' comments say, the suite pins down these
// points so that every backend behaves the same:
//
//   - Times come back as the same instant (at least millisecond precision;
//     the suite uses millisecond times), and the zero time comes back zero.
//   - Empty slices and maps may come back nil.
//   - Totals of ListProducts, ListModules, ListPackages and ListJobs count
//     every row the filter matches, ignoring Limit, Offset and BeforeID. The
//     counts of ListDevices and ListTasks also ignore AfterName/AfterID and
//     the filters' Limit; when count is false they are -1.
//   - A filter's Limit and the page's Limit both bound a listing (the smaller
//     wins); with neither, 100 rows.
//   - DeviceFilter.Versions and HasVersion look at the default module when
//     Module is empty.
//   - SetDeviceVersion and SetDeviceOnline set LastSeen to their time; both
//     return CodeNotFound for an unknown device.
//   - UpdateTasks sets FinishedAt only when the new state is terminal and
//     NextAttemptAt only when it is retry_wait, and leaves a task alone (not
//     counted) when changing it would give its device a second active task
//     on the module. UpdateTask returns CodeConflict in that case.
//   - CountTasks may omit states that have no tasks.
package storetest

import (
	"fmt"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/updraft-ota/updraft/internal/ota"
	"github.com/updraft-ota/updraft/internal/store"
)

// Run runs the contract suite. open must return a fresh, migrated, empty
// store for each subtest and arrange (t.Cleanup) for it to be closed.
func Run(t *testing.T, open func(t *testing.T) store.Store) {
	tests := []struct {
		name string
		fn   func(t *testing.T, s store.Store)
	}{
		{"Schema/MigrateTwice", testMigrateTwice},
		{"Schema/Ping", testPing},

		{"Tenants/CreateGet", testTenants},
		{"Tenants/AccessKeys", testAccessKeys},
		{"Tenants/Admin", testTenantsAdmin},

		{"Audit/WrittenWithChange", testAuditWrittenWithChange},
		{"Audit/NotWrittenOnFailure", testAuditNotWrittenOnFailure},
		{"Audit/TaskAndBucketChanges", testAuditTaskAndBucketChanges},

		{"Products/CreateGet", testProductCreateGet},
		{"Products/KeyUniqueAcrossTenants", testProductKeyUnique},
		{"Products/List", testProductList},
		{"Products/Modules", testModules},
		{"Products/FindModules", testFindModules},
		{"Products/Delete", testProductDelete},

		{"Devices/CreateGet", testDeviceCreateGet},
		{"Devices/VersionsAndOnline", testDeviceVersionsOnline},
		{"Devices/Delete", testDeviceDelete},
		{"Uploads/TakeExpired", testUploadsTakeExpired},
		{"Devices/CountPresent", testDeviceCountPresent},
		{"Devices/SetGroups", testDeviceSetGroups},
		{"Devices/Labels", testDeviceLabels},
		{"Devices/List", testDeviceList},
		{"Devices/ListFilters", testDeviceListFilters},
		{"Devices/SoftwareVersionFilter", testDeviceSoftwareVersionFilter},

		{"Packages/CreateGet", testPackageCreateGet},
		{"Packages/List", testPackageList},
		{"Packages/Update", testPackageUpdate},
		{"Packages/UpdateInfo", testPackageInfo},
		{"Packages/Filters", testPackageFilters},
		{"Packages/Delete", testPackageDelete},
		{"Packages/CountRefs", testPackageRefs},

		{"Buckets/Claim", testBucketClaim},
		{"Tokens/Issue", testTokenIssue},
		{"Buckets/ClaimConcurrent", testBucketClaimConcurrent},

		{"Nonces/Use", testNonces},
		{"Nonces/UseConcurrent", testNoncesConcurrent},

		{"ReplicaSlots/Lease", testReplicaSlots},
		{"ReplicaSlots/LeaseConcurrent", testReplicaSlotsConcurrent},

		{"Jobs/CreateGet", testJobCreateGet},
		{"Jobs/List", testJobList},
		{"Jobs/UpdateCAS", testJobUpdate},
		{"Jobs/Delete", testJobDelete},
		{"Jobs/CreateWithTasks", testJobWithTasks},
		{"Jobs/MaterializeBatch", testMaterializeBatch},
		{"Jobs/NeedPackage", testJobNeedsPackage},
		{"Jobs/Settings", testJobSettings},
		{"Jobs/Filters", testJobFilters},

		{"Tasks/InsertGet", testTaskInsertGet},
		{"Tasks/OneActivePerModule", testTaskOneActive},
		{"Tasks/InsertConcurrent", testTaskInsertConcurrent},
		{"Tasks/ListFilters", testTaskListFilters},
		{"Tasks/Count", testTaskCount},
		{"Tasks/CountFollowsChanges", testTaskCountFollowsChanges},
		{"Tasks/CountNotifiedSince", testTaskCountNotified},
		{"Tasks/UpdateCAS", testTaskUpdate},
		{"Tasks/Modify", testTaskModify},
		{"Tasks/ApplyVersionReport", testApplyVersionReport},
		{"Tasks/SetProgress", testSetTaskProgress},
		{"Tasks/UpdateBulk", testTaskUpdateBulk},
		{"Tasks/UpdateBulkLimit", testTaskUpdateBulkLimit},
		{"Tasks/UpdateBulkKeepsOneActive", testTaskUpdateBulkOneActive},
		{"Tasks/Claim", testTaskClaim},
		{"Tasks/ClaimConcurrent", testTaskClaimConcurrent},
		{"Tasks/ClaimPaced", testTaskClaimPaced},
		{"Tasks/ClaimPacedConcurrent", testTaskClaimPacedConcurrent},

		{"DeviceView/Version", testDeviceViewVersion},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			tc.fn(t, open(t))
		})
	}
}

// base is the suite's fixed clock: every time is base plus an offset, with
// milliseconds so that a backend truncating to seconds fails.
var base = time.Date(2026, 3, 14, 9, 26, 53, 589_000_000, time.UTC)

func at(d time.Duration) time.Time { return base.Add(d) }

func testMigrateTwice(t *testing.T, s store.Store) {
	ctx := t.Context()
	applied, latest, err := s.SchemaVersion(ctx)
	if err != nil {
		t.Fatalf("SchemaVersion: %v", err)
	}
	if latest < 1 || applied != latest {
		t.Fatalf("SchemaVersion after migrate = (%d, %d), want applied == latest >= 1", applied, latest)
	}
	mustOK(t, s.CreateTenant(ctx, ota.Tenant{ID: "t1", Name: "kept", CreatedAt: base}), "CreateTenant")
	if err := s.Migrate(ctx); err != nil {
		t.Fatalf("second Migrate: %v", err)
	}
	if err := s.Migrate(ctx); err != nil {
		t.Fatalf("third Migrate: %v", err)
	}
	applied2, latest2, err := s.SchemaVersion(ctx)
	if err != nil {
		t.Fatalf("SchemaVersion: %v", err)
	}
	if applied2 != applied || latest2 != latest {
		t.Fatalf("SchemaVersion after migrating again = (%d, %d), want (%d, %d)", applied2, latest2, applied, latest)
	}
	got, err := s.GetTenant(ctx, "t1")
	mustOK(t, err, "GetTenant after migrating again")
	if got.Name != "kept" {
		t.Fatalf("tenant after migrating again = %+v, want the row created before", got)
	}
}

func testPing(t *testing.T, s store.Store) {
	if err := s.Ping(t.Context()); err != nil {
		t.Fatalf("Ping: %v", err)
	}
}

// ---- assertions ----

func mustOK(t *testing.T, err error, what string) {
	t.Helper()
	if err != nil {
		t.Fatalf("%s: %v", what, err)
	}
}

func wantCode(t *testing.T, err error, code ota.Code, what string) {
	t.Helper()
	if got := ota.ErrorCode(err); got != code {
		t.Fatalf("%s: error %v (code %q), want code %q", what, err, got, code)
	}
}

func wantEqual(t *testing.T, want, got any, what string) {
	t.Helper()
	if d := diff(want, got); d != "" {
		t.Fatalf("%s differs:\n%s", what, d)
	}
}

func wantTotal(t *testing.T, got, want int64, what string) {
	t.Helper()
	if got != want {
		t.Fatalf("%s: total %d, want %d", what, got, want)
	}
}

var timeType = reflect.TypeFor[time.Time]()

// diff compares two values deeply and describes the differences, one per
// line with the field path. Times compare as instants; a nil slice or map
// equals an empty one.
func diff(want, got any) string {
	var out []string
	diffValue(&out, "", reflect.ValueOf(want), reflect.ValueOf(got))
	return strings.Join(out, "\n")
}

func diffValue(out *[]string, path string, w, g reflect.Value) {
	if len(*out) > 20 {
		return
	}
	if !w.IsValid() || !g.IsValid() {
		if w.IsValid() != g.IsValid() {
			*out = append(*out, fmt.Sprintf("%s: want %v, got %v", path, w, g))
		}
		return
	}
	if w.Type() != g.Type() {
		*out = append(*out, fmt.Sprintf("%s: want type %s, got %s", path, w.Type(), g.Type()))
		return
	}
	if w.Type() == timeType {
		wt, gt := w.Interface().(time.Time), g.Interface().(time.Time)
		if !wt.Equal(gt) {
			*out = append(*out, fmt.Sprintf("%s: want %s, got %s", path, wt.Format(time.RFC3339Nano), gt.Format(time.RFC3339Nano)))
		}
		return
	}
	switch w.Kind() {
	case reflect.Struct:
		for i := range w.NumField() {
			f := w.Type().Field(i)
			if !f.IsExported() {
				continue
			}
			diffValue(out, path+"."+f.Name, w.Field(i), g.Field(i))
		}
	case reflect.Slice, reflect.Array:
		if w.Len() != g.Len() {
			*out = append(*out, fmt.Sprintf("%s: want %d elements %v, got %d %v", path, w.Len(), w, g.Len(), g))
			return
		}
		for i := range w.Len() {
			diffValue(out, fmt.Sprintf("%s[%d]", path, i), w.Index(i), g.Index(i))
		}
	case reflect.Map:
		if w.Len() != g.Len() {
			*out = append(*out, fmt.Sprintf("%s: want %v, got %v", path, w, g))
			return
		}
		for _, k := range w.MapKeys() {
			gv := g.MapIndex(k)
			if !gv.IsValid() {
				*out = append(*out, fmt.Sprintf("%s[%v]: missing", path, k))
				continue
			}
			diffValue(out, fmt.Sprintf("%s[%v]", path, k), w.MapIndex(k), gv)
		}
	case reflect.Pointer:
		if w.IsNil() || g.IsNil() {
			if w.IsNil() != g.IsNil() {
				*out = append(*out, fmt.Sprintf("%s: want %v, got %v", path, w, g))
			}
			return
		}
		diffValue(out, path, w.Elem(), g.Elem())
	default:
		if !reflect.DeepEqual(w.Interface(), g.Interface()) {
			*out = append(*out, fmt.Sprintf("%s: want %#v, got %#v", path, w.Interface(), g.Interface()))
		}
	}
}
