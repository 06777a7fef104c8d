package huaweiiotda

import (
	"bytes"
	"encoding/json"
	"fmt"
	"math"
	"net/url"
	"strconv"
	"strings"
	"time"
	"unicode"
	"unicode/utf8"

	"github.com/updraft-ota/updraft/internal/ota"
	"github.com/updraft-ota/updraft/internal/service"
	"github.com/updraft-ota/updraft/internal/store"
)

// Huawei request-shape rules that have no native counterpart (and so no
// constant in ota): paging, per-operation target lists, id formats.
const (
	defaultLimit      = 10
	maxLimit          = 50  // limit: 1–50
	maxOffset         = 500 // offset: 0–500
	markerLen         = 24  // marker: 24 hex digits
	maxOpTargets      = 100 // stop/retry/confirm: at most 100 targets
	maxDeviceIDLen    = 128 // device_id ≤128 [A-Za-z0-9_-]
	defaultMarker     = "ffffffffffffffffffffffff"
	packageNameSuffix = 8 // random hex digits that keep generated package names unique
)

// Huawei's names for package kinds and task types.
var (
	packageTypes = map[string]ota.PackageKind{
		"firmwarePackage": ota.KindFirmware,
		"softwarePackage": ota.KindSoftware,
		"modulePackage":   ota.KindModule,
	}
	taskTypes = map[string]ota.PackageKind{
		"firmwareUpgrade": ota.KindFirmware,
		"softwareUpgrade": ota.KindSoftware,
		"moduleUpgrade":   ota.KindModule,
	}
)

func packageType(k ota.PackageKind) string { return reverse(packageTypes, k) }
func taskType(k ota.PackageKind) string    { return reverse(taskTypes, k) }

func reverse(m map[string]ota.PackageKind, k ota.PackageKind) string {
	for name, v := range m {
		if v == k {
			return name
		}
	}
	return ""
}

// formatTime renders yyyyMMdd'T'HHmmss'Z' in UTC; zero is "".
func formatTime(t time.Time) string {
	if t.IsZero() {
		return ""
	}
	return t.UTC().Format(sdkDateFormat)
}

// ---- device ids -------------------------------------------------------------

// DeviceID is Huawei's device_id for an Updraft device: {product_id}_{node_id},
// the rule IoTDA itself uses when it allocates ids.
func DeviceID(productKey, name string) string { return productKey + "_" + name }

// nameInProduct returns the device name of a Huawei device_id known to belong
// to productKey.
func nameInProduct(productKey, deviceID string) (string, bool) {
	name, ok := strings.CutPrefix(deviceID, productKey+"_")
	return name, ok && name != ""
}

// SplitCandidates lists the (product key, device name) readings of a device_id,
// longest product key first: "a_b_c" → (a_b, c), (a, b_c). Product keys and
// device names may both contain "_"; the first reading that names a registered
// device wins (the longest registered product prefix).
func SplitCandidates(deviceID string) []ota.DeviceRef {
	var out []ota.DeviceRef
	for i := len(deviceID) - 1; i > 0; i-- {
		if deviceID[i] == '_' && i < len(deviceID)-1 {
			out = append(out, ota.DeviceRef{ProductKey: deviceID[:i], Name: deviceID[i+1:]})
		}
	}
	return out
}

func checkDeviceID(field, id string) error {
	if id == "" || len(id) > maxDeviceIDLen {
		return ota.Invalid(field, "device_id %q must be 1 to %d characters", id, maxDeviceIDLen)
	}
	return checkChars(field, "device_id", id, "_-", false)
}

// checkChars allows ASCII letters and digits, the extra characters, and Chinese
// characters when han is set.
func checkChars(field, what, s, extra string, han bool) error {
	for _, r := range s {
		ok := r < utf8.RuneSelf && (unicode.IsLetter(r) || unicode.IsDigit(r)) ||
			strings.ContainsRune(extra, r) || han && unicode.Is(unicode.Han, r)
		if !ok {
			return ota.Invalid(field, "%s %q contains %q, which is not allowed", what, s, r)
		}
	}
	return nil
}

// checkAppID: app_id ≤36 of [A-Za-z0-9_-].
func checkAppID(s string, required bool) error {
	if s == "" {
		if required {
			return ota.Invalid("app_id", "app_id is required")
		}
		return nil
	}
	if utf8.RuneCountInString(s) > ota.HuaweiMaxAppIDLen {
		return ota.Invalid("app_id", "app_id may be at most %d characters, got %d", ota.HuaweiMaxAppIDLen, utf8.RuneCountInString(s))
	}
	return checkChars("app_id", "app_id", s, "_-", false)
}

// ---- paging -----------------------------------------------------------------

type pageQuery struct {
	limit  int
	offset int
	marker string // "" = from the newest
}

// storePage is the store's page for Huawei's marker (ids below it),
// offset and limit.
func (pq pageQuery) storePage() store.Page {
	return store.Page{Limit: pq.limit, Offset: pq.offset, BeforeID: pq.marker}
}

type pageInfo struct {
	Count  int64  `json:"count"`
	Marker string `json:"marker,omitempty"`
}

func parsePage(q url.Values) (pageQuery, error) {
	p := pageQuery{limit: defaultLimit}
	if v := q.Get("limit"); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil || n < 1 || n > maxLimit {
			return p, ota.Invalid(fieldLimit, "limit must be an integer from 1 to %d, got %q", maxLimit, v)
		}
		p.limit = n
	}
	if v := q.Get("offset"); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil || n < 0 || n > maxOffset {
			return p, ota.Invalid("offset", "offset must be an integer from 0 to %d, got %q", maxOffset, v)
		}
		p.offset = n
	}
	if v := q.Get("marker"); v != "" {
		if len(v) != markerLen || strings.Trim(strings.ToLower(v), "0123456789abcdef") != "" {
			return p, ota.Invalid("marker", "marker must be %d hex digits (the marker of the previous page), got %q", markerLen, v)
		}
		if v = strings.ToLower(v); v != defaultMarker {
			p.marker = v
		}
	}
	return p, nil
}

// taskMarker encodes a sub-task id as a 24-hex marker.
func taskMarker(id int64) string { return fmt.Sprintf("%024x", id) }

func parseTaskMarker(m string) int64 {
	if m == "" {
		return 0
	}
	n, err := strconv.ParseUint(m, 16, 64)
	if err != nil || n > math.MaxInt64 {
		// Beyond every sub-task id (parsePage already checked the digits):
		// the page after it is empty, not the first page again.
		return math.MaxInt64
	}
	return int64(n)
}

// ---- packages ---------------------------------------------------------------

type obsLocation struct {
	RegionName string `json:"region_name"`
	BucketName string `json:"bucket_name"`
	ObjectKey  string `json:"object_key"`
	SignMethod string `json:"sign_method,omitempty"`
	Sign       string `json:"sign,omitempty"`
}

type fileLocation struct {
	ObsLocation *obsLocation `json:"obs_location,omitempty"`
}

type createOtaPackageRequest struct {
	AppID                 string        `json:"app_id"`
	PackageType           string        `json:"package_type"`
	ProductID             string        `json:"product_id"`
	ModuleName            *string       `json:"module_name"`
	Version               string        `json:"version"`
	SupportSourceVersions []string      `json:"support_source_versions"`
	Description           string        `json:"description"`
	CustomInfo            string        `json:"custom_info"`
	FileLocation          *fileLocation `json:"file_location"`
}

// otaPackage is CreateOtaPackageResponse / ShowOtaPackageResponse, and, without
// file_location, OtaPackageInfo.
type otaPackage struct {
	PackageID             string        `json:"package_id"`
	AppID                 string        `json:"app_id,omitempty"`
	PackageType           string        `json:"package_type"`
	ProductID             string        `json:"product_id"`
	ProductName           string        `json:"product_name,omitempty"`
	ModuleName            string        `json:"module_name,omitempty"`
	Version               string        `json:"version"`
	SupportSourceVersions []string      `json:"support_source_versions,omitempty"`
	Description           string        `json:"description,omitempty"`
	CustomInfo            string        `json:"custom_info,omitempty"`
	CreateTime            string        `json:"create_time"`
	FileLocation          *fileLocation `json:"file_location,omitempty"`
}

type listOtaPackagesResponse struct {
	Packages []otaPackage `json:"packages"`
	Page     pageInfo     `json:"page"`
}

// packageName makes the name an IoTDA package does not have: the version with
// characters a package name cannot hold replaced by "_", cut to fit, and a
// random suffix so the same version can be registered for several products or
// kinds (package names are unique per tenant).
func packageName(version, suffix string) string {
	var b strings.Builder
	for _, r := range version {
		if r < utf8.RuneSelf && (unicode.IsLetter(r) || unicode.IsDigit(r)) || r == '-' || r == '_' {
			b.WriteRune(r)
		} else {
			b.WriteByte('_')
		}
	}
	base := b.String()
	if base == "" || !(unicode.IsLetter(rune(base[0])) || unicode.IsDigit(rune(base[0]))) {
		base = "v" + base
	}
	if max := ota.MaxPackageNameLen - 1 - len(suffix); len(base) > max {
		base = base[:max]
	}
	return base + "-" + suffix
}

// toPackage translates a CreateOtaPackage body. It checks what is Huawei's
// alone (required fields, app_id, the sign method, module_name only with
// modulePackage); the rest is ota's and the service's.
func (req *createOtaPackageRequest) toPackage() (ota.Package, string, string, error) {
	if err := checkAppID(req.AppID, true); err != nil {
		return ota.Package{}, "", "", err
	}
	kind, ok := packageTypes[req.PackageType]
	if !ok {
		return ota.Package{}, "", "", ota.Invalid("package_type", "package_type %q is not one of firmwarePackage, softwarePackage, modulePackage", req.PackageType)
	}
	module := ota.DefaultModule
	if req.ModuleName != nil && *req.ModuleName != "" {
		if kind != ota.KindModule {
			return ota.Package{}, "", "", ota.Invalid("module_name", "module_name is only allowed with package_type modulePackage")
		}
		module = *req.ModuleName
	}
	if kind == ota.KindModule && (req.ModuleName == nil || *req.ModuleName == "") {
		return ota.Package{}, "", "", ota.Invalid("module_name", "module_name is required with package_type modulePackage")
	}
	if req.FileLocation == nil || req.FileLocation.ObsLocation == nil {
		return ota.Package{}, "", "", ota.Invalid("file_location", "file_location.obs_location is required: name the bucket and object key of the package file")
	}
	obs := req.FileLocation.ObsLocation
	if err := ota.CheckRegionName("region_name", obs.RegionName); err != nil {
		return ota.Package{}, "", "", err
	}
	method, err := ota.ParseSignMethod(obs.SignMethod)
	if err != nil || method != ota.SignSHA256 {
		return ota.Package{}, "", "", ota.Invalid("sign_method", "sign_method %q is not supported: only SHA256 is", obs.SignMethod)
	}
	pkg := ota.Package{
		ProductKey:     req.ProductID,
		Module:         module,
		Kind:           kind,
		Name:           packageName(req.Version, ota.NewSecret(packageNameSuffix/2)),
		Version:        req.Version,
		SourceVersions: req.SupportSourceVersions,
		Description:    req.Description,
		CustomInfo:     req.CustomInfo,
		SignMethod:     method,
		Sign:           obs.Sign,
		Space:          req.AppID,
		Region:         obs.RegionName,
		External:       true,
	}
	return pkg, obs.BucketName, obs.ObjectKey, nil
}

func fromPackage(p ota.Package, productName string, withFile bool) otaPackage {
	out := otaPackage{
		PackageID:             p.ID,
		AppID:                 p.Space,
		PackageType:           packageType(p.Kind),
		ProductID:             p.ProductKey,
		ProductName:           productName,
		Version:               p.Version,
		SupportSourceVersions: p.SourceVersions,
		Description:           p.Description,
		CustomInfo:            p.CustomInfo,
		CreateTime:            formatTime(p.CreatedAt),
	}
	if p.Kind == ota.KindModule {
		out.ModuleName = p.Module
	}
	if withFile {
		out.FileLocation = &fileLocation{ObsLocation: &obsLocation{
			RegionName: p.Region,
			BucketName: p.Bucket,
			ObjectKey:  p.Key,
			Sign:       p.Sign,
		}}
	}
	return out
}

// ---- batch tasks ------------------------------------------------------------

type taskPolicy struct {
	ScheduleTime  *string `json:"schedule_time,omitempty"`
	RetryCount    *int32  `json:"retry_count,omitempty"`
	RetryInterval *int32  `json:"retry_interval,omitempty"`
}

type createBatchTaskRequest struct {
	AppID          string                     `json:"app_id"`
	TaskName       string                     `json:"task_name"`
	TaskType       string                     `json:"task_type"`
	TaskMode       *string                    `json:"task_mode"`
	NeedConfirm    bool                       `json:"need_confirm"`
	TaskExtInfo    json.RawMessage            `json:"task_ext_info"`
	Targets        []string                   `json:"targets"`
	TargetsFilter  map[string]json.RawMessage `json:"targets_filter"`
	Document       json.RawMessage            `json:"document"`
	TaskPolicy     *taskPolicy                `json:"task_policy"`
	DocumentSource *string                    `json:"document_source"`
}

type taskProgress struct {
	Total         int32 `json:"total"`
	Processing    int32 `json:"processing"`
	Success       int32 `json:"success"`
	Fail          int32 `json:"fail"`
	Waitting      int32 `json:"waitting"`
	FailWaitRetry int32 `json:"fail_wait_retry"`
	Stopped       int32 `json:"stopped"`
	Removed       int32 `json:"removed"`
}

// batchTask is Huawei's Task (CreateBatchTaskResponse, batchtask, batchtasks[]).
type batchTask struct {
	TaskID        string          `json:"task_id"`
	TaskName      string          `json:"task_name"`
	TaskType      string          `json:"task_type"`
	NeedConfirm   bool            `json:"need_confirm"`
	TaskExtInfo   json.RawMessage `json:"task_ext_info,omitempty"`
	Targets       []string        `json:"targets,omitempty"`
	TargetsFilter map[string]any  `json:"targets_filter,omitempty"`
	Document      map[string]any  `json:"document"`
	TaskPolicy    *taskPolicy     `json:"task_policy,omitempty"`
	Status        string          `json:"status"`
	StatusDesc    string          `json:"status_desc,omitempty"`
	TaskProgress  taskProgress    `json:"task_progress"`
	CreateTime    string          `json:"create_time"`
}

type errorInfo struct {
	ErrorCode string `json:"error_code"`
	ErrorMsg  string `json:"error_msg"`
}

type taskDetail struct {
	Target string     `json:"target"`
	Status string     `json:"status"`
	Output string     `json:"output,omitempty"`
	Error  *errorInfo `json:"error,omitempty"`
}

type showBatchTaskResponse struct {
	Batchtask   batchTask    `json:"batchtask"`
	TaskDetails []taskDetail `json:"task_details"`
	Page        pageInfo     `json:"page"`
}

type listBatchTasksResponse struct {
	Batchtasks []batchTask `json:"batchtasks"`
	Page       pageInfo    `json:"page"`
}

type batchTargets struct {
	Targets []string `json:"targets"`
}

type batchTargetResult struct {
	Target    string `json:"target"`
	Status    string `json:"status"` // success | failure
	ErrorCode string `json:"error_code,omitempty"`
	ErrorMsg  string `json:"error_msg,omitempty"`
}

type batchTargetResults struct {
	Targets []batchTargetResult `json:"targets"`
}

// Sub-task statuses (ShowBatchTask task_detail_status / task_details[].status).
const (
	statusWaitting      = "Waitting" // sic: Huawei's spelling
	statusProcessing    = "Processing"
	statusSuccess       = "Success"
	statusFail          = "Fail"
	statusFailWaitRetry = "FailWaitRetry"
	statusStopped       = "Stopped"
	statusRemoved       = "Removed"
	// Task-only statuses.
	statusInitializing   = "Initializing"
	statusPartialSuccess = "PartialSuccess"
	statusStopping       = "Stopping"
)

// subTaskStatus maps task states per spec §4.
var subTaskStatus = map[ota.TaskState]string{
	ota.TaskWaiting:    statusWaitting,
	ota.TaskSkipped:    statusFail, // error_code says why (the skip reason)
	ota.TaskConfirm:    statusWaitting,
	ota.TaskQueued:     statusWaitting,
	ota.TaskNotified:   statusProcessing,
	ota.TaskInProgress: statusProcessing,
	ota.TaskSucceeded:  statusSuccess,
	ota.TaskFailed:     statusFail,
	ota.TaskRetryWait:  statusFailWaitRetry,
	ota.TaskCanceled:   statusStopped,
}

// statesFor returns the task states a sub-task status stands for; nil for
// Removed, which Updraft never produces.
func statesFor(status string) ([]ota.TaskState, error) {
	var out []ota.TaskState
	for _, s := range ota.TaskStates {
		if subTaskStatus[s] == status {
			out = append(out, s)
		}
	}
	if out == nil && status != statusRemoved {
		return nil, ota.Invalid("task_detail_status", "task_detail_status %q is not one of Waitting, Processing, Success, Fail, FailWaitRetry, Stopped, Removed", status)
	}
	return out, nil
}

func progressOf(c ota.TaskCounts) taskProgress {
	return taskProgress{
		Total:         int32(c.Total()),
		Processing:    int32(c[ota.TaskNotified] + c[ota.TaskInProgress]),
		Success:       int32(c[ota.TaskSucceeded]),
		Fail:          int32(c[ota.TaskFailed] + c[ota.TaskSkipped]),
		Waitting:      int32(c[ota.TaskWaiting] + c[ota.TaskConfirm] + c[ota.TaskQueued]),
		FailWaitRetry: int32(c[ota.TaskRetryWait]),
		Stopped:       int32(c[ota.TaskCanceled]),
	}
}

// taskStatus derives a batch task's status from its job and counts.
func taskStatus(v service.JobView) string {
	j := v.Job
	switch j.State {
	case ota.JobPlanned:
		return statusWaitting
	case ota.JobRunning, ota.JobPaused:
		if !j.Materialized {
			return statusInitializing
		}
		return statusProcessing
	}
	switch v.Outcome() { // stored when the job ended; listings filter by it
	case ota.OutcomeCanceled:
		return statusStopped
	case ota.OutcomeSucceeded:
		return statusSuccess
	case ota.OutcomePartial:
		return statusPartialSuccess
	case ota.OutcomeFailed:
		return statusFail
	}
	return statusProcessing
}

var taskStatuses = []string{statusInitializing, statusWaitting, statusProcessing, statusSuccess, statusFail, statusPartialSuccess, statusStopped, statusStopping}

// reasonText is the error_msg of a failed or stopped sub-task; the strings
// Huawei's console shows are used where they exist.
var reasonText = map[ota.Reason]string{
	ota.ReasonDownloadFailed:        "Download of the package failed",
	ota.ReasonVerifyFailed:          "Integrity check failure for new downloaded package",
	ota.ReasonInstallFailed:         "Installation of the package failed",
	ota.ReasonUpgradeFailed:         "The device reported an upgrade failure",
	ota.ReasonDeviceRejected:        "The device declined the upgrade",
	ota.ReasonTimeout:               "Wait for the device to report upgrade result timeout",
	ota.ReasonCanceled:              "Stopped by the user",
	ota.ReasonJobCanceled:           "The batch task was stopped",
	ota.ReasonJobFinished:           "The batch task ended before the device upgraded",
	ota.ReasonOverwritten:           "Replaced by a newer task",
	ota.ReasonWrongVersion:          "The device reported a version other than the package version",
	ota.ReasonSourceVersionMismatch: "The device version is not a supported source version",
	ota.ReasonNotFound:              "Device not found",
	ota.ReasonBusyInOtherJob:        "Task Conflict",
	ota.ReasonAlreadyOnVersion:      "The device already runs the package version",
	ota.ReasonDowngrade:             "The package version is older than the device version",
}

func detailOf(t ota.Task) taskDetail {
	d := taskDetail{Target: DeviceID(t.ProductKey, t.DeviceName), Status: subTaskStatus[t.State]}
	if (t.State == ota.TaskFailed || t.State == ota.TaskCanceled || t.State == ota.TaskRetryWait || t.State == ota.TaskSkipped) &&
		t.Reason != ota.ReasonNone {
		msg := reasonText[t.Reason]
		if msg == "" {
			msg = string(t.Reason)
		}
		if t.Detail != "" {
			msg += ": " + t.Detail
		}
		d.Error = &errorInfo{ErrorCode: string(t.Reason), ErrorMsg: msg}
	} else if t.Detail != "" {
		d.Output = t.Detail
	}
	return d
}

// extInfoToJob stores task_ext_info: a JSON string as its text, any other JSON
// value as its compact encoding; ota limits the result to 512 characters.
func extInfoToJob(raw json.RawMessage) (string, error) {
	raw = bytes.TrimSpace(raw)
	if len(raw) == 0 || bytes.Equal(raw, []byte("null")) {
		return "", nil
	}
	var s string
	if json.Unmarshal(raw, &s) == nil {
		return s, nil
	}
	var buf bytes.Buffer
	if err := json.Compact(&buf, raw); err != nil {
		return "", ota.Invalid(fieldBody, "task_ext_info is not valid JSON")
	}
	return buf.String(), nil
}

// extInfoFromJob gives task_ext_info back: JSON objects and arrays as JSON,
// anything else as a string.
func extInfoFromJob(s string) json.RawMessage {
	if s == "" {
		return nil
	}
	if t := strings.TrimSpace(s); (strings.HasPrefix(t, "{") || strings.HasPrefix(t, "[")) && json.Valid([]byte(t)) {
		return json.RawMessage(t)
	}
	b, _ := json.Marshal(s)
	return b
}

// packageIDOf reads document: {"package_ids": [id]} (current docs) or
// {"package_id": id} (older docs and the response model).
func packageIDOf(raw json.RawMessage) (string, error) {
	var doc struct {
		PackageID  *string  `json:"package_id"`
		PackageIDs []string `json:"package_ids"`
	}
	if len(bytes.TrimSpace(raw)) == 0 || bytes.Equal(bytes.TrimSpace(raw), []byte("null")) {
		return "", ota.Invalid("document", `document is required for an upgrade task: {"package_ids": ["<package_id>"]}`)
	}
	if err := json.Unmarshal(raw, &doc); err != nil {
		return "", ota.Invalid(fieldBody, `document must be {"package_ids": ["<package_id>"]} or {"package_id": "<package_id>"}`)
	}
	ids := doc.PackageIDs
	if doc.PackageID != nil {
		ids = append(ids, *doc.PackageID)
	}
	switch {
	case len(ids) == 0:
		return "", ota.Invalid("document", "document names no package: set package_ids")
	case len(ids) > 1:
		for _, id := range ids[1:] {
			if id != ids[0] {
				return "", ota.Errorf(ota.CodeUnsupported, "a batch task upgrades one package in Updraft; document names %d", len(ids))
			}
		}
	}
	if ids[0] == "" {
		return "", ota.Invalid("document", "document.package_ids holds an empty id")
	}
	return ids[0], nil
}

// groupIDsOf reads targets_filter: only group_ids is supported.
func groupIDsOf(f map[string]json.RawMessage) ([]string, error) {
	var groups []string
	for k, v := range f {
		if k != "group_ids" {
			return nil, ota.Invalid("targets_filter", "targets_filter key %q is not supported: use group_ids", k)
		}
		if err := json.Unmarshal(v, &groups); err != nil {
			return nil, ota.Invalid(fieldBody, "targets_filter.group_ids must be an array of group ids")
		}
	}
	return groups, nil
}

// taskNameCheck: task_name is required (Huawei) and a job name (ota's length
// rule), of Chinese characters, letters, digits and "_" only (Huawei).
func taskNameCheck(s string) error {
	if err := ota.CheckDisplayName("task_name", s, ota.MaxJobNameLen, true); err != nil {
		return err
	}
	return checkChars("task_name", "task_name", s, "_", true)
}

// validate checks what a CreateBatchTask body can be judged on alone, so a
// bad request is refused before any lookup.
func (req *createBatchTaskRequest) validate() error {
	if _, ok := taskTypes[req.TaskType]; !ok {
		return ota.Errorf(ota.CodeUnsupported, "task_type %q is not supported: Updraft serves firmwareUpgrade, softwareUpgrade and moduleUpgrade", req.TaskType)
	}
	if err := checkAppID(req.AppID, false); err != nil {
		return err
	}
	if err := taskNameCheck(req.TaskName); err != nil {
		return err
	}
	if req.TaskMode != nil {
		return ota.Errorf(ota.CodeUnsupported, "task_mode %q (gateway mode) is not supported by Updraft", *req.TaskMode)
	}
	if _, err := extInfoToJob(req.TaskExtInfo); err != nil {
		return err
	}
	for _, id := range req.Targets {
		if err := checkDeviceID("targets", id); err != nil {
			return err
		}
	}
	if _, err := groupIDsOf(req.TargetsFilter); err != nil {
		return err
	}
	if pol := req.TaskPolicy; pol != nil {
		if pol.ScheduleTime != nil && *pol.ScheduleTime != "" {
			if _, err := time.Parse(sdkDateFormat, *pol.ScheduleTime); err != nil {
				return ota.Invalid(fieldScheduleTime, "schedule_time %q is not in the format yyyyMMdd'T'HHmmss'Z' (e.g. 20151212T121212Z)", *pol.ScheduleTime)
			}
		}
		if (pol.RetryCount == nil) != (pol.RetryInterval == nil) {
			return ota.Invalid("task_policy", "retry_count and retry_interval go together: set both or neither")
		}
	}
	return nil
}

// toJob translates a CreateBatchTask body that passed validate for its
// package. Limits (targets ≤30 000, schedule ≤7 days ahead, retries, ext info
// ≤512) are ota's.
func (req *createBatchTaskRequest) toJob(pkg ota.Package) (ota.Job, error) {
	if taskTypes[req.TaskType] != pkg.Kind {
		return ota.Job{}, ota.Invalid("task_type", "task_type %s does not match package %s, which is a %s", req.TaskType, pkg.ID, packageType(pkg.Kind))
	}
	ext, _ := extInfoToJob(req.TaskExtInfo)
	j := ota.Job{
		PackageID:   pkg.ID,
		Name:        req.TaskName,
		Type:        ota.JobUpgrade,
		Selection:   ota.SelectStatic,
		NeedPush:    true,
		NeedConfirm: req.NeedConfirm,
		ExtInfo:     ext,
		Space:       req.AppID,
	}
	// Precedence as documented: targets, then targets_filter, then document_source.
	switch {
	case len(req.Targets) > 0:
		for _, id := range req.Targets {
			name, ok := nameInProduct(pkg.ProductKey, id)
			if !ok {
				return ota.Job{}, ota.Invalid("targets", "device %q is not a device of product %s: Huawei device ids are {product_id}_{node_id}", id, pkg.ProductKey)
			}
			j.Target.Devices = append(j.Target.Devices, name)
		}
	case len(req.TargetsFilter) > 0:
		groups, _ := groupIDsOf(req.TargetsFilter)
		if len(groups) == 0 {
			return ota.Job{}, ota.Invalid("targets_filter", "targets_filter.group_ids is empty")
		}
		j.Target.Groups = groups
	case req.DocumentSource != nil:
		return ota.Job{}, ota.Errorf(ota.CodeUnsupported, "document_source (a batch task file) is not supported for upgrade tasks: list the devices in targets or their groups in targets_filter")
	default:
		return ota.Job{}, ota.Invalid("targets", "a batch task needs targets (device ids) or targets_filter.group_ids")
	}
	if pol := req.TaskPolicy; pol != nil {
		if pol.ScheduleTime != nil && *pol.ScheduleTime != "" {
			j.Schedule.Start, _ = time.Parse(sdkDateFormat, *pol.ScheduleTime)
		}
		if pol.RetryCount != nil {
			j.Retry = ota.Retry{Count: int(*pol.RetryCount), Interval: minutesToDuration(*pol.RetryInterval)}
		}
	}
	return j, nil
}

// minutesToDuration converts retry_interval without overflow: an int32 of
// minutes can exceed time.Duration and wrap into the valid range, so it
// saturates instead and the range check stays ota's (Job.Validate).
func minutesToDuration(minutes int32) time.Duration {
	const maxMinutes = int64(math.MaxInt64 / int64(time.Minute))
	switch m := int64(minutes); {
	case m > maxMinutes:
		return math.MaxInt64
	case m < -maxMinutes:
		return math.MinInt64
	default:
		return time.Duration(m) * time.Minute
	}
}

// fromJob renders a job as a batch task.
func fromJob(v service.JobView) batchTask {
	j := v.Job
	out := batchTask{
		TaskID:       j.ID,
		TaskName:     j.Name,
		TaskType:     taskType(j.PackageKind),
		NeedConfirm:  j.NeedConfirm,
		TaskExtInfo:  extInfoFromJob(j.ExtInfo),
		Document:     map[string]any{"package_id": j.PackageID, "package_ids": []string{j.PackageID}},
		Status:       taskStatus(v),
		StatusDesc:   j.StateReason,
		TaskProgress: progressOf(v.Counts),
		CreateTime:   formatTime(j.CreatedAt),
	}
	for _, d := range j.Target.Devices {
		out.Targets = append(out.Targets, DeviceID(j.ProductKey, d))
	}
	if len(j.Target.Groups) > 0 {
		out.TargetsFilter = map[string]any{"group_ids": j.Target.Groups}
	}
	var pol taskPolicy
	if !j.Schedule.Start.IsZero() {
		s := formatTime(j.Schedule.Start)
		pol.ScheduleTime = &s
	}
	if j.Retry.Count > 0 || j.Retry.Interval > 0 {
		c, i := int32(j.Retry.Count), int32(j.Retry.Interval/time.Minute)
		pol.RetryCount, pol.RetryInterval = &c, &i
	}
	if pol != (taskPolicy{}) {
		out.TaskPolicy = &pol
	}
	return out
}

// ---- modules ----------------------------------------------------------------

type createOtaModuleRequest struct {
	AppID       string `json:"app_id"`
	ProductID   string `json:"product_id"`
	ModuleName  string `json:"module_name"`
	AliasName   string `json:"alias_name"`
	Description string `json:"description"`
}

type updateOtaModuleRequest struct {
	AliasName   *string `json:"alias_name"`
	Description *string `json:"description"`
}

type otaModule struct {
	ModuleID    string `json:"module_id"`
	AppID       string `json:"app_id,omitempty"`
	ProductID   string `json:"product_id"`
	ProductName string `json:"product_name,omitempty"`
	ModuleName  string `json:"module_name"`
	AliasName   string `json:"alias_name,omitempty"`
	Description string `json:"description,omitempty"`
	CreateTime  string `json:"create_time"`
}

type listOtaModulesResponse struct {
	Modules []otaModule `json:"modules"`
	Page    pageInfo    `json:"page"`
}

// checkAlias: alias_name is a module alias (ota's length rule) of Chinese
// characters, letters, digits, _ - . only (Huawei).
func checkAlias(s string) error {
	if err := ota.CheckDisplayName("alias_name", s, ota.MaxModuleAliasLen, false); err != nil {
		return err
	}
	return checkChars("alias_name", "alias_name", s, "_-.", true)
}

func fromModule(m ota.Module, productName string) otaModule {
	return otaModule{
		ModuleID:    m.ID,
		ProductID:   m.ProductKey,
		ProductName: productName,
		ModuleName:  m.Name,
		AliasName:   m.Alias,
		Description: m.Description,
		CreateTime:  formatTime(m.CreatedAt),
	}
}
