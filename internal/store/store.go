// Package store is the persistence contract: per-aggregate interfaces and the
// filters they take, no SQL. Every backend (sqlite, postgres) must pass the
// contract suite in storetest.
//
// Errors: backends return *ota.Error with CodeNotFound for a missing row and
// CodeConflict for a duplicate key or a failed compare-and-set; anything else
// is CodeUnavailable (connection trouble) or CodeInternal.
package store

import (
	"context"
	"time"

	"github.com/updraft-ota/updraft/internal/ota"
	"github.com/updraft-ota/updraft/internal/store/secrets"
)

// Options are what a backend's Open takes besides where the database is.
type Options struct {
	// Secrets seals device and access-key secrets before they are written
	// and opens them when read, so the database alone holds none in clear.
	// Nil stores them as given (tests of other packages).
	Secrets *secrets.Box
}

// Store is a whole backend.
type Store interface {
	Tenants
	Products
	Devices
	Packages
	Buckets
	Nonces
	Uploads
	Jobs
	Tasks
	Tokens
	ReplicaSlots
	Audit

	// Migrate applies the embedded migrations not applied yet, in order, each
	// in its own transaction. It is safe to call from several replicas.
	Migrate(ctx context.Context) error
	// SchemaVersion returns the applied and the latest known migration.
	SchemaVersion(ctx context.Context) (applied, latest int, err error)
	// SealSecrets rewrites every device and access-key secret still stored
	// in clear (rows written before sealing, or by a start without a key)
	// sealed with Options.Secrets, and returns how many it sealed. It is
	// idempotent and safe on several replicas; with no Options.Secrets it
	// does nothing.
	SealSecrets(ctx context.Context) (int64, error)
	Ping(ctx context.Context) error
	Close() error

	// DeviceViewVersion returns a number that is different from every
	// earlier answer once a transaction has committed that inserted a task,
	// moved a finished task back to an active state (an operator retry),
	// deleted a device or changed its secret, and never less often. It
	// stays put when a task moves between active states or finishes, and
	// when a device reports: a rollout's own traffic must not empty every
	// replica's memory. Reading it is cheap: replicas read it instead of
	// the tables to know whether what they remember of devices ("nothing
	// pending", credentials) still holds.
	DeviceViewVersion(ctx context.Context) (int64, error)
}

// Page asks for a slice of a listing. Lists of packages and jobs are newest
// first (ids sort by creation time); devices and products by name; tasks by id.
type Page struct {
	Limit    int    // 0 = backend default (100); capped at 1000 by callers
	Offset   int    // rows to skip
	BeforeID string // packages/jobs only: ids lexically below this (Huawei marker)
}

// Tenants: tenants and their access keys.
type Tenants interface {
	CreateTenant(ctx context.Context, t ota.Tenant) error // CodeConflict if the id exists
	GetTenant(ctx context.Context, id string) (ota.Tenant, error)
	CountTenants(ctx context.Context) (int64, error)
	ListTenants(ctx context.Context, page Page) ([]ota.Tenant, int64, error) // by id
	SetTenantQuota(ctx context.Context, id string, q ota.Quota) error
	// DeleteTenant removes a tenant, its access keys and bucket claims;
	// CodeConflict if it still owns products, packages or jobs (checked in
	// the same transaction as the delete).
	DeleteTenant(ctx context.Context, id string) error
	// TenantUsage counts what a tenant holds, for its quota.
	TenantUsage(ctx context.Context, id string) (Usage, error)

	CreateAccessKey(ctx context.Context, k ota.AccessKey) error // CodeConflict if the id exists
	// GetAccessKey reads the key from the database on every call (no cache),
	// so a deleted (revoked) key stops working at once on every replica.
	GetAccessKey(ctx context.Context, id string) (ota.AccessKey, error)
	ListAccessKeys(ctx context.Context, tenantID string) ([]ota.AccessKey, error) // by creation
	DeleteAccessKey(ctx context.Context, tenantID, id string) error               // CodeNotFound if the tenant has no such key
}

// Usage is what a tenant holds, compared with its ota.Quota.
type Usage struct {
	Packages     int64
	StorageBytes int64
	Devices      int64
	RunningJobs  int64
}

// Products: products and their custom modules. Product keys are unique across
// tenants, because devices authenticate by product key and name alone.
type Products interface {
	CreateProduct(ctx context.Context, p ota.Product) error // CodeConflict if the key exists (any tenant)
	GetProduct(ctx context.Context, tenantID, key string) (ota.Product, error)
	// FindProduct looks a product up by key alone (device authentication).
	FindProduct(ctx context.Context, key string) (ota.Product, error)
	ListProducts(ctx context.Context, tenantID string, page Page) ([]ota.Product, int64, error)
	// DeleteProduct removes a tenant's product with its modules, devices,
	// packages and jobs (tasks included), in one transaction: CodeConflict
	// (nothing removed) while one of its jobs is unfinished, CodeNotFound if
	// the tenant has no such product. Package files are the caller's.
	DeleteProduct(ctx context.Context, tenantID, key string) error

	CreateModule(ctx context.Context, m ota.Module) error // CodeConflict if (product, name) exists
	GetModule(ctx context.Context, tenantID, productKey, name string) (ota.Module, error)
	ListModules(ctx context.Context, tenantID, productKey string, page Page) ([]ota.Module, int64, error)
	// FindModules lists a tenant's modules by id, highest first (Page.BeforeID
	// pages by id): of one product, or of all, or the one with an id.
	FindModules(ctx context.Context, f ModuleFilter, page Page) ([]ota.Module, int64, error)
	UpdateModule(ctx context.Context, m ota.Module) error // alias and description only
	DeleteModule(ctx context.Context, tenantID, productKey, name string) error
}

// ModuleFilter selects custom modules; TenantID is required.
type ModuleFilter struct {
	TenantID   string
	ProductKey string
	ID         string // ota.ModuleID
}

// DeviceFilter selects devices. Zero fields do not filter.
type DeviceFilter struct {
	TenantID   string
	ProductKey string
	Names      []string // exactly these devices
	Groups     []string // in any of these groups
	// Attributes and Tags: the device carries every one of these pairs.
	Attributes map[string]string
	Tags       map[string]string
	// Module and Versions together: the device's reported version of Module
	// is one of Versions. For ota.SoftwareModule the version is read as
	// ota.Device.Version reads it: the firmware's (DefaultModule) when the
	// device never reported a software version.
	Module   string
	Versions []string
	// HasVersion: only devices that have reported a version of Module (for
	// SoftwareModule: of it or of DefaultModule).
	HasVersion bool
	// Online, when set, keeps devices connected (true) or not (false).
	Online *bool
	// NamePrefix keeps devices whose name starts with it (case-sensitive).
	NamePrefix string
	AfterName  string // keyset paging: names > AfterName, ascending
	Limit      int
	// Brief fills only what a rollout reads of each device (TenantID,
	// ProductKey, Name, Versions, Online, CreatedAt) and leaves the rest
	// empty: creating a job reads the whole fleet, and the secrets, groups
	// and labels of a million devices are work for nothing.
	Brief bool
}

// Devices: the fleet.
type Devices interface {
	CreateDevice(ctx context.Context, d ota.Device) error // CodeConflict if (product, name) exists
	GetDevice(ctx context.Context, productKey, name string) (ota.Device, error)
	// ListDevices returns devices matching f in name order, and how many match
	// in all when count is true (else -1).
	ListDevices(ctx context.Context, f DeviceFilter, page Page, count bool) ([]ota.Device, int64, error)
	// SetDeviceVersion records a reported version of one module and the time.
	SetDeviceVersion(ctx context.Context, productKey, name, module, version string, at time.Time) error
	// SetDeviceOnline records a connect (true) or disconnect (false). stamp
	// orders one device's presence changes: when it is not 0 the change is
	// applied only if stamp is greater than the stamp of the last one
	// applied, which it then becomes, and applied is false (nothing changes)
	// otherwise. A change with stamp 0 is applied whatever came before and
	// leaves the stamp as it was. CodeNotFound if the device does not exist.
	SetDeviceOnline(ctx context.Context, productKey, name string, online bool, at time.Time, stamp int64) (applied bool, err error)
	// SetDeviceSeen records at as the device's last sighting (a device-HTTP
	// request) without changing whether it is online, but only when the
	// sighting on record is older than staleBefore, so that a fleet polling
	// often costs a write per device at most once per interval. A missing
	// device is not an error (the caller has just authenticated it).
	SetDeviceSeen(ctx context.Context, productKey, name string, at, staleBefore time.Time) error
	// CountPresent counts devices present per protocol and transport, over
	// every tenant: "mqtt" = online now, "http" = a device-HTTP request
	// since polledSince (SetDeviceSeen). Groups with no device are left out.
	CountPresent(ctx context.Context, polledSince time.Time) ([]Presence, error)
	DeleteDevice(ctx context.Context, productKey, name string) error
	// SetDeviceLabels replaces a device's attributes and tags (CodeNotFound
	// if it does not exist).
	SetDeviceLabels(ctx context.Context, productKey, name string, attributes, tags map[string]string) error
	// SetDeviceGroups replaces a device's groups (CodeNotFound if it does
	// not exist).
	SetDeviceGroups(ctx context.Context, productKey, name string, groups []string) error
	// CountDeviceVersions counts a product's devices per reported version of
	// module (DefaultModule when empty), most devices first, then by
	// version; devices that have reported none count under "". At most limit
	// versions are returned.
	CountDeviceVersions(ctx context.Context, tenantID, productKey, module string, limit int) ([]VersionCount, error)
}

// VersionCount is how many devices run one version.
type VersionCount struct {
	Version string
	Devices int64
}

// PackageFilter selects packages. Zero fields do not filter.
type PackageFilter struct {
	TenantID   string
	ProductKey string
	Module     string
	Kind       ota.PackageKind
	Version    string
	Name       string // exactly this name
	// NameContains: the name contains this text (case-sensitive, literal:
	// no wildcards).
	NameContains string
	// NameLocale: when set, Name and NameContains match the name in this
	// locale (ota.Package.LocalNames) instead of the default name; a package
	// without a name in that locale matches neither. Alone it does not filter.
	NameLocale string
	Space      string // resource space label (Huawei app_id)
	// VerifyStatuses: the verify status is one of these.
	VerifyStatuses []ota.VerifyStatus
}

// Packages: registered upgrade packages.
type Packages interface {
	CreatePackage(ctx context.Context, p ota.Package) error // CodeConflict if (tenant, name) exists
	GetPackage(ctx context.Context, tenantID, id string) (ota.Package, error)
	ListPackages(ctx context.Context, f PackageFilter, page Page) ([]ota.Package, int64, error)
	// UpdatePackage writes the mutable fields: name, local names,
	// description, custom info, tags, need-verify, verify status, modified
	// time.
	UpdatePackage(ctx context.Context, p ota.Package) error
	// UpdatePackageInfo writes only the fields an operator edits: name,
	// local names, description, custom info, tags, modified time (CodeConflict if the
	// name is taken). It never touches the verify status the engine owns.
	UpdatePackageInfo(ctx context.Context, p ota.Package) error
	// DeletePackage removes a package; CodeConflict if an unfinished job
	// uses it, checked in the same transaction as the delete.
	DeletePackage(ctx context.Context, tenantID, id string) error
	// CountPackageRefs counts packages using a blob (so a shared object is not
	// deleted while another package still points at it).
	CountPackageRefs(ctx context.Context, bucket, key string) (int64, error)
}

// Buckets: which tenant owns each blob bucket named through the object APIs,
// so that one tenant cannot read or replace another's objects.
type Buckets interface {
	// ClaimBucket records tenantID as the owner of bucket unless the bucket
	// already has one, and returns the owner either way. It is atomic: of
	// concurrent first claims exactly one wins and every caller sees it.
	ClaimBucket(ctx context.Context, tenantID, bucket string, now time.Time) (owner string, err error)
}

// Nonces: single-use values already seen, so that a signed request or a
// one-time proof cannot be replayed (Alibaba SignatureNonce, EnOS token
// "encryption"). One mechanism for every dialect, kept in the store so that
// the memory survives a restart and is shared by every replica.
type Nonces interface {
	// UseNonce records nonce under scope (an access key id, a dialect) as
	// used until expiresAt and reports whether it was fresh: not recorded,
	// or recorded but expired at now (the record is then renewed). Of
	// concurrent uses of one nonce exactly one is fresh.
	UseNonce(ctx context.Context, scope, nonce string, expiresAt, now time.Time) (fresh bool, err error)
	// ForgetNonces removes the nonces expired at now and returns how many
	// went (housekeeping: an expired nonce is reusable either way).
	ForgetNonces(ctx context.Context, now time.Time) (int64, error)
}

// Uploads remembers files stored for a package that is not registered yet,
// so that one never claimed is removed (the blob store cannot list).
type Uploads interface {
	// RecordUpload notes an uploaded object that must be claimed by a
	// package before expiresAt (again for the same object: the new expiry).
	RecordUpload(ctx context.Context, u Upload) error
	// TakeExpiredUploads removes and returns up to limit records expired at
	// now whose object no package uses; a claimed one's record just goes.
	// Of replicas taking at once, each record goes to one.
	TakeExpiredUploads(ctx context.Context, now time.Time, limit int) ([]Upload, error)
}

// Upload is an object uploaded ahead of its package.
type Upload struct {
	TenantID  string
	Bucket    string
	Key       string
	ExpiresAt time.Time
}

// ReplicaSlots leases numbered slots to the server replicas sharing one
// store. A slot is the stable identity of a replica's persistent consumer
// sessions on an external MQTT broker (client ids "{base}-s{slot}-c{i}",
// see mqtt.ExternalOptions), so that a replica that restarts under another
// host name, or a new one, resumes a dead replica's sessions and the
// messages queued in them instead of leaving them orphaned. A slot's row
// exists while its sessions may exist at the broker; its lease is live
// while its expiry is after now, and vacant otherwise (a replica that died,
// or one that stopped and released it).
type ReplicaSlots interface {
	// LeaseReplicaSlot leases to owner, until until, the lowest vacant slot
	// below max (resuming its sessions), else the lowest slot below max that
	// has no row. It returns the slot and the client id base its sessions
	// are named with: the row's when the slot is resumed (the sessions that
	// exist), base for a new row. CodeUnavailable when every slot below max
	// is leased. Concurrent callers never get the same slot.
	LeaseReplicaSlot(ctx context.Context, owner, base string, max int, now, until time.Time) (int, string, error)
	// ClaimVacantReplicaSlot leases to owner the lowest vacant slot of any
	// number, for a live replica to drain its sessions and drop it, and
	// returns it with its client id base; -1 when none is vacant.
	ClaimVacantReplicaSlot(ctx context.Context, owner string, now, until time.Time) (int, string, error)
	// RenewReplicaSlot extends owner's lease on slot until until. CodeConflict
	// when owner no longer holds it (it expired and another owner took it).
	RenewReplicaSlot(ctx context.Context, slot int, owner string, until time.Time) error
	// ReleaseReplicaSlot ends owner's lease on slot: the row stays, vacant at
	// once, when its sessions persist (drop false); it goes when they were
	// deleted (drop true). Nothing happens when owner does not hold slot.
	ReleaseReplicaSlot(ctx context.Context, slot int, owner string, drop bool) error
}

// JobFilter selects jobs. Zero fields do not filter.
type JobFilter struct {
	TenantID    string
	PackageID   string
	ProductKey  string
	Module      string
	Type        ota.JobType
	PackageKind ota.PackageKind
	Selection   ota.Selection
	States      []ota.JobState
	Space       string // resource space label (Huawei app_id)
	// Outcome: ended jobs with this outcome (ota.Outcome, stored when the
	// job ends).
	Outcome ota.JobOutcome
	// Materialized: when set, only jobs whose tasks all exist (true) or are
	// still being created (false).
	Materialized *bool
	// Device: when set, only jobs that have a task (in any state) for this
	// device (Alibaba ListOTAJobByDevice).
	Device *ota.DeviceRef
	// NameContains: the job's name contains this text (case-sensitive,
	// literal: no wildcards).
	NameContains string
	// NameLocale: when set, NameContains matches the name in this locale
	// (ota.Job.LocalNames) instead of the default name; a job without a name
	// in that locale does not match. Alone it does not filter.
	NameLocale string
}

// Jobs: OTA jobs.
type Jobs interface {
	CreateJob(ctx context.Context, j ota.Job) error
	// CreateJobWithTasks creates the job and its first tasks in one
	// transaction, so that a job on a device list shows every target from the
	// moment it exists. A task whose device's module is held by another
	// active task is stored skipped (ota.Task.SkipBusy) instead, also when
	// another replica takes the module at the same moment. The job's package
	// must exist (CodeNotFound), and a concurrent DeletePackage either comes
	// first or sees the job; a verify job moves its package to verifying in
	// the same transaction (CodeConflict if it is verifying or verified).
	CreateJobWithTasks(ctx context.Context, j ota.Job, tasks []ota.Task) error
	// MaterializeBatch stores one batch of a job's tasks (busy ones skipped as
	// in CreateJobWithTasks) and writes j.Materialized, j.MaterializeCursor
	// and j.UpdatedAt, in one transaction, only if the stored job is still in
	// j.State with cursor expectCursor; else CodeConflict and nothing is
	// written. So a batch is stored exactly once, whatever crashes or
	// replicas racing on it.
	MaterializeBatch(ctx context.Context, j ota.Job, expectCursor string, tasks []ota.Task) error
	GetJob(ctx context.Context, tenantID, id string) (ota.Job, error)
	// ListJobs returns the page of matching jobs, newest first, and with
	// count their total (a second query; 0 without it).
	ListJobs(ctx context.Context, f JobFilter, page Page, count bool) ([]ota.Job, int64, error)
	// UpdateJob writes every mutable field (state, reason, materialization
	// progress, times) if the stored state is still expect; CodeConflict if not.
	UpdateJob(ctx context.Context, j ota.Job, expect ota.JobState) error
	// UpdateJobSettings writes what an operator may change on a job that has
	// not ended: description, target (its source versions), max
	// concurrency, max per minute, timeout, tags, updated time. CodeConflict
	// if the job has ended.
	UpdateJobSettings(ctx context.Context, j ota.Job) error
	// DeleteJob removes a job and its tasks.
	DeleteJob(ctx context.Context, tenantID, id string) error
}

// TaskFilter selects tasks. Zero fields do not filter.
type TaskFilter struct {
	TenantID   string
	JobID      string
	ProductKey string
	Module     string
	Devices    []string
	States     []ota.TaskState
	IDs        []int64

	NotifiedBefore    time.Time // notified_at < this
	StartedBefore     time.Time // started_at < this
	NextAttemptBefore time.Time // next_attempt_at <= this
	AfterID           int64     // id > this, ascending (keyset paging and claims)
	Limit             int
}

// VersionReport is a version one device reported for one module ("" is
// ota.DefaultModule), at At.
type VersionReport struct {
	ProductKey, DeviceName, Module, Version string
	At                                      time.Time
}

// VersionApplied is what ApplyVersionReport found and did.
type VersionApplied struct {
	// Task is the device's active task on the module as written, nil when
	// the device had none.
	Task *ota.Task
	// DynamicJobs: a running dynamic job exists on the device's product and
	// module (it may or may not target the device).
	DynamicJobs bool
}

// TaskProgress is a progress report to write in bulk (SetTaskProgress):
// the task's percentage and detail as of At.
type TaskProgress struct {
	TaskID   int64
	Progress int
	Detail   string
	At       time.Time
}

// TaskUpdate is a bulk change applied to every task a filter selects.
type TaskUpdate struct {
	State         ota.TaskState
	Reason        ota.Reason
	Detail        string
	NextAttemptAt time.Time // set when State is retry_wait
	Now           time.Time // updated_at; finished_at too when State is terminal
}

// Tasks: one row per (job, device).
type Tasks interface {
	// InsertTasks adds tasks in bulk (COPY or batched INSERT). A task whose
	// device already has an active task on the same module is skipped: the
	// store guarantees at most one active task per (product, device, module)
	// even under concurrent inserts. Returns how many were inserted.
	InsertTasks(ctx context.Context, tasks []ota.Task) (int64, error)
	GetTask(ctx context.Context, id int64) (ota.Task, error)
	ListTasks(ctx context.Context, f TaskFilter, page Page, count bool) ([]ota.Task, int64, error)
	CountTasks(ctx context.Context, jobID string) (ota.TaskCounts, error)
	// CountNotifiedSince counts a job's tasks notified at or after since (rate limit).
	CountNotifiedSince(ctx context.Context, jobID string, since time.Time) (int64, error)
	// UpdateTask writes every mutable field of t if its stored state is still
	// expect; CodeConflict if not. Tasks are changed one at a time this way by
	// device reports and operator actions.
	UpdateTask(ctx context.Context, t ota.Task, expect ota.TaskState) error
	// ModifyTask applies change to task id as stored and writes the result
	// (every mutable field, as UpdateTask) only if the task has not changed
	// at all since it was read, then returns it. change decides; it must
	// not call the store (it may run inside the store's transaction) and
	// may run more than once, on a fresher copy after another writer got
	// there first. Its error aborts the write and comes back unchanged.
	// CodeNotFound when there is no such task; CodeConflict when the task
	// kept changing (a few attempts) or the result would be a second
	// active task on its device's module.
	ModifyTask(ctx context.Context, id int64, change func(t *ota.Task) error) (ota.Task, error)
	// ApplyVersionReport is a device's version report in one call: it records
	// the version of module as SetDeviceVersion does, then applies change to
	// the device's active task on module, if it has one, and writes the
	// result as ModifyTask does (change decides, must not call the store, and
	// may run more than once). The version is recorded whatever change says;
	// change's error leaves the task as it was and comes back unchanged.
	// CodeNotFound when there is no such device; CodeConflict as ModifyTask.
	//
	// It also says whether a running dynamic job exists on the device's
	// product and module, read after the version was written: a job that
	// starts running later reads the fleet after that, so between the two
	// reads the device cannot be missed.
	ApplyVersionReport(ctx context.Context, r VersionReport, change func(t *ota.Task) error) (VersionApplied, error)
	// SetTaskProgress writes each report's progress and detail, with
	// updated_at = At, to its task if the task is in_progress and was not
	// updated after At; nothing else changes (state, times, attempts). A
	// report whose task moved on (ended, failed, or written later by
	// another replica) is left out. At most one report per task. Returns
	// the ids it wrote, in any order; one call is one write, however many
	// reports it carries.
	SetTaskProgress(ctx context.Context, reports []TaskProgress) ([]int64, error)
	// UpdateTasks applies u to every task f selects (f.Limit bounds it when
	// set) and returns how many changed. Used for timeouts, retries, cancel.
	UpdateTasks(ctx context.Context, f TaskFilter, u TaskUpdate) (int64, error)
	// ClaimTasks moves queued tasks of a job to notified (attempts+1,
	// notified_at = Now) within the job's pace and returns them in id order
	// (see ClaimRequest). Concurrent callers never claim the same task, and
	// the pace holds for all of them together: the count and the claim are
	// one atomic step per job, across every Store instance on one database
	// (replicas), not only within one.
	ClaimTasks(ctx context.Context, r ClaimRequest) (Claimed, error)
}

// RateWindow is the period ClaimRequest.MaxPerMinute counts over: tasks
// notified at or after Now − RateWindow.
const RateWindow = time.Minute

// ClaimRequest asks for a job's queued tasks. The store claims
//
//	min(Limit, MaxActive − dispatched, MaxPerMinute − recent, queued matching)
//
// where dispatched is the job's tasks in ota.DispatchedTaskStates and recent
// its tasks with notified_at ≥ Now − RateWindow, both counted in the same
// transaction as the claim while no other claim of the job can run; so no
// number of claimers, replicas included, takes a job past its cap or rate.
// Tasks moved to a dispatched state other than by ClaimTasks are not held
// back by it, but are counted by later claims: a device's own request for its
// task (service.NextNotice, on jobs that allow it, deliberately outside the
// push pace) and the queued → in_progress of a device that kept an earlier
// notice.
type ClaimRequest struct {
	JobID string
	// AfterID: only tasks with id > AfterID, lowest ids first (the caller's
	// keyset cursor; claims cost O(Limit) however far the job has got).
	AfterID int64
	Limit   int // at most this many; ≤ 0 claims nothing
	// MaxActive caps the job's dispatched tasks after the claim; 0 = no cap.
	MaxActive int
	// MaxPerMinute caps the job's tasks notified within RateWindow up to and
	// including Now, after the claim; 0 = no limit.
	MaxPerMinute int
	Now          time.Time
}

// Claimed is what ClaimTasks did.
type Claimed struct {
	Tasks []ota.Task // claimed, in id order
	// Full: the pace left no room beyond Tasks (MaxActive or MaxPerMinute
	// reached), so fewer tasks than Limit does not mean that nothing else is
	// queued. When Full is false and len(Tasks) < Limit, no more queued task
	// is above AfterID.
	Full bool
}

// APIToken is a bearer token a dialect's token service issued for an access
// key (EnOS apim-accesstoken). Stored so that it survives restarts and works
// on every replica.
type APIToken struct {
	Token       string
	AccessKeyID string
	TenantID    string
	ExpiresAt   time.Time
	CreatedAt   time.Time
}

// Tokens: issued bearer tokens (the one-time proofs used to obtain them are
// Nonces).
type Tokens interface {
	// IssueToken stores t unless t.AccessKeyID already has a token that has
	// not expired at now, and returns the key's current token either way.
	IssueToken(ctx context.Context, t APIToken, now time.Time) (APIToken, error)
	// ReplaceToken stores t as the key's only token (a refresh): the key's
	// earlier tokens stop working.
	ReplaceToken(ctx context.Context, t APIToken) error
	// GetToken finds a token, expired or not (CodeNotFound if unknown).
	GetToken(ctx context.Context, token string) (APIToken, error)
}

// Presence is how many devices of one protocol are present on a transport.
type Presence struct {
	Protocol  ota.Protocol
	Transport string // "mqtt" or "http"
	Devices   int64
}

// Audit: the audit log of operator changes.
//
// A service attaches the entry for a change to the context it passes to the
// store call that applies the change (WithAudit). The backend writes the
// entry in the same transaction as the change, and only when the change is
// applied: a call that fails (conflict, not found, quota) or a statement that
// changed no row leaves no entry. Entries are never changed or removed.
type Audit interface {
	// ListAudit lists entries matching f, newest first, and how many match.
	ListAudit(ctx context.Context, f AuditFilter, page Page) ([]ota.AuditEntry, int64, error)
	// AppendAudit records e on its own, for a change that does not live in
	// the database (a file put in the blob store): written after the change
	// succeeded, it is the one kind of entry not in its change's
	// transaction.
	AppendAudit(ctx context.Context, e ota.AuditEntry) error
}

// AuditFilter narrows ListAudit; zero fields match everything.
type AuditFilter struct {
	TenantID     string
	ActorKeyID   string
	Action       string
	ResourceType string
	ResourceID   string
	Since        time.Time // entries at or after
	Until        time.Time // entries before
}

type auditKey struct{}

// WithAudit returns ctx carrying e: the next write transaction a backend
// commits with ctx records e with it. Attach it only to the one store call
// that applies the change.
func WithAudit(ctx context.Context, e ota.AuditEntry) context.Context {
	return context.WithValue(ctx, auditKey{}, e)
}

// AuditFrom returns the entry WithAudit attached to ctx, if any.
func AuditFrom(ctx context.Context) (ota.AuditEntry, bool) {
	e, ok := ctx.Value(auditKey{}).(ota.AuditEntry)
	return e, ok
}
