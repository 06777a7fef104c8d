package ota

import "time"

// AuditEntry records one change an operator (an access key) made: who, in
// which tenant, what, to what, when, and the request it came with. It never
// holds a secret. Device and engine transitions (task states, check-ins) are
// not audited: they are not operator changes.
type AuditEntry struct {
	ID           int64 // assigned by the store, increasing
	At           time.Time
	TenantID     string // the tenant the change was made in
	ActorKeyID   string // access key id of the caller
	ActorRole    Role
	Action       string // "<resource>.<verb>", e.g. "job.create", "key.revoke"
	ResourceType string // "job", "package", "key", "tenant", "device", …
	ResourceID   string
	RequestID    string // the id the caller saw (X-Request-Id); "" if none
	Detail       string // short, human-readable; never a secret
}
