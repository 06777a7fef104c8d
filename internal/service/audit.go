package service

import (
	"context"

	"github.com/updraft-ota/updraft/internal/ota"
	"github.com/updraft-ota/updraft/internal/store"
)

type requestIDKey struct{}

// WithRequestID returns ctx carrying the id of the request a call serves
// (the X-Request-Id the caller sees), so audit entries can name it. The HTTP
// front-ends set it for every request.
func WithRequestID(ctx context.Context, id string) context.Context {
	return context.WithValue(ctx, requestIDKey{}, id)
}

// RequestIDFrom returns the id WithRequestID put in ctx ("" if none).
func RequestIDFrom(ctx context.Context) string {
	id, _ := ctx.Value(requestIDKey{}).(string)
	return id
}

// audited returns ctx carrying the audit entry for one change p makes, for
// the one store call that applies it: the store writes the entry in the
// change's transaction, and only if the change is applied. tenantID is the
// tenant the changed resource lives in (tenants themselves live in the
// operator's tenant, the caller's). detail must never hold a secret.
func (s *Service) audited(ctx context.Context, p Principal, tenantID, action, resourceType, resourceID, detail string) context.Context {
	return store.WithAudit(ctx, s.entry(ctx, p, tenantID, action, resourceType, resourceID, detail))
}

func (s *Service) entry(ctx context.Context, p Principal, tenantID, action, resourceType, resourceID, detail string) ota.AuditEntry {
	if tenantID == "" {
		tenantID = p.TenantID
	}
	return ota.AuditEntry{
		At: s.clock.Now().UTC(), TenantID: tenantID, ActorKeyID: p.AccessKeyID, ActorRole: p.Role,
		Action: action, ResourceType: resourceType, ResourceID: resourceID,
		RequestID: RequestIDFrom(ctx), Detail: detail,
	}
}

type pendingAuditKey struct{}

// withPendingAudit carries e through a helper that makes several store
// calls (endJob); the helper attaches it, with pendingAudit, only to the
// call that applies the change, so the others write no entry.
func withPendingAudit(ctx context.Context, e ota.AuditEntry) context.Context {
	return context.WithValue(ctx, pendingAuditKey{}, e)
}

// pendingAudit returns ctx with the pending entry, if any, attached for the
// store (store.WithAudit).
func pendingAudit(ctx context.Context) context.Context {
	if e, ok := ctx.Value(pendingAuditKey{}).(ota.AuditEntry); ok {
		return store.WithAudit(ctx, e)
	}
	return ctx
}

// ListAudit lists audit entries. Every key reads its own tenant's entries;
// admins of the operator tenant may read any tenant's (f.TenantID), or all
// with f.TenantID "*".
func (s *Service) ListAudit(ctx context.Context, p Principal, f store.AuditFilter, page store.Page) ([]ota.AuditEntry, int64, error) {
	switch {
	case f.TenantID == "" || f.TenantID == p.TenantID:
		f.TenantID = p.TenantID
	default:
		if err := s.requireServerAdmin(ctx, p); err != nil {
			return nil, 0, err
		}
		if f.TenantID == "*" {
			f.TenantID = ""
		}
	}
	if !f.Since.IsZero() && !f.Until.IsZero() && !f.Until.After(f.Since) {
		return nil, 0, ota.Invalid("until", "until must be after since")
	}
	return s.store.ListAudit(ctx, f, clampPage(page))
}

// jobStateAction names an operator's job state change.
func jobStateAction(to ota.JobState) string {
	switch to {
	case ota.JobPaused:
		return "job.pause"
	case ota.JobRunning, ota.JobPlanned:
		return "job.resume"
	}
	return "job.state"
}
