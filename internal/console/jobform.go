package console

import (
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/updraft-ota/updraft/internal/ota"
	"github.com/updraft-ota/updraft/internal/store"
)

// jobFormData is the create-job form: its values (to show them again) and
// the error of the field that broke a rule.
type jobFormData struct {
	V        url.Values
	Errors   map[string]string // form field → message
	Error    string            // an error that names no field
	Packages []ota.Package
	Limits   map[string]int
}

func (d jobFormData) Get(k string) string { return d.V.Get(k) }

// formFields maps the domain's field names (the native API's JSON paths)
// to the form's input names, so a rule's error lands next to its input.
var formFields = map[string]string{
	"package_id":                         "package_id",
	"name":                               "name",
	"description":                        "description",
	"type":                               "type",
	"selection":                          "selection",
	"target":                             "target",
	"target.devices":                     "target_devices",
	"target.groups":                      "target_groups",
	"target.gray_percent":                "gray_percent",
	"target.source_versions":             "source_versions",
	"schedule.start":                     "start",
	"schedule.finish":                    "finish",
	"schedule.window":                    "window_from",
	"schedule.window.from":               "window_from",
	"schedule.window.to":                 "window_to",
	"schedule.window.utc_offset_minutes": "window_tz",
	"max_concurrency":                    "max_concurrency",
	"max_per_minute":                     "max_per_minute",
	"retry.count":                        "retry_count",
	"retry.interval_seconds":             "retry_interval_seconds",
	"timeout_seconds":                    "timeout_seconds",
	"timeout_from":                       "timeout_from",
	"overwrite":                          "overwrite",
	"abort.failure_percent":              "abort_failure_percent",
	"abort.min_finished":                 "abort_min_finished",
	"ext_info":                           "ext_info",
	"tags":                               "tags",
}

func (c *Console) jobForm(w http.ResponseWriter, r *http.Request, s *session) error {
	v := url.Values{}
	v.Set("type", string(ota.JobUpgrade))
	v.Set("selection", string(ota.SelectStatic))
	v.Set("target", "all")
	v.Set("max_concurrency", strconv.Itoa(ota.DefaultMaxConcurrency))
	v.Set("timeout_seconds", strconv.Itoa(ota.DefaultTimeoutSeconds))
	v.Set("timeout_from", string(ota.TimeoutFromNotified))
	v.Set("overwrite", string(ota.OverwriteKeep))
	v.Set("need_push", "on")
	v.Set("window_tz", "UTC")
	if id := r.URL.Query().Get("package"); id != "" {
		v.Set("package_id", id)
	}
	return c.renderJobForm(w, r, s, http.StatusOK, jobFormData{V: v})
}

func (c *Console) renderJobForm(w http.ResponseWriter, r *http.Request, s *session, status int, d jobFormData) error {
	pkgs, _, err := c.svc.ListPackages(r.Context(), s.p, store.PackageFilter{}, store.Page{Limit: 200})
	if err != nil {
		return err
	}
	d.Packages = pkgs
	d.Limits = map[string]int{
		"MaxConcurrency": ota.MaxMaxConcurrency, "MinPerMinute": ota.MinPerMinuteLimit, "MaxPerMinute": ota.MaxPerMinuteLimit,
		"MaxRetry": ota.MaxRetryCount, "MaxRetryInterval": int(ota.MaxRetryInterval / time.Second),
		"MinTimeout": ota.MinTimeoutSeconds, "MaxTimeout": ota.MaxTimeoutSeconds, "MaxName": ota.MaxJobNameLen,
		"MaxVerify": ota.MaxVerifyDevices, "MaxExtInfo": ota.MaxExtInfoLen,
	}
	c.render(w, r, s, status, "jobform", "New job", d)
	return nil
}

// createJob translates the form into an ota.Job and lets the service judge
// it; a rule's error is shown next to its field.
func (c *Console) createJob(w http.ResponseWriter, r *http.Request, s *session) error {
	if err := r.ParseForm(); err != nil {
		return ota.Invalid("", "malformed form: %v", err)
	}
	v := r.PostForm
	job, err := jobFromForm(v, c.svc.Now())
	if err == nil {
		job, err = c.svc.CreateJob(r.Context(), s.p, job)
	}
	if err != nil {
		code := ota.ErrorCode(err)
		if code == ota.CodeInternal || code == ota.CodeUnavailable || code == ota.CodeUnauthenticated || code == ota.CodeForbidden {
			return err
		}
		d := jobFormData{V: v, Errors: map[string]string{}}
		if f, ok := formFields[ota.ErrorField(err)]; ok {
			d.Errors[f] = ota.ErrorMessage(err)
		} else if f := ota.ErrorField(err); f != "" {
			d.Errors[f] = ota.ErrorMessage(err)
		} else {
			d.Error = ota.ErrorMessage(err)
		}
		return c.renderJobForm(w, r, s, httpStatus(code), d)
	}
	http.Redirect(w, r, "/jobs/"+url.PathEscape(job.ID), http.StatusSeeOther)
	return nil
}

// jobFromForm reads the form. Only what the form itself can get wrong
// (a number that is not one, an unknown time zone) is checked here; every
// rule is the service's.
func jobFromForm(v url.Values, now time.Time) (ota.Job, error) {
	j := ota.Job{
		PackageID: v.Get("package_id"), Name: strings.TrimSpace(v.Get("name")), Description: v.Get("description"),
		Type: ota.JobType(v.Get("type")), Selection: ota.Selection(v.Get("selection")),
		NeedPush: v.Get("need_push") == "on", NeedConfirm: v.Get("need_confirm") == "on",
		AllowDeviceRequest: v.Get("allow_device_request") == "on", AllowDowngrade: v.Get("allow_downgrade") == "on",
		Overwrite: ota.OverwriteMode(v.Get("overwrite")), TimeoutFrom: ota.TimeoutFrom(v.Get("timeout_from")),
		ExtInfo: v.Get("ext_info"),
	}
	switch v.Get("target") {
	case "all":
		j.Target.All = true
	case "devices":
		j.Target.Devices = splitList(v.Get("target_devices"))
	case "groups":
		j.Target.Groups = splitList(v.Get("target_groups"))
	case "versions":
		// source versions alone choose the devices
	default:
		return j, ota.Invalid("target", "choose who the job is for")
	}
	j.Target.SourceVersions = splitList(v.Get("source_versions"))
	for _, kv := range splitList(v.Get("tags")) {
		k, val, ok := strings.Cut(kv, "=")
		if !ok {
			return j, &ota.Error{Code: ota.CodeInvalid, Field: "tags", Message: "write each tag as key=value, got " + strconv.Quote(kv)}
		}
		j.Tags = append(j.Tags, ota.Tag{Key: strings.TrimSpace(k), Value: strings.TrimSpace(val)})
	}
	var err error
	num := func(field string, dst *int) {
		if err != nil {
			return
		}
		s := strings.TrimSpace(v.Get(field))
		if s == "" {
			return
		}
		n, e := strconv.Atoi(s)
		if e != nil {
			err = &ota.Error{Code: ota.CodeInvalid, Field: field, Message: "enter a whole number, got " + strconv.Quote(s)}
			return
		}
		*dst = n
	}
	dec := func(field string, dst *float64) {
		if err != nil {
			return
		}
		s := strings.TrimSpace(v.Get(field))
		if s == "" {
			return
		}
		f, e := strconv.ParseFloat(s, 64)
		if e != nil {
			err = &ota.Error{Code: ota.CodeInvalid, Field: field, Message: "enter a number, got " + strconv.Quote(s)}
			return
		}
		*dst = f
	}
	dec("gray_percent", &j.Target.GrayPercent)
	num("max_concurrency", &j.MaxConcurrency)
	num("max_per_minute", &j.MaxPerMinute)
	num("retry_count", &j.Retry.Count)
	var retrySec int
	num("retry_interval_seconds", &retrySec)
	j.Retry.Interval = time.Duration(retrySec) * time.Second
	num("timeout_seconds", &j.TimeoutSeconds)
	dec("abort_failure_percent", &j.Abort.FailurePercent)
	num("abort_min_finished", &j.Abort.MinFinished)
	if err != nil {
		return j, err
	}
	loc, err := zone(v.Get("window_tz"))
	if err != nil {
		return j, err
	}
	if j.Schedule.Start, err = localTime("start", v.Get("start"), loc); err != nil {
		return j, err
	}
	if j.Schedule.Finish, err = localTime("finish", v.Get("finish"), loc); err != nil {
		return j, err
	}
	from, to := strings.TrimSpace(v.Get("window_from")), strings.TrimSpace(v.Get("window_to"))
	if from != "" || to != "" {
		fm, err := ota.ParseTimeOfDay("window_from", from)
		if err != nil {
			return j, err
		}
		tm, err := ota.ParseTimeOfDay("window_to", to)
		if err != nil {
			return j, err
		}
		// The window is stored with a fixed UTC offset (the native API's
		// utc_offset_minutes): the zone's offset now.
		_, off := now.In(loc).Zone()
		j.Schedule.Window = &ota.DailyWindow{FromMinute: fm, ToMinute: tm, UTCOffsetMinutes: off / 60}
	}
	return j, nil
}

// zone reads an IANA time zone name (Europe/Berlin) or UTC.
func zone(name string) (*time.Location, error) {
	name = strings.TrimSpace(name)
	if name == "" {
		return time.UTC, nil
	}
	loc, err := time.LoadLocation(name)
	if err != nil {
		return nil, &ota.Error{Code: ota.CodeInvalid, Field: "window_tz", Message: "unknown time zone " + strconv.Quote(name) + ": use a name such as UTC or Europe/Berlin"}
	}
	return loc, nil
}

// localTime reads a datetime-local input in loc.
func localTime(field, s string, loc *time.Location) (time.Time, error) {
	s = strings.TrimSpace(s)
	if s == "" {
		return time.Time{}, nil
	}
	for _, layout := range []string{"2006-01-02T15:04", "2006-01-02T15:04:05"} {
		if t, err := time.ParseInLocation(layout, s, loc); err == nil {
			return t.UTC(), nil
		}
	}
	return time.Time{}, &ota.Error{Code: ota.CodeInvalid, Field: field, Message: "enter a date and time such as 2026-12-24T02:00"}
}
