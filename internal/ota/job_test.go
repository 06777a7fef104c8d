package ota

import (
	"fmt"
	"math"
	"strings"
	"testing"
	"time"
)

var jobNow = mustTime("2026-03-10T12:00:00Z")

func validJob() Job {
	j := Job{PackageID: "p1", Target: Target{All: true}}
	j.Normalize()
	return j
}

func deviceNames(n int) []string {
	out := make([]string, n)
	for i := range out {
		out[i] = fmt.Sprintf("dev-%05d", i)
	}
	return out
}

// TestJobLimits tries every documented job limit just inside and just
// outside; the outside case must name the field.
func TestJobLimits(t *testing.T) {
	window := func(from, to, off int) *DailyWindow {
		return &DailyWindow{FromMinute: from, ToMinute: to, UTCOffsetMinutes: off}
	}
	tests := []struct {
		name   string
		mutate func(*Job)
		field  string // "" = valid
	}{
		{"valid", func(j *Job) {}, ""},
		{"local names 16", func(j *Job) { j.LocalNames = localNames(16, "rollout 2") }, ""},
		{"local names 17", func(j *Job) { j.LocalNames = localNames(17, "rollout 2") }, "local_names"},
		{"local name 128", func(j *Job) { j.LocalNames = map[string]string{"zh_CN": strings.Repeat("升", 128)} }, ""},
		{"local name 129", func(j *Job) { j.LocalNames = map[string]string{"zh_CN": strings.Repeat("升", 129)} }, "local_names"},
		{"local name control", func(j *Job) { j.LocalNames = map[string]string{"en_US": "a\x1b[2Jb"} }, "local_names"},
		{"local name empty", func(j *Job) { j.LocalNames = map[string]string{"en_US": ""} }, "local_names"},
		{"local name bad locale", func(j *Job) { j.LocalNames = map[string]string{"en_US1": "x"} }, "local_names"},
		{"timeout 299", func(j *Job) { j.TimeoutSeconds = 299 }, "timeout_seconds"},
		{"timeout 300", func(j *Job) { j.TimeoutSeconds = 300 }, ""},
		{"timeout 172800", func(j *Job) { j.TimeoutSeconds = 172_800 }, ""},
		{"timeout 172801", func(j *Job) { j.TimeoutSeconds = 172_801 }, "timeout_seconds"},
		{"timeout negative", func(j *Job) { j.TimeoutSeconds = -1 }, "timeout_seconds"},
		{"concurrency 1", func(j *Job) { j.MaxConcurrency = 1 }, ""},
		{"concurrency -1", func(j *Job) { j.MaxConcurrency = -1 }, "max_concurrency"},
		{"concurrency max", func(j *Job) { j.MaxConcurrency = MaxMaxConcurrency }, ""},
		{"concurrency max+1", func(j *Job) { j.MaxConcurrency = MaxMaxConcurrency + 1 }, "max_concurrency"},
		{"per minute 0 (unlimited)", func(j *Job) { j.MaxPerMinute = 0 }, ""},
		{"per minute 9", func(j *Job) { j.MaxPerMinute = 9 }, "max_per_minute"},
		{"per minute 10", func(j *Job) { j.MaxPerMinute = 10 }, ""},
		{"per minute 10000", func(j *Job) { j.MaxPerMinute = 10_000 }, ""},
		{"per minute 10001", func(j *Job) { j.MaxPerMinute = 10_001 }, "max_per_minute"},
		{"retry count 5", func(j *Job) { j.Retry.Count = 5 }, ""},
		{"retry count 6", func(j *Job) { j.Retry.Count = 6 }, "retry.count"},
		{"retry count -1", func(j *Job) { j.Retry.Count = -1 }, "retry.count"},
		{"retry interval 1440 min", func(j *Job) { j.Retry.Interval = 1440 * time.Minute }, ""},
		{"retry interval 1440 min + 1s", func(j *Job) { j.Retry.Interval = 1440*time.Minute + time.Second }, "retry.interval_seconds"},
		{"retry interval negative", func(j *Job) { j.Retry.Interval = -time.Second }, "retry.interval_seconds"},
		{"verify 10 devices", func(j *Job) { j.Type = JobVerify; j.Target = Target{Devices: deviceNames(10)} }, ""},
		{"verify 11 devices", func(j *Job) { j.Type = JobVerify; j.Target = Target{Devices: deviceNames(11)} }, "target.devices"},
		{"verify without devices", func(j *Job) { j.Type = JobVerify; j.Target = Target{All: true} }, "target.devices"},
		{"verify dynamic", func(j *Job) {
			j.Type, j.Selection, j.Target = JobVerify, SelectDynamic, Target{Devices: deviceNames(1)}
		}, "selection"},
		{"verify gray", func(j *Job) { j.Type = JobVerify; j.Target = Target{Devices: deviceNames(2), GrayPercent: 50} }, "target.gray_percent"},
		{"30000 devices", func(j *Job) { j.Target = Target{Devices: deviceNames(30_000)} }, ""},
		{"30001 devices", func(j *Job) { j.Target = Target{Devices: deviceNames(30_001)} }, "target.devices"},
		{"device listed twice", func(j *Job) { j.Target = Target{Devices: []string{"a", "b", "a"}} }, "target.devices"},
		{"bad device name", func(j *Job) { j.Target = Target{Devices: []string{"a b"}} }, "target.devices"},
		{"dynamic device list", func(j *Job) { j.Selection = SelectDynamic; j.Target = Target{Devices: []string{"a"}} }, "selection"},
		{"dynamic all", func(j *Job) { j.Selection = SelectDynamic }, ""},
		{"dynamic gray", func(j *Job) { j.Selection = SelectDynamic; j.Target.GrayPercent = 10 }, "target.gray_percent"},
		{"no target", func(j *Job) { j.Target = Target{} }, "target"},
		{"source versions only", func(j *Job) { j.Target = Target{SourceVersions: []string{"1.0"}} }, ""},
		{"all and devices", func(j *Job) { j.Target.Devices = []string{"a"} }, "target"},
		{"all and groups", func(j *Job) { j.Target.Groups = []string{"g"} }, "target"},
		{"10 groups", func(j *Job) { j.Target = Target{Groups: strings.Split("a,b,c,d,e,f,g,h,i,j", ",")} }, ""},
		{"11 groups", func(j *Job) { j.Target = Target{Groups: strings.Split("a,b,c,d,e,f,g,h,i,j,k", ",")} }, "target.groups"},
		{"20 source versions", func(j *Job) { j.Target.SourceVersions = deviceNames(20) }, ""},
		{"21 source versions", func(j *Job) { j.Target.SourceVersions = deviceNames(21) }, "target.source_versions"},
		{"gray 0.001", func(j *Job) { j.Target.GrayPercent = 0.001 }, ""},
		{"gray 12.345", func(j *Job) { j.Target.GrayPercent = 12.345 }, ""},
		{"gray 33.3", func(j *Job) { j.Target.GrayPercent = 33.3 }, ""},
		{"gray 0.0001", func(j *Job) { j.Target.GrayPercent = 0.0001 }, "target.gray_percent"},
		{"gray 12.3456", func(j *Job) { j.Target.GrayPercent = 12.3456 }, "target.gray_percent"},
		{"gray 100", func(j *Job) { j.Target.GrayPercent = 100 }, ""},
		{"gray 100.001", func(j *Job) { j.Target.GrayPercent = 100.001 }, "target.gray_percent"},
		{"gray negative", func(j *Job) { j.Target.GrayPercent = -1 }, "target.gray_percent"},
		{"start in 7 days", func(j *Job) { j.Schedule.Start = jobNow.Add(MaxScheduleAhead) }, ""},
		{"start in 7 days + 1s", func(j *Job) { j.Schedule.Start = jobNow.Add(MaxScheduleAhead + time.Second) }, "schedule.start"},
		{"start in the past", func(j *Job) { j.Schedule.Start = jobNow.Add(-time.Hour) }, ""},
		{"finish after start", func(j *Job) { j.Schedule.Finish = jobNow.Add(time.Second) }, ""},
		{"finish at start", func(j *Job) { j.Schedule.Finish = jobNow }, "schedule.finish"},
		{"finish before explicit start", func(j *Job) {
			j.Schedule.Start = jobNow.Add(time.Hour)
			j.Schedule.Finish = jobNow.Add(time.Minute)
		}, "schedule.finish"},
		{"window 00:00-24:00", func(j *Job) { j.Schedule.Window = window(0, 1440, 0) }, ""},
		{"window spanning midnight", func(j *Job) { j.Schedule.Window = window(22*60, 6*60, 480) }, ""},
		{"window from 24:00", func(j *Job) { j.Schedule.Window = window(1440, 60, 0) }, "schedule.window"},
		{"window to 24:01", func(j *Job) { j.Schedule.Window = window(0, 1441, 0) }, "schedule.window"},
		{"window empty", func(j *Job) { j.Schedule.Window = window(60, 60, 0) }, "schedule.window"},
		{"window offset -720", func(j *Job) { j.Schedule.Window = window(0, 60, -720) }, ""},
		{"window offset -721", func(j *Job) { j.Schedule.Window = window(0, 60, -721) }, "schedule.window.utc_offset_minutes"},
		{"window offset 840", func(j *Job) { j.Schedule.Window = window(0, 60, 840) }, ""},
		{"window offset 841", func(j *Job) { j.Schedule.Window = window(0, 60, 841) }, "schedule.window.utc_offset_minutes"},
		{"name 128", func(j *Job) { j.Name = strings.Repeat("n", 128) }, ""},
		{"name 129", func(j *Job) { j.Name = strings.Repeat("n", 129) }, "name"},
		{"ext info 512", func(j *Job) { j.ExtInfo = strings.Repeat("x", 512) }, ""},
		{"ext info 513", func(j *Job) { j.ExtInfo = strings.Repeat("x", 513) }, "ext_info"},
		{"abort 100%", func(j *Job) { j.Abort.FailurePercent = 100 }, ""},
		{"abort 100.1%", func(j *Job) { j.Abort.FailurePercent = 100.1 }, "abort.failure_percent"},
		{"abort min finished -1", func(j *Job) { j.Abort.MinFinished = -1 }, "abort.min_finished"},
		{"bad type", func(j *Job) { j.Type = "rollback" }, "type"},
		{"bad selection", func(j *Job) { j.Selection = "sometimes" }, "selection"},
		{"bad overwrite", func(j *Job) { j.Overwrite = "maybe" }, "overwrite"},
		{"11 tags", func(j *Job) {
			for i := 0; i < 11; i++ {
				j.Tags = append(j.Tags, Tag{Key: fmt.Sprintf("k%d", i), Value: "v"})
			}
		}, "tags"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			j := validJob()
			tc.mutate(&j)
			err := j.Validate(jobNow)
			if tc.field == "" {
				if err != nil {
					t.Fatalf("want valid, got %v", err)
				}
				return
			}
			if ErrorCode(err) != CodeInvalid || ErrorField(err) != tc.field {
				t.Fatalf("want invalid %s, got %v (field %q)", tc.field, err, ErrorField(err))
			}
		})
	}
}

func TestJobNormalizeDefaults(t *testing.T) {
	var j Job
	j.Normalize()
	if j.Type != JobUpgrade || j.Selection != SelectStatic || j.MaxConcurrency != DefaultMaxConcurrency ||
		j.TimeoutSeconds != DefaultTimeoutSeconds || j.Overwrite != OverwriteKeep {
		t.Fatalf("defaults not filled: %+v", j)
	}
	j = Job{MaxConcurrency: 7, TimeoutSeconds: 600, Overwrite: OverwriteReplace, Type: JobVerify}
	j.Normalize()
	if j.MaxConcurrency != 7 || j.TimeoutSeconds != 600 || j.Overwrite != OverwriteReplace || j.Type != JobVerify {
		t.Fatalf("explicit values overwritten: %+v", j)
	}
}

func TestDailyWindow(t *testing.T) {
	at := func(s string) time.Time { return mustTime("2026-03-10T" + s + "Z") }
	tests := []struct {
		name     string
		w        DailyWindow
		t        time.Time
		inWindow bool
	}{
		{"from is inclusive", DailyWindow{FromMinute: 120, ToMinute: 240}, at("02:00:00"), true},
		{"just before from", DailyWindow{FromMinute: 120, ToMinute: 240}, at("01:59:59"), false},
		{"to is exclusive", DailyWindow{FromMinute: 120, ToMinute: 240}, at("04:00:00"), false},
		{"just before to", DailyWindow{FromMinute: 120, ToMinute: 240}, at("03:59:59"), true},
		{"whole day 23:59", DailyWindow{FromMinute: 0, ToMinute: 1440}, at("23:59:59"), true},
		{"whole day 00:00", DailyWindow{FromMinute: 0, ToMinute: 1440}, at("00:00:00"), true},
		{"span midnight: late evening", DailyWindow{FromMinute: 22 * 60, ToMinute: 6 * 60}, at("23:30:00"), true},
		{"span midnight: at midnight", DailyWindow{FromMinute: 22 * 60, ToMinute: 6 * 60}, at("00:00:00"), true},
		{"span midnight: early morning", DailyWindow{FromMinute: 22 * 60, ToMinute: 6 * 60}, at("05:59:59"), true},
		{"span midnight: at to", DailyWindow{FromMinute: 22 * 60, ToMinute: 6 * 60}, at("06:00:00"), false},
		{"span midnight: noon", DailyWindow{FromMinute: 22 * 60, ToMinute: 6 * 60}, at("12:00:00"), false},
		{"span midnight: just before from", DailyWindow{FromMinute: 22 * 60, ToMinute: 6 * 60}, at("21:59:59"), false},
		// UTC+8: 02:00–04:00 local is 18:00–20:00 UTC the day before.
		{"UTC+8 local 02:00", DailyWindow{FromMinute: 120, ToMinute: 240, UTCOffsetMinutes: 480}, at("18:00:00"), true},
		{"UTC+8 local 01:59", DailyWindow{FromMinute: 120, ToMinute: 240, UTCOffsetMinutes: 480}, at("17:59:00"), false},
		{"UTC+8 local 04:00", DailyWindow{FromMinute: 120, ToMinute: 240, UTCOffsetMinutes: 480}, at("20:00:00"), false},
		{"UTC+8 UTC 02:00 is local 10:00", DailyWindow{FromMinute: 120, ToMinute: 240, UTCOffsetMinutes: 480}, at("02:00:00"), false},
		// UTC−5:30 (a half-hour zone): 22:00 local is 03:30 UTC the next day.
		{"UTC-5:30 local 22:00", DailyWindow{FromMinute: 22 * 60, ToMinute: 60, UTCOffsetMinutes: -330}, at("03:30:00"), true},
		{"UTC-5:30 local 21:59", DailyWindow{FromMinute: 22 * 60, ToMinute: 60, UTCOffsetMinutes: -330}, at("03:29:00"), false},
		{"UTC-5:30 local 00:59 next day", DailyWindow{FromMinute: 22 * 60, ToMinute: 60, UTCOffsetMinutes: -330}, at("06:29:59"), true},
		{"UTC-5:30 local 01:00 next day", DailyWindow{FromMinute: 22 * 60, ToMinute: 60, UTCOffsetMinutes: -330}, at("06:30:00"), false},
		{"UTC+14 wraps the date", DailyWindow{FromMinute: 0, ToMinute: 60, UTCOffsetMinutes: 840}, at("10:30:00"), true},
		{"UTC-12 wraps the date", DailyWindow{FromMinute: 23 * 60, ToMinute: 1440, UTCOffsetMinutes: -720}, at("11:30:00"), true},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if got := tc.w.Contains(tc.t); got != tc.inWindow {
				t.Fatalf("Contains(%s) = %v, want %v", tc.t.Format(time.RFC3339), got, tc.inWindow)
			}
			// The instant's own zone never matters, only the window's offset.
			inTokyo := tc.t.In(time.FixedZone("JST", 9*3600))
			if got := tc.w.Contains(inTokyo); got != tc.inWindow {
				t.Fatalf("Contains in another zone = %v, want %v", got, tc.inWindow)
			}
		})
	}
}

func TestScheduleInWindow(t *testing.T) {
	start := jobNow
	finish := jobNow.Add(48 * time.Hour)
	s := Schedule{Start: start, Finish: finish, Window: &DailyWindow{FromMinute: 12 * 60, ToMinute: 13 * 60}}
	tests := []struct {
		t                   time.Time
		in, started, isOver bool
	}{
		{start.Add(-time.Second), false, false, false},
		{start, true, true, false},
		{start.Add(time.Hour), false, true, false}, // 13:00: window closed
		{start.Add(24 * time.Hour), true, true, false},
		{finish.Add(-time.Second), false, true, false}, // 11:59:59
		{finish, false, true, true},
	}
	for _, tc := range tests {
		if got := s.InWindow(tc.t); got != tc.in {
			t.Errorf("InWindow(%s) = %v, want %v", tc.t.Format(time.RFC3339), got, tc.in)
		}
		if got := s.Started(tc.t); got != tc.started {
			t.Errorf("Started(%s) = %v, want %v", tc.t.Format(time.RFC3339), got, tc.started)
		}
		if got := s.Over(tc.t); got != tc.isOver {
			t.Errorf("Over(%s) = %v, want %v", tc.t.Format(time.RFC3339), got, tc.isOver)
		}
	}
	var open Schedule
	if !open.InWindow(jobNow) || !open.Started(jobNow) || open.Over(jobNow.Add(1000*time.Hour)) {
		t.Fatal("a zero schedule is always open")
	}
}

func TestTimeOfDay(t *testing.T) {
	good := map[string]int{"00:00": 0, "02:30": 150, "23:59": 1439, "24:00": 1440}
	for s, want := range good {
		got, err := ParseTimeOfDay("f", s)
		if err != nil || got != want {
			t.Errorf("ParseTimeOfDay(%q) = %d, %v; want %d", s, got, err, want)
		}
		if FormatTimeOfDay(want) != s {
			t.Errorf("FormatTimeOfDay(%d) = %q, want %q", want, FormatTimeOfDay(want), s)
		}
	}
	for _, s := range []string{"", "2:30", "02:60", "24:01", "25:00", "+1:00", "02-30", "02:3a", "002:30"} {
		if _, err := ParseTimeOfDay("schedule.window.from", s); ErrorField(err) != "schedule.window.from" {
			t.Errorf("ParseTimeOfDay(%q) = %v, want invalid", s, err)
		}
	}
}

func TestAbortThreshold(t *testing.T) {
	tests := []struct {
		name              string
		abort             Abort
		failed, succeeded int64
		want              bool
	}{
		{"disabled", Abort{}, 10, 0, false},
		{"nothing finished", Abort{FailurePercent: 10}, 0, 0, false},
		{"below min finished", Abort{FailurePercent: 10, MinFinished: 20}, 19, 0, false},
		{"at min finished", Abort{FailurePercent: 10, MinFinished: 20}, 20, 0, true},
		{"just under percent", Abort{FailurePercent: 50}, 49, 51, false},
		{"exactly percent", Abort{FailurePercent: 50}, 50, 50, true},
		{"decimal percent under", Abort{FailurePercent: 12.5}, 12, 88, false},
		{"decimal percent at", Abort{FailurePercent: 12.5}, 1, 7, true},
		{"100 percent needs all failed", Abort{FailurePercent: 100}, 9, 1, false},
		{"100 percent all failed", Abort{FailurePercent: 100}, 10, 0, true},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			counts := TaskCounts{TaskFailed: tc.failed, TaskSucceeded: tc.succeeded, TaskCanceled: 1000, TaskQueued: 5}
			if got := tc.abort.Tripped(counts); got != tc.want {
				t.Fatalf("Tripped = %v, want %v (canceled tasks must not count)", got, tc.want)
			}
		})
	}
}

func TestGrayCount(t *testing.T) {
	tests := []struct {
		percent float64
		n, want int64
	}{
		{0, 1000, 1000},
		{100, 1000, 1000},
		{10, 1000, 100},
		{33.3, 1000, 333}, // float 33.3*1000/100 is 332.99999…
		{12.345, 100_000, 12_345},
		{0.001, 100_000, 1},
		{0.001, 99_999, 1}, // floor is 0: at least 1
		{50, 1, 1},
		{50, 3, 1},
		{99.999, 1_000_000, 999_990},
		{10, 0, 0},
	}
	for _, tc := range tests {
		tg := Target{GrayPercent: tc.percent}
		if got := tg.GrayCount(tc.n); got != tc.want {
			t.Errorf("GrayCount(%v%% of %d) = %d, want %d", tc.percent, tc.n, got, tc.want)
		}
	}
}

// TestGrayPickExact checks that selection sampling takes exactly k of n in
// one pass, deterministically, and spreads its picks over the whole order.
func TestGrayPickExact(t *testing.T) {
	for _, tc := range []struct{ n, k int64 }{{1000, 1}, {1000, 333}, {1000, 999}, {1000, 1000}, {7, 3}, {50_000, 5_000}} {
		pick := func() (int64, int64) {
			var seen, picked, firstHalf int64
			for i := int64(0); i < tc.n; i++ {
				if GrayPick(GrayUniform("job-1", fmt.Sprintf("d%06d", i)), seen, picked, tc.n, tc.k) {
					picked++
					if i < tc.n/2 {
						firstHalf++
					}
				}
				seen++
			}
			return picked, firstHalf
		}
		picked, firstHalf := pick()
		if picked != tc.k {
			t.Errorf("n=%d k=%d: picked %d", tc.n, tc.k, picked)
		}
		if again, _ := pick(); again != picked {
			t.Errorf("n=%d k=%d: not deterministic", tc.n, tc.k)
		}
		if tc.n >= 1000 && tc.k >= 100 && tc.k < tc.n {
			share := float64(firstHalf) / float64(picked)
			if math.Abs(share-0.5) > 0.1 {
				t.Errorf("n=%d k=%d: %.2f of the picks in the first half; sampling is biased", tc.n, tc.k, share)
			}
		}
	}
	// Candidates beyond n (the fleet grew) are not taken once k are.
	if GrayPick(0, 10, 3, 10, 3) {
		t.Error("picked beyond k")
	}
	if !GrayPick(0.99, 10, 2, 10, 3) {
		t.Error("must pick while short of k even past n")
	}
}

func TestGrayUniformRange(t *testing.T) {
	a, b := GrayUniform("job-1", "dev"), GrayUniform("job-2", "dev")
	if a == b {
		t.Error("different jobs should sample differently")
	}
	for i := 0; i < 10_000; i++ {
		u := GrayUniform("j", fmt.Sprint(i))
		if u < 0 || u >= 1 {
			t.Fatalf("uniform %v out of [0,1)", u)
		}
	}
}

func TestAfterFailure(t *testing.T) {
	now := jobNow
	j := validJob()
	j.Retry = Retry{Count: 2, Interval: 10 * time.Minute}
	tests := []struct {
		name     string
		attempts int
		reason   Reason
		want     TaskState
	}{
		{"first notice fails", 1, ReasonDownloadFailed, TaskRetryWait},
		{"second notice fails", 2, ReasonInstallFailed, TaskRetryWait},
		{"third notice fails: retries used up", 3, ReasonInstallFailed, TaskFailed},
		{"timeout is never retried", 1, ReasonTimeout, TaskFailed},
		{"cancel is never retried", 1, ReasonCanceled, TaskFailed},
		{"wrong version is retried", 1, ReasonWrongVersion, TaskRetryWait},
	}
	for _, tc := range tests {
		state, at := j.AfterFailure(Task{Attempts: tc.attempts}, tc.reason, now)
		if state != tc.want {
			t.Errorf("%s: got %s, want %s", tc.name, state, tc.want)
		}
		if state == TaskRetryWait && !at.Equal(now.Add(10*time.Minute)) {
			t.Errorf("%s: next attempt %v", tc.name, at)
		}
	}
	j.Retry = Retry{}
	if state, _ := j.AfterFailure(Task{Attempts: 1}, ReasonDownloadFailed, now); state != TaskFailed {
		t.Errorf("no retry policy: got %s", state)
	}
	j.Retry = Retry{Count: 5}
	if state, _ := j.AfterFailure(Task{Attempts: 5}, ReasonDownloadFailed, now); state != TaskRetryWait {
		t.Errorf("retry count 5, attempt 5: got %s", state)
	}
	if state, _ := j.AfterFailure(Task{Attempts: 6}, ReasonDownloadFailed, now); state != TaskFailed {
		t.Errorf("retry count 5, attempt 6: got %s", state)
	}
}

func TestJobFlags(t *testing.T) {
	j := validJob()
	if j.FirstTaskState() != TaskQueued {
		t.Error("without need_confirm tasks start queued")
	}
	j.NeedConfirm = true
	if j.FirstTaskState() != TaskConfirm {
		t.Error("need_confirm tasks start in confirm")
	}
	for _, tc := range []struct{ push, request, want bool }{
		{true, false, false}, {true, true, true}, {false, false, true}, {false, true, true},
	} {
		j.NeedPush, j.AllowDeviceRequest = tc.push, tc.request
		if got := j.AcceptsDeviceRequests(); got != tc.want {
			t.Errorf("push=%v request=%v: AcceptsDeviceRequests = %v", tc.push, tc.request, got)
		}
	}
	if j.Timeout() != 7200*time.Second {
		t.Errorf("timeout %v", j.Timeout())
	}
}
