package ota

import "testing"

func TestCompareVersions(t *testing.T) {
	for _, c := range []struct {
		a, b string
		want int
		ok   bool
	}{
		{"1.2.0", "1.10.0", -1, true},
		{"1.10.0", "1.2.0", 1, true},
		{"v1.2", "1.2.0", 0, true},
		{"V1.0.0.12", "1.0.0.9", 1, true},
		{"2", "10", -1, true},
		{"1.0.0-rc.1", "1.0.0", -1, true},
		{"1.0.0-alpha", "1.0.0-alpha.1", -1, true},
		{"1.0.0-alpha.1", "1.0.0-alpha.beta", -1, true},
		{"1.0.0-beta.2", "1.0.0-beta.11", -1, true},
		{"1.0.0+build.5", "1.0.0+build.7", 0, true},
		{"beta", "1.0", 0, false},
		{"1.0", "2024_rc", 0, false},
		{"1..2", "1.2", 0, false},
		{"1.2-", "1.2", 0, false},
	} {
		got, ok := CompareVersions(c.a, c.b)
		if got != c.want || ok != c.ok {
			t.Errorf("CompareVersions(%q, %q) = %d, %v; want %d, %v", c.a, c.b, got, ok, c.want, c.ok)
		}
	}
}

func TestPackageRefuses(t *testing.T) {
	full := Package{Version: "1.1.0"}
	for _, c := range []struct {
		from  string
		allow bool
		want  Reason
	}{
		{"1.0.0", false, ReasonNone},
		{"1.1.0", false, ReasonAlreadyOnVersion},
		{"1.1", false, ReasonAlreadyOnVersion}, // same version, other spelling
		{"1.2.0", false, ReasonDowngrade},
		{"1.2.0", true, ReasonNone},
		{"nightly", false, ReasonNone}, // no order: nothing says no
	} {
		if got := full.Refuses(c.from, c.allow); got != c.want {
			t.Errorf("full package to 1.1.0 from %q (allow %v) = %q, want %q", c.from, c.allow, got, c.want)
		}
	}
	// Declared source versions decide, also for versions that have no order
	// and for one that semver calls newer.
	diff := Package{Version: "2.0", SourceVersions: []string{"nightly", "3.0"}}
	for from, want := range map[string]Reason{"nightly": ReasonNone, "3.0": ReasonNone, "1.0": ReasonSourceVersionMismatch,
		"2.0": ReasonAlreadyOnVersion} {
		if got := diff.Refuses(from, false); got != want {
			t.Errorf("package with source versions from %q = %q, want %q", from, got, want)
		}
	}
}

func TestJobAdmit(t *testing.T) {
	pkg := &Package{Version: "2.0"}
	job := &Job{Module: DefaultModule}
	online := func(v string) *Device {
		d := &Device{Name: "d", Online: true}
		if v != "" {
			d.Versions = map[string]string{DefaultModule: v}
		}
		return d
	}
	offline := online("1.0")
	offline.Online = false
	for name, c := range map[string]struct {
		job   *Job
		d     *Device
		state TaskState
		r     Reason
	}{
		"not registered":     {job, nil, TaskSkipped, ReasonNotFound},
		"no version yet":     {job, online(""), TaskWaiting, ReasonNone},
		"offline":            {job, offline, TaskWaiting, ReasonNone},
		"on destination":     {job, online("2.0"), TaskSkipped, ReasonAlreadyOnVersion},
		"newer":              {job, online("3.0"), TaskSkipped, ReasonDowngrade},
		"newer, allowed":     {&Job{Module: DefaultModule, AllowDowngrade: true}, online("3.0"), TaskQueued, ReasonNone},
		"not a job source":   {&Job{Module: DefaultModule, Target: Target{SourceVersions: []string{"1.1"}}}, online("1.0"), TaskSkipped, ReasonSourceVersionMismatch},
		"due":                {job, online("1.0"), TaskQueued, ReasonNone},
		"due, needs confirm": {&Job{Module: DefaultModule, NeedConfirm: true}, online("1.0"), TaskConfirm, ReasonNone},
	} {
		state, r := c.job.Admit(pkg, c.d)
		if state != c.state || r != c.r {
			t.Errorf("%s: Admit = %s, %q; want %s, %q", name, state, r, c.state, c.r)
		}
	}
}

func TestOutcome(t *testing.T) {
	for _, c := range []struct {
		state JobState
		c     TaskCounts
		want  JobOutcome
	}{
		{JobRunning, TaskCounts{TaskSucceeded: 1}, OutcomeNone},
		{JobCanceled, TaskCounts{TaskSucceeded: 1}, OutcomeCanceled},
		{JobCompleted, TaskCounts{TaskSucceeded: 2}, OutcomeSucceeded},
		{JobCompleted, TaskCounts{TaskSucceeded: 2, TaskSkipped: 1}, OutcomePartial},
		{JobCompleted, TaskCounts{TaskFailed: 1, TaskSkipped: 1}, OutcomeFailed},
		{JobCompleted, TaskCounts{}, OutcomeFailed},
	} {
		if got := Outcome(c.state, c.c); got != c.want {
			t.Errorf("Outcome(%s, %v) = %q, want %q", c.state, c.c, got, c.want)
		}
	}
}

func TestWaitingAndSkippedStates(t *testing.T) {
	if TaskWaiting.Terminal() || !TaskWaiting.Active() || TaskWaiting.Dispatched() {
		t.Error("waiting holds the module but is neither finished nor dispatched")
	}
	if !TaskSkipped.Terminal() || CanTransition(TaskSkipped, TaskSucceeded) || CanTransition(TaskSkipped, TaskNotified) {
		t.Error("skipped is finished; only a dynamic job takes the device again, from the start")
	}
	tk := Task{State: TaskNotified}
	if err := tk.Transition(TaskWaiting, mustTime("2026-01-01T00:00:00Z")); err != nil || !tk.NotifiedAt.IsZero() {
		t.Errorf("notified → waiting: %v, notified_at %v", err, tk.NotifiedAt)
	}
}
