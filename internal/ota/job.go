package ota

import (
	"fmt"
	"hash/fnv"
	"math"
	"slices"
	"time"
)

// JobType: a verify job proves a package on a few devices; an upgrade job
// rolls it out.
type JobType string

const (
	JobVerify  JobType = "verify"
	JobUpgrade JobType = "upgrade"
)

// Selection: a static job fixes its devices when it starts; a dynamic job also
// takes devices that match later (when they report a matching version).
type Selection string

const (
	SelectStatic  Selection = "static"
	SelectDynamic Selection = "dynamic"
)

// JobState is a job's lifecycle state.
type JobState string

const (
	JobPlanned   JobState = "planned"   // created, start time not reached
	JobRunning   JobState = "running"   // tasks being dispatched
	JobPaused    JobState = "paused"    // no new notices; devices already notified may finish
	JobCompleted JobState = "completed" // every task terminal, or finish time passed
	JobCanceled  JobState = "canceled"
)

// Terminal reports whether the job can no longer change.
func (s JobState) Terminal() bool { return s == JobCompleted || s == JobCanceled }

// CheckJobType accepts verify and upgrade.
func CheckJobType(field string, t JobType) error {
	switch t {
	case JobVerify, JobUpgrade:
		return nil
	}
	return Invalid(field, "type %q is not one of verify, upgrade", t)
}

// CheckSelection accepts static and dynamic.
func CheckSelection(field string, s Selection) error {
	switch s {
	case SelectStatic, SelectDynamic:
		return nil
	}
	return Invalid(field, "selection %q is not one of static, dynamic", s)
}

// CheckJobState accepts the job states (a filter names them).
func CheckJobState(field string, s JobState) error {
	switch s {
	case JobPlanned, JobRunning, JobPaused, JobCompleted, JobCanceled:
		return nil
	}
	return Invalid(field, "job state %q is not one of planned, running, paused, completed, canceled", s)
}

// OverwriteMode decides what happens when a targeted device already has an
// active task on the same module (Alibaba OverwriteMode).
type OverwriteMode string

const (
	OverwriteKeep    OverwriteMode = "keep"      // 1: keep the existing task; the new one is skipped
	OverwriteReplace OverwriteMode = "overwrite" // 2: cancel a pending (not yet in-progress) task and take over
)

// TimeoutFrom says when a task's timeout clock starts.
type TimeoutFrom string

const (
	TimeoutFromNotified   TimeoutFrom = "notified"    // when the device is notified while online
	TimeoutFromInProgress TimeoutFrom = "in_progress" // when the device reports its first progress
)

// Target is who a job is for. Fields combine as an intersection: All or
// Devices or Groups choose the candidate set; SourceVersions and GrayPercent
// narrow it. The package narrows it too: devices already on its version, and
// devices not on one of its source versions, are never candidates.
type Target struct {
	All     bool
	Devices []string
	Groups  []string
	// Attributes and Tags choose the devices that carry every one of these
	// key → value labels (both maps, when both are set).
	Attributes     map[string]string
	Tags           map[string]string
	GrayPercent    float64 // 0 = no sampling; (0,100] with ≤3 decimals = that share of candidates (static jobs only)
	SourceVersions []string
}

// MatchesLabels reports whether a device carries every attribute and tag the
// target names (true when it names none).
func (t *Target) MatchesLabels(d *Device) bool {
	for k, v := range t.Attributes {
		if got, ok := d.Attributes[k]; !ok || got != v {
			return false
		}
	}
	for k, v := range t.Tags {
		if got, ok := d.Tags[k]; !ok || got != v {
			return false
		}
	}
	return true
}

// GrayCount is how many of n candidates a job takes: all of them without
// gray sampling, else floor(n × GrayPercent / 100) and at least 1 (Alibaba
// GrayPercent: "rounded down, minimum 1"). The percentage is taken in
// thousandths so that 33.3 % of 1000 is exactly 333, not 332.
func (t *Target) GrayCount(n int64) int64 {
	if t.GrayPercent <= 0 || n <= 0 {
		return n
	}
	milli := int64(math.Round(t.GrayPercent * 1000))
	k := n * milli / 100_000
	if k < 1 {
		k = 1
	}
	return k
}

// GrayUniform is the deterministic pseudo-random number in [0, 1) that gray
// sampling draws for a device of a job: the same job and device always get
// the same number, on every replica and after a restart.
func GrayUniform(jobID, device string) float64 {
	h := fnv.New64a()
	h.Write([]byte(jobID))
	h.Write([]byte{0})
	h.Write([]byte(device))
	// FNV alone mixes a change in the last bytes poorly into the high bits
	// (names differ in their last digits); the SplitMix64 finalizer fixes it.
	x := h.Sum64()
	x = (x ^ (x >> 30)) * 0xbf58476d1ce4e5b9
	x = (x ^ (x >> 27)) * 0x94d049bb133111eb
	x ^= x >> 31
	return float64(x>>11) / (1 << 53)
}

// GrayPick decides whether the next of n candidates, visited in a fixed
// order, is taken when seen candidates have been visited and picked taken so
// far, so that exactly k are taken in all (selection sampling, Knuth's
// Algorithm S) while only two counters are kept: no candidate list is ever
// held in memory. u is the candidate's GrayUniform. If candidates appear
// beyond n (the fleet grew meanwhile) none is taken once k are.
func GrayPick(u float64, seen, picked, n, k int64) bool {
	need := k - picked
	if need <= 0 {
		return false
	}
	left := n - seen
	if left <= need {
		return true
	}
	return u*float64(left) < float64(need)
}

// DailyWindow limits dispatch to a time of day: From and To are minutes after
// local midnight at UTCOffsetMinutes; From is inclusive, To exclusive (1440 =
// 24:00). From > To spans midnight.
type DailyWindow struct {
	FromMinute       int
	ToMinute         int
	UTCOffsetMinutes int
}

// Contains reports whether t falls inside the window.
func (w *DailyWindow) Contains(t time.Time) bool {
	local := t.UTC().Add(time.Duration(w.UTCOffsetMinutes) * time.Minute)
	m := local.Hour()*60 + local.Minute()
	if w.FromMinute < w.ToMinute {
		return m >= w.FromMinute && m < w.ToMinute
	}
	return m >= w.FromMinute || m < w.ToMinute // spans midnight
}

// ParseTimeOfDay reads "HH:MM" (00:00–24:00) as minutes after midnight.
func ParseTimeOfDay(field, s string) (int, error) {
	digit := func(i int) (int, bool) { return int(s[i] - '0'), s[i] >= '0' && s[i] <= '9' }
	if len(s) != 5 || s[2] != ':' {
		return 0, Invalid(field, "time of day %q must be HH:MM, e.g. 02:30", s)
	}
	h1, ok1 := digit(0)
	h2, ok2 := digit(1)
	m1, ok3 := digit(3)
	m2, ok4 := digit(4)
	if !ok1 || !ok2 || !ok3 || !ok4 {
		return 0, Invalid(field, "time of day %q must be HH:MM, e.g. 02:30", s)
	}
	h, m := h1*10+h2, m1*10+m2
	if h > 24 || m > 59 || (h == 24 && m != 0) {
		return 0, Invalid(field, "time of day %q must be between 00:00 and 24:00", s)
	}
	return h*60 + m, nil
}

// FormatTimeOfDay writes minutes after midnight as "HH:MM".
func FormatTimeOfDay(minutes int) string {
	return fmt.Sprintf("%02d:%02d", minutes/60, minutes%60)
}

// Schedule is when a job may dispatch. Zero times mean "now" and "never".
type Schedule struct {
	Start  time.Time
	Finish time.Time
	Window *DailyWindow
}

// Retry re-queues failed tasks (not timed-out or canceled ones) after
// Interval, at most Count times: a task is notified at most Count+1 times.
type Retry struct {
	Count    int
	Interval time.Duration
}

// Abort cancels the job when failed/finished ≥ FailurePercent once at least
// MinFinished tasks have finished, finished meaning succeeded or failed (an
// operator's cancel is not an outcome of the update). FailurePercent 0
// disables it.
type Abort struct {
	FailurePercent float64
	MinFinished    int
}

// Job limits and defaults.
const (
	DefaultMaxConcurrency = 300
	MaxMaxConcurrency     = 1_000_000
	DefaultTimeoutSeconds = 7200
	MinTimeoutSeconds     = 300
	MaxTimeoutSeconds     = 172_800
	MaxPerMinuteLimit     = 10_000 // Alibaba MaximumPerMinute 10–10000
	MinPerMinuteLimit     = 10
	MaxRetryCount         = 5                  // Huawei retry_count ≤5
	MaxRetryInterval      = 1440 * time.Minute // Huawei retry_interval ≤1440 min
	GrayPercentDecimals   = 3                  // Alibaba GrayPercent: up to 3 decimals
	MaxJobDevices         = 30_000             // Huawei targets ≤30 000
	MaxJobNameLen         = 128                // Huawei task_name ≤128
	MaxVerifyDevices      = 10                 // Alibaba CreateOTAVerifyJob ≤10 devices
	MaxJobSourceVersions  = 20
	MaxScheduleAhead      = 7 * 24 * time.Hour // Huawei/Alibaba: start at most 7 days ahead
	MaxExtInfoLen         = 512                // Huawei task_ext_info ≤512
)

// Job is a rollout of one package to a set of devices.
type Job struct {
	ID          string
	TenantID    string
	PackageID   string
	ProductKey  string // copied from the package
	Module      string // the package's TargetModule (SoftwareModule for software packages)
	Name        string
	LocalNames  map[string]string // the name in other languages, by locale such as en_US (CheckLocalNames)
	Description string
	Type        JobType
	Selection   Selection
	Target      Target
	Schedule    Schedule

	MaxConcurrency int // tasks notified or in progress at once
	MaxPerMinute   int // notices per minute; 0 = unlimited
	Retry          Retry
	TimeoutSeconds int

	// AllowDowngrade lets the job move devices to an older version than
	// theirs (Package.Refuses); without it such devices are skipped
	// (ReasonDowngrade).
	AllowDowngrade bool
	// TimeoutFrom is when a task's timeout clock starts: at the notice
	// (Huawei, Alibaba) or at the device's first progress report (EnOS).
	TimeoutFrom TimeoutFrom
	// PackageKind is copied from the package, so that jobs filter by it.
	PackageKind PackageKind

	NeedPush           bool // the engine pushes notices; false: devices must pull (the native API defaults it to true)
	NeedConfirm        bool // tasks wait in TaskConfirm for an operator
	Overwrite          OverwriteMode
	AllowDeviceRequest bool // devices may ask for this update themselves
	Abort              Abort
	Tags               []Tag
	ExtInfo            string // free text sent to devices with the notice (Huawei task_ext_info ≤512)
	Space              string // resource space label (Huawei app_id)

	State       JobState
	StateReason string // why it is paused/canceled/completed early (abort threshold, finish time…)
	// Outcome is set when the job ends (ota.Outcome of its final counts), so
	// that jobs filter by it; empty while it runs.
	Outcome JobOutcome
	// Materialized is true once every task of the job's initial device set
	// exists (for a dynamic job, later matches are added as devices report).
	// MaterializeCursor is the engine's opaque resume point while
	// materializing: the last device name processed, plus the gray sampling
	// counters for a gray job (service/materialize.go).
	Materialized      bool
	MaterializeCursor string

	CreatedAt  time.Time
	UpdatedAt  time.Time
	StartedAt  time.Time
	FinishedAt time.Time
}

// Normalize fills defaults.
func (j *Job) Normalize() {
	if j.Type == "" {
		j.Type = JobUpgrade
	}
	if j.Selection == "" {
		j.Selection = SelectStatic
	}
	if j.MaxConcurrency == 0 {
		j.MaxConcurrency = DefaultMaxConcurrency
	}
	if j.TimeoutSeconds == 0 {
		j.TimeoutSeconds = DefaultTimeoutSeconds
	}
	if j.Overwrite == "" {
		j.Overwrite = OverwriteKeep
	}
	if j.TimeoutFrom == "" {
		j.TimeoutFrom = TimeoutFromNotified
	}
}

func checkJobName(field, s string) error { return CheckDisplayName(field, s, MaxJobNameLen, true) }

// Validate checks a new job against the documented limits. now is used for
// schedule checks.
func (j *Job) Validate(now time.Time) error {
	if err := CheckJobType("type", j.Type); err != nil {
		return err
	}
	if err := CheckSelection("selection", j.Selection); err != nil {
		return err
	}
	if err := CheckDisplayName("name", j.Name, MaxJobNameLen, false); err != nil {
		return err
	}
	if err := CheckLocalNames("local_names", j.LocalNames, checkJobName); err != nil {
		return err
	}
	if err := CheckLen("description", j.Description, MaxDescriptionLen); err != nil {
		return err
	}
	if err := j.Target.validate(j.Type, j.Selection); err != nil {
		return err
	}
	if err := j.Schedule.validate(now); err != nil {
		return err
	}
	if j.MaxConcurrency < 1 || j.MaxConcurrency > MaxMaxConcurrency {
		return Invalid("max_concurrency", "max_concurrency must be 1 to %d, got %d", MaxMaxConcurrency, j.MaxConcurrency)
	}
	if j.MaxPerMinute != 0 && (j.MaxPerMinute < MinPerMinuteLimit || j.MaxPerMinute > MaxPerMinuteLimit) {
		return Invalid("max_per_minute", "max_per_minute must be %d to %d (or 0 for no limit), got %d", MinPerMinuteLimit, MaxPerMinuteLimit, j.MaxPerMinute)
	}
	if j.Retry.Count < 0 || j.Retry.Count > MaxRetryCount {
		return Invalid("retry.count", "retry count must be 0 to %d, got %d", MaxRetryCount, j.Retry.Count)
	}
	if j.Retry.Interval < 0 || j.Retry.Interval > MaxRetryInterval {
		return Invalid("retry.interval_seconds", "retry interval must be 0 to %d seconds, got %d", int(MaxRetryInterval/time.Second), int(j.Retry.Interval/time.Second))
	}
	if j.TimeoutSeconds < MinTimeoutSeconds || j.TimeoutSeconds > MaxTimeoutSeconds {
		return Invalid("timeout_seconds", "timeout_seconds must be %d to %d, got %d", MinTimeoutSeconds, MaxTimeoutSeconds, j.TimeoutSeconds)
	}
	switch j.TimeoutFrom {
	case TimeoutFromNotified, TimeoutFromInProgress:
	default:
		return Invalid("timeout_from", "timeout_from %q is not one of notified, in_progress", j.TimeoutFrom)
	}
	switch j.Overwrite {
	case OverwriteKeep, OverwriteReplace:
	default:
		return Invalid("overwrite", "overwrite %q is not one of keep, overwrite", j.Overwrite)
	}
	if j.Abort.FailurePercent < 0 || j.Abort.FailurePercent > 100 {
		return Invalid("abort.failure_percent", "abort failure_percent must be 0 to 100, got %v", j.Abort.FailurePercent)
	}
	if j.Target.GrayPercent > 0 && j.Selection != SelectStatic {
		return Invalid("target.gray_percent", "gray_percent samples a static job's devices; a dynamic job takes every device that matches")
	}
	if j.Abort.MinFinished < 0 {
		return Invalid("abort.min_finished", "abort min_finished must not be negative")
	}
	if err := CheckLen("ext_info", j.ExtInfo, MaxExtInfoLen); err != nil {
		return err
	}
	return CheckTags("tags", j.Tags)
}

func (t *Target) validate(typ JobType, sel Selection) error {
	chosen := 0
	if t.All {
		chosen++
	}
	if len(t.Devices) > 0 {
		chosen++
	}
	if len(t.Groups) > 0 {
		chosen++
	}
	if len(t.Attributes) > 0 || len(t.Tags) > 0 {
		chosen++
	}
	if chosen > 1 {
		return Invalid("target", "choose one of target.all, target.devices, target.groups or target.attributes/tags")
	}
	if chosen == 0 && len(t.SourceVersions) == 0 {
		return Invalid("target", "a job needs a target: all, devices, groups, attributes/tags or source_versions")
	}
	if err := CheckLabels("target.attributes", t.Attributes); err != nil {
		return err
	}
	if err := CheckLabels("target.tags", t.Tags); err != nil {
		return err
	}
	if typ == JobVerify {
		if len(t.Devices) == 0 {
			return Invalid("target.devices", "a verify job targets a list of devices (at most %d)", MaxVerifyDevices)
		}
		if len(t.Devices) > MaxVerifyDevices {
			return Invalid("target.devices", "a verify job may target at most %d devices, got %d", MaxVerifyDevices, len(t.Devices))
		}
		if sel != SelectStatic {
			return Invalid("selection", "a verify job is static")
		}
	}
	if sel == SelectDynamic && len(t.Devices) > 0 {
		return Invalid("selection", "a dynamic job targets all devices, groups or source versions, not a device list")
	}
	if len(t.Devices) > MaxJobDevices {
		return Invalid("target.devices", "at most %d devices per job, got %d", MaxJobDevices, len(t.Devices))
	}
	seen := make(map[string]bool, len(t.Devices))
	for _, d := range t.Devices {
		if err := CheckDeviceName("target.devices", d); err != nil {
			return err
		}
		if seen[d] {
			return Invalid("target.devices", "device %q is listed twice", d)
		}
		seen[d] = true
	}
	if len(t.Groups) > MaxDeviceGroups {
		return Invalid("target.groups", "at most %d groups per job, got %d", MaxDeviceGroups, len(t.Groups))
	}
	for _, g := range t.Groups {
		if err := CheckGroupID("target.groups", g); err != nil {
			return err
		}
	}
	if t.GrayPercent < 0 || t.GrayPercent > 100 {
		return Invalid("target.gray_percent", "gray_percent must be in (0, 100], got %v", t.GrayPercent)
	}
	if t.GrayPercent > 0 {
		// Compare in thousandths with a tolerance: 12.345*1000 is not exactly
		// 12345 in binary floating point.
		milli := t.GrayPercent * 1000
		if math.Abs(milli-math.Round(milli)) > 1e-6 {
			return Invalid("target.gray_percent", "gray_percent has at most %d decimals, got %v", GrayPercentDecimals, t.GrayPercent)
		}
	}
	if typ == JobVerify && t.GrayPercent > 0 {
		return Invalid("target.gray_percent", "a verify job runs on every listed device; gray_percent does not apply")
	}
	if len(t.SourceVersions) > MaxJobSourceVersions {
		return Invalid("target.source_versions", "at most %d source versions, got %d", MaxJobSourceVersions, len(t.SourceVersions))
	}
	for _, v := range t.SourceVersions {
		if err := CheckVersion("target.source_versions", v); err != nil {
			return err
		}
	}
	return nil
}

func (s *Schedule) validate(now time.Time) error {
	if !s.Start.IsZero() && s.Start.After(now.Add(MaxScheduleAhead)) {
		return Invalid("schedule.start", "start may be at most 7 days ahead")
	}
	if !s.Finish.IsZero() {
		start := s.Start
		if start.IsZero() {
			start = now
		}
		if !s.Finish.After(start) {
			return Invalid("schedule.finish", "finish must be after start")
		}
	}
	if w := s.Window; w != nil {
		if w.FromMinute < 0 || w.FromMinute >= 24*60 || w.ToMinute < 0 || w.ToMinute > 24*60 {
			return Invalid("schedule.window", "window from/to must be times of day between 00:00 and 24:00")
		}
		if w.FromMinute == w.ToMinute {
			return Invalid("schedule.window", "window from and to must differ")
		}
		if w.UTCOffsetMinutes < -12*60 || w.UTCOffsetMinutes > 14*60 {
			return Invalid("schedule.window.utc_offset_minutes", "utc_offset_minutes must be -720 to 840, got %d", w.UTCOffsetMinutes)
		}
	}
	return nil
}

// InWindow reports whether dispatch is allowed at t: after Start, before
// Finish, and inside the daily window if there is one.
func (s *Schedule) InWindow(t time.Time) bool {
	if !s.Start.IsZero() && t.Before(s.Start) {
		return false
	}
	if !s.Finish.IsZero() && !t.Before(s.Finish) {
		return false
	}
	if w := s.Window; w != nil {
		return w.Contains(t)
	}
	return true
}

// Started reports whether the start time has come at t.
func (s *Schedule) Started(t time.Time) bool { return s.Start.IsZero() || !t.Before(s.Start) }

// Over reports whether the finish time has passed at t: the job completes and
// its unfinished tasks are canceled.
func (s *Schedule) Over(t time.Time) bool { return !s.Finish.IsZero() && !t.Before(s.Finish) }

// ShouldAbort applies the abort threshold to the counts of finished tasks.
func (a Abort) ShouldAbort(failed, finished int64) bool {
	if a.FailurePercent <= 0 || finished == 0 || finished < int64(a.MinFinished) {
		return false
	}
	return float64(failed)*100/float64(finished) >= a.FailurePercent
}

// Tripped applies the threshold to a job's task counts: failed over
// succeeded+failed.
func (a Abort) Tripped(c TaskCounts) bool {
	return a.ShouldAbort(c[TaskFailed], c[TaskFailed]+c[TaskSucceeded])
}

// AfterFailure decides what a task that failed for reason at now becomes:
// retry_wait until now+Interval when the failure is retryable and the task
// has been notified at most Retry.Count times (so Count retries follow the
// first notice), else failed.
func (j *Job) AfterFailure(t Task, reason Reason, now time.Time) (TaskState, time.Time) {
	if reason.Retryable() && j.Retry.Count > 0 && t.Attempts <= j.Retry.Count {
		return TaskRetryWait, now.Add(j.Retry.Interval)
	}
	return TaskFailed, time.Time{}
}

// FirstTaskState is the state a new task of the job starts in.
func (j *Job) FirstTaskState() TaskState {
	if j.NeedConfirm {
		return TaskConfirm
	}
	return TaskQueued
}

// Admit decides the state a target device's task starts in, and why it is
// skipped when it is. d is nil for a listed device that is not registered.
// The order of the rules is the order an operator asks "why not?": does the
// device exist, is its version known, may the package and the job move it
// from there, is it online.
func (j *Job) Admit(pkg *Package, d *Device) (TaskState, Reason) {
	if d == nil {
		return TaskSkipped, ReasonNotFound
	}
	v := d.Version(j.Module)
	if v == "" {
		return TaskWaiting, ReasonNone
	}
	if r := pkg.Refuses(v, j.AllowDowngrade); r != ReasonNone {
		return TaskSkipped, r
	}
	if len(j.Target.SourceVersions) > 0 && !slices.Contains(j.Target.SourceVersions, v) {
		return TaskSkipped, ReasonSourceVersionMismatch
	}
	if !d.Online {
		return TaskWaiting, ReasonNone
	}
	return j.FirstTaskState(), ReasonNone
}

// Timeout is how long a notified task may wait for progress, and an
// in-progress task for the destination version.
func (j *Job) Timeout() time.Duration { return time.Duration(j.TimeoutSeconds) * time.Second }

// AcceptsDeviceRequests reports whether a device that asks for its update may
// claim its queued task: the job allows device requests, or devices must pull.
func (j *Job) AcceptsDeviceRequests() bool { return j.AllowDeviceRequest || !j.NeedPush }
