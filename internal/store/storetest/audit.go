package storetest

import (
	"context"
	"testing"
	"time"

	"github.com/updraft-ota/updraft/internal/ota"
	"github.com/updraft-ota/updraft/internal/store"
)

func auditCtx(ctx context.Context, tenant, action, typ, id, reqID string, at time.Time) context.Context {
	return store.WithAudit(ctx, ota.AuditEntry{
		At: at, TenantID: tenant, ActorKeyID: "AK" + tenant, ActorRole: ota.RoleAdmin,
		Action: action, ResourceType: typ, ResourceID: id, RequestID: reqID, Detail: "detail of " + reqID,
	})
}

func auditActions(es []ota.AuditEntry) []string {
	out := make([]string, len(es))
	for i, e := range es {
		out[i] = e.Action + " " + e.ResourceID + " " + e.RequestID
	}
	return out
}

// testAuditWrittenWithChange: an entry attached to a change commits with it,
// every field round-trips, and listing is newest first, filtered and paged.
func testAuditWrittenWithChange(t *testing.T, s store.Store) {
	ctx := t.Context()
	t0 := time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)
	mustOK(t, s.CreateTenant(auditCtx(ctx, "acme", "tenant.create", "tenant", "acme", "r1", t0), ota.Tenant{ID: "acme", Name: "Acme", CreatedAt: t0}), "CreateTenant")
	mustOK(t, s.CreateTenant(auditCtx(ctx, "other", "tenant.create", "tenant", "other", "r2", t0.Add(time.Second)), ota.Tenant{ID: "other", Name: "Other", CreatedAt: t0}), "CreateTenant other")
	mustProduct(t, s, "acme", "pk1", "one")
	p := newPackage("acme", "pk1", "fw", "1.0", t0)
	mustOK(t, s.CreatePackage(auditCtx(ctx, "acme", "package.create", "package", p.ID, "r3", t0.Add(2*time.Second)), p), "CreatePackage")
	mustOK(t, s.DeletePackage(auditCtx(ctx, "acme", "package.delete", "package", p.ID, "r4", t0.Add(3*time.Second)), "acme", p.ID), "DeletePackage")
	// A change without an entry writes none.
	mustOK(t, s.CreateTenant(ctx, ota.Tenant{ID: "quiet", Name: "Quiet", CreatedAt: t0}), "CreateTenant without audit")

	all, n, err := s.ListAudit(ctx, store.AuditFilter{}, store.Page{})
	mustOK(t, err, "ListAudit")
	wantEqual(t, int64(4), n, "count of all entries")
	wantEqual(t, []string{"package.delete " + p.ID + " r4", "package.create " + p.ID + " r3", "tenant.create other r2", "tenant.create acme r1"}, auditActions(all), "all entries, newest first")
	e := all[3]
	if e.ID == 0 || !e.At.Equal(t0) || e.TenantID != "acme" || e.ActorKeyID != "AKacme" || e.ActorRole != ota.RoleAdmin ||
		e.ResourceType != "tenant" || e.Detail != "detail of r1" {
		t.Fatalf("entry did not round-trip: %+v", e)
	}

	acme, n, err := s.ListAudit(ctx, store.AuditFilter{TenantID: "acme"}, store.Page{Limit: 2})
	mustOK(t, err, "ListAudit acme")
	wantEqual(t, int64(3), n, "count of acme entries")
	wantEqual(t, []string{"package.delete " + p.ID + " r4", "package.create " + p.ID + " r3"}, auditActions(acme), "first page of acme")
	acme, _, err = s.ListAudit(ctx, store.AuditFilter{TenantID: "acme"}, store.Page{Limit: 2, Offset: 2})
	mustOK(t, err, "ListAudit acme page 2")
	wantEqual(t, []string{"tenant.create acme r1"}, auditActions(acme), "second page of acme")

	for _, c := range []struct {
		name string
		f    store.AuditFilter
		want []string
	}{
		{"action", store.AuditFilter{Action: "package.create"}, []string{"package.create " + p.ID + " r3"}},
		{"actor", store.AuditFilter{ActorKeyID: "AKother"}, []string{"tenant.create other r2"}},
		{"resource", store.AuditFilter{ResourceType: "tenant", ResourceID: "acme"}, []string{"tenant.create acme r1"}},
		{"since-until", store.AuditFilter{Since: t0.Add(time.Second), Until: t0.Add(3 * time.Second)}, []string{"package.create " + p.ID + " r3", "tenant.create other r2"}},
		{"no match", store.AuditFilter{TenantID: "acme", Action: "tenant.delete"}, []string{}},
	} {
		got, n, err := s.ListAudit(ctx, c.f, store.Page{})
		mustOK(t, err, "ListAudit "+c.name)
		wantEqual(t, c.want, auditActions(got), "entries by "+c.name)
		wantEqual(t, int64(len(c.want)), n, "count by "+c.name)
	}
}

// testAuditNotWrittenOnFailure: a change that fails (conflict, not found)
// leaves no entry, through both a single statement and a transaction.
func testAuditNotWrittenOnFailure(t *testing.T, s store.Store) {
	ctx := t.Context()
	now := time.Now().UTC()
	mustOK(t, s.CreateTenant(ctx, ota.Tenant{ID: "acme", Name: "Acme", CreatedAt: now}), "CreateTenant")
	mustProduct(t, s, "acme", "pk1", "one")
	wantCode(t, s.CreateTenant(auditCtx(ctx, "acme", "tenant.create", "tenant", "acme", "dup", now), ota.Tenant{ID: "acme", Name: "Again", CreatedAt: now}),
		ota.CodeConflict, "CreateTenant of an existing id")
	wantCode(t, s.SetTenantQuota(auditCtx(ctx, "ghost", "tenant.quota", "tenant", "ghost", "quota", now), "ghost", ota.Quota{MaxPackages: 1}),
		ota.CodeNotFound, "SetTenantQuota of a missing tenant")
	wantCode(t, s.DeletePackage(auditCtx(ctx, "acme", "package.delete", "package", "ghost", "del", now), "acme", ota.NewID(now)),
		ota.CodeNotFound, "DeletePackage of a missing package")
	wantCode(t, s.DeleteAccessKey(auditCtx(ctx, "acme", "key.revoke", "key", "ghost", "revoke", now), "acme", "ghost"),
		ota.CodeNotFound, "DeleteAccessKey of a missing key")
	got, n, err := s.ListAudit(ctx, store.AuditFilter{}, store.Page{})
	mustOK(t, err, "ListAudit")
	if n != 0 || len(got) != 0 {
		t.Fatalf("failed changes left audit entries: %d %v", n, auditActions(got))
	}
}

// testAuditTaskAndBucketChanges: a task's compare-and-set, a bulk task
// update and a bucket claim write their entry only when they change
// something; AppendAudit records an entry on its own.
func testAuditTaskAndBucketChanges(t *testing.T, s store.Store) {
	ctx := t.Context()
	now := time.Now().UTC().Truncate(time.Second)
	mustOK(t, s.CreateTenant(ctx, ota.Tenant{ID: "acme", Name: "Acme", CreatedAt: now}), "CreateTenant")
	mustOK(t, s.CreateTenant(ctx, ota.Tenant{ID: "other", Name: "Other", CreatedAt: now}), "CreateTenant other")
	mustProduct(t, s, "acme", "pk1", "one")
	pkg := mustPackage(t, s, newPackage("acme", "pk1", "fw", "1.0", now))
	j := mustJob(t, s, newJob("acme", pkg.ID, "pk1", now))
	mustInsert(t, s, newTask(j, "d1", ota.TaskFailed), newTask(j, "d2", ota.TaskQueued), newTask(j, "d3", ota.TaskQueued))
	tasks := listAll(t, s, store.TaskFilter{JobID: j.ID})

	d1 := tasks[0]
	d1.State = ota.TaskWaiting
	mustOK(t, s.UpdateTask(auditCtx(ctx, "acme", "task.retry", "task", "d1", "retry", now), d1, ota.TaskFailed), "UpdateTask")
	wantCode(t, s.UpdateTask(auditCtx(ctx, "acme", "task.retry", "task", "d1", "stale", now), d1, ota.TaskFailed),
		ota.CodeConflict, "UpdateTask from a state the task left")
	n, err := s.UpdateTasks(auditCtx(ctx, "acme", "tasks.cancel", "job", j.ID, "cancel", now),
		store.TaskFilter{JobID: j.ID, States: []ota.TaskState{ota.TaskQueued}},
		store.TaskUpdate{State: ota.TaskCanceled, Reason: ota.ReasonCanceled, Now: now})
	mustOK(t, err, "UpdateTasks")
	wantEqual(t, int64(2), n, "tasks canceled")
	n, err = s.UpdateTasks(auditCtx(ctx, "acme", "tasks.cancel", "job", j.ID, "none-left", now),
		store.TaskFilter{JobID: j.ID, States: []ota.TaskState{ota.TaskQueued}},
		store.TaskUpdate{State: ota.TaskCanceled, Reason: ota.ReasonCanceled, Now: now})
	mustOK(t, err, "UpdateTasks matching nothing")
	wantEqual(t, int64(0), n, "tasks canceled the second time")

	owner, err := s.ClaimBucket(auditCtx(ctx, "acme", "bucket.create", "bucket", "b1", "claim", now), "acme", "b1", now)
	mustOK(t, err, "ClaimBucket")
	wantEqual(t, "acme", owner, "owner of a new bucket")
	owner, err = s.ClaimBucket(auditCtx(ctx, "acme", "bucket.create", "bucket", "b1", "claim-again", now), "acme", "b1", now)
	mustOK(t, err, "ClaimBucket again")
	wantEqual(t, "acme", owner, "owner of a bucket claimed twice")
	owner, err = s.ClaimBucket(auditCtx(ctx, "other", "bucket.create", "bucket", "b1", "claim-other", now), "other", "b1", now)
	mustOK(t, err, "ClaimBucket by another tenant")
	wantEqual(t, "acme", owner, "owner of a bucket another tenant claimed first")

	e := ota.AuditEntry{At: now, TenantID: "acme", ActorKeyID: "AKacme", ActorRole: ota.RoleAdmin,
		Action: "object.put", ResourceType: "object", ResourceID: "b1/fw.bin", RequestID: "put", Detail: "12 bytes"}
	mustOK(t, s.AppendAudit(ctx, e), "AppendAudit")

	got, n, err := s.ListAudit(ctx, store.AuditFilter{}, store.Page{})
	mustOK(t, err, "ListAudit")
	want := []string{"object.put b1/fw.bin put", "bucket.create b1 claim", "tasks.cancel " + j.ID + " cancel", "task.retry d1 retry"}
	wantEqual(t, int64(len(want)), n, "count of entries")
	// One timestamp for all: newest first is by id.
	wantEqual(t, want, auditActions(got), "entries written (none for a stale task, an empty update or a bucket already owned)")
}
