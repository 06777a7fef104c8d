package client

import (
	"context"
	"net/http"
	"net/url"
	"time"
)

// AuditFilter narrows ListAudit; zero fields match everything. Tenant other
// than the caller's own (or "*" for all) needs an operator admin key.
type AuditFilter struct {
	Tenant       string
	Actor        string // access key id
	Action       string // e.g. job.create
	ResourceType string
	ResourceID   string
	Since, Until time.Time
	Page
}

// ListAudit lists audit entries, newest first.
func (c *Client) ListAudit(ctx context.Context, f AuditFilter) (List[AuditEntry], error) {
	q := url.Values{}
	for k, v := range map[string]string{"tenant": f.Tenant, "actor": f.Actor, "action": f.Action,
		"resource_type": f.ResourceType, "resource_id": f.ResourceID} {
		if v != "" {
			q.Set(k, v)
		}
	}
	if !f.Since.IsZero() {
		q.Set("since", f.Since.UTC().Format(time.RFC3339))
	}
	if !f.Until.IsZero() {
		q.Set("until", f.Until.UTC().Format(time.RFC3339))
	}
	f.Page.set(q)
	var out List[AuditEntry]
	err := c.do(ctx, http.MethodGet, "/api/v1/audit", q, nil, &out)
	return out, err
}
