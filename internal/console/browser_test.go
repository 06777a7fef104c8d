package console_test

// The console in a real headless Chromium (Debian's chromium, driven over
// the DevTools protocol by chromedp) against a real server with a simulated
// fleet of real SDK devices on the embedded MQTT broker.
//
// UPDRAFT_SCREENSHOTS=DIR writes PNGs of the overview, the job form with a
// validation error and the live job page mid-rollout there.

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"

	"github.com/updraft-ota/updraft/client"
	"github.com/updraft-ota/updraft/internal/config"
	"github.com/updraft-ota/updraft/internal/sim"
	"github.com/updraft-ota/updraft/internal/testenv"
)

func newBrowser(t *testing.T) context.Context {
	t.Helper()
	path := testenv.Chromium(t)
	opts := []chromedp.ExecAllocatorOption{
		chromedp.ExecPath(path),
		chromedp.Headless, chromedp.NoSandbox,
		chromedp.Flag("disable-gpu", true), chromedp.Flag("no-first-run", true),
		chromedp.Flag("no-default-browser-check", true),
		chromedp.Flag("disable-background-networking", true), chromedp.Flag("disable-component-update", true),
		chromedp.Flag("disable-sync", true), chromedp.Flag("disable-dev-shm-usage", true),
		chromedp.UserDataDir(t.TempDir()), chromedp.WindowSize(1280, 900),
	}
	actx, cancelAlloc := chromedp.NewExecAllocator(context.Background(), opts...)
	ctx, cancel := chromedp.NewContext(actx)
	t.Cleanup(func() { cancel(); cancelAlloc() })
	// The first Run starts the browser; its context must not time out.
	if err := chromedp.Do(ctx, chromedp.Navigate("about:blank")); err != nil {
		t.Fatalf("starting Chromium (%s): %v", path, err)
	}
	return ctx
}

// step runs browser actions with a deadline that names what it waited for.
func step(t *testing.T, ctx context.Context, what string, limit time.Duration, actions ...chromedp.Action[chromedp.Void]) {
	t.Helper()
	c, cancel := context.WithTimeout(ctx, limit)
	defer cancel()
	if err := chromedp.Do(c, actions...); err != nil {
		loc, _ := chromedp.Run(ctx, chromedp.Location())
		body, _ := chromedp.Run(ctx, chromedp.Evaluate[string](`document.body ? document.body.innerText.slice(0, 1500) : ""`))
		t.Fatalf("%s (within %s): %v\nat %s:\n%s", what, limit, err, loc, body)
	}
}

func eval[T any](t *testing.T, ctx context.Context, expr string) T {
	t.Helper()
	v, err := chromedp.Run(ctx, chromedp.Evaluate[T](expr))
	if err != nil {
		t.Fatalf("evaluating %s: %v", expr, err)
	}
	return v
}

// waitJS polls a JavaScript condition in the page until it is true.
func waitJS(t *testing.T, ctx context.Context, what string, limit time.Duration, cond string) {
	t.Helper()
	step(t, ctx, "waiting for "+what, limit, chromedp.Func(func(c context.Context, tg *chromedp.Target) error {
		_, err := chromedp.Poll[bool](cond, chromedp.WithPollingInterval(50*time.Millisecond))(c, tg)
		return err
	}))
}

func screenshot(t *testing.T, ctx context.Context, name string) {
	t.Helper()
	dir := os.Getenv("UPDRAFT_SCREENSHOTS")
	if dir == "" {
		return
	}
	png, err := chromedp.Run(ctx, chromedp.FullScreenshot(100))
	if err != nil {
		t.Fatalf("screenshot %s: %v", name, err)
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, name), png, 0o644); err != nil {
		t.Fatal(err)
	}
}

func TestBrowserRollout(t *testing.T) {
	ctx := newBrowser(t)
	// The engine ticks slowly and the job sends one device at a time, so the
	// rollout lasts long enough to be watched, paused and resumed.
	srv, creds := startServer(t, func(c *config.Config) {
		c.MQTTAddr = "127.0.0.1:0"
		c.RolloutInterval = 250 * time.Millisecond
		c.LogLevel = "warn"
	})
	base := srv.URL()
	api := client.New(base, creds.AccessKeyID, creds.SecretAccessKey)
	product := "web" + randHex(4)

	const fleetSize = 24
	fl, err := sim.New(sim.Config{Server: base, KeyID: creds.AccessKeyID, KeySecret: creds.SecretAccessKey,
		MQTT: srv.MQTTAddr(), Product: product, Count: fleetSize, Version: "1.0", Prefix: "dev-" + randHex(3) + "-",
		FailInstall: 0.1, ConnectRate: 1000, AckTimeout: 5 * time.Second, Logger: slog.New(slog.NewTextHandler(io.Discard, nil))})
	if err != nil {
		t.Fatal(err)
	}
	if err := fl.Create(context.Background()); err != nil {
		t.Fatal(err)
	}
	failing := fl.Counts()[sim.FailInstall]
	if failing == 0 {
		t.Fatal("the plan has no failing device")
	}
	fctx, stopFleet := context.WithCancel(context.Background())
	fleetDone := make(chan error, 1)
	go func() { fleetDone <- fl.Run(fctx) }()
	t.Cleanup(func() { stopFleet(); <-fleetDone })
	deadline := time.Now().Add(30 * time.Second)
	for {
		l, err := api.ListDevices(context.Background(), product, client.DeviceFilter{Page: client.Page{Limit: 100}})
		if err != nil {
			t.Fatal(err)
		}
		on := 0
		for _, d := range l.Items {
			if d.Online && d.Versions["default"] == "1.0" {
				on++
			}
		}
		if on == fleetSize {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %d devices online on 1.0: %d", fleetSize, on)
		}
		time.Sleep(50 * time.Millisecond)
	}

	// Sign in (a wrong secret first).
	step(t, ctx, "the sign-in form", 30*time.Second,
		chromedp.Navigate(base+"/"), chromedp.WaitVisible("#access_key_id"),
		chromedp.SendKeys("#access_key_id", creds.AccessKeyID), chromedp.SendKeys("#secret", "not-the-secret"),
		chromedp.Click("button[type=submit]"), chromedp.WaitVisible("#signin-error"))
	step(t, ctx, "signing in", 30*time.Second,
		chromedp.SetValue("#secret", creds.SecretAccessKey), chromedp.Click("button[type=submit]"),
		chromedp.WaitVisible("#online"))
	if got := eval[string](t, ctx, `document.getElementById("online").textContent`); got != strconv.Itoa(fleetSize) {
		t.Fatalf("overview shows %s devices online, want %d", got, fleetSize)
	}

	// Upload a package; the progress bar's values are recorded as it moves.
	content := make([]byte, 3<<20)
	rand.Read(content)
	sum := sha256.Sum256(content)
	file := filepath.Join(t.TempDir(), "fw-2.0.bin")
	if err := os.WriteFile(file, content, 0o644); err != nil {
		t.Fatal(err)
	}
	step(t, ctx, "the upload form", 30*time.Second,
		chromedp.Navigate(base+"/packages"), chromedp.WaitVisible("#upload"),
		chromedp.SetValue("#u-product", product), chromedp.SendKeys("#u-name", "fw-2"), chromedp.SendKeys("#u-version", "2.0"),
		chromedp.SetUploadFiles("#u-file", []string{file}))
	eval[bool](t, ctx, `(function(){ var bar = document.getElementById("u-progress");
		sessionStorage.setItem("progress", "");
		new MutationObserver(function(){ sessionStorage.setItem("progress", sessionStorage.getItem("progress") + " " + bar.value); })
			.observe(bar, {attributes: true}); return true; })()`)
	step(t, ctx, "uploading to the package page", 30*time.Second,
		chromedp.Click("#upload button[type=submit]"), chromedp.WaitVisible("#pkg-sha256"))
	if got := eval[string](t, ctx, `document.getElementById("pkg-sha256").textContent`); got != hex.EncodeToString(sum[:]) {
		t.Fatalf("the package page shows SHA-256 %s, want %x", got, sum)
	}
	progress := strings.Fields(eval[string](t, ctx, `sessionStorage.getItem("progress")`))
	if len(progress) == 0 || progress[len(progress)-1] != "100" {
		t.Fatalf("the progress bar went %v; want it to end at 100", progress)
	}
	pkgID := eval[string](t, ctx, `document.getElementById("pkg-id").textContent`)

	// The job form: a value outside its limit is refused next to its field.
	step(t, ctx, "the job form", 30*time.Second,
		chromedp.Navigate(base+"/jobs/new?package="+pkgID), chromedp.WaitVisible("#name"))
	step(t, ctx, "the job form's validation error", 30*time.Second,
		chromedp.SendKeys("#name", "browser rollout"),
		chromedp.SetValue("#timeout_seconds", "30"), chromedp.SetValue("#max_concurrency", "1"),
		chromedp.SetValue("#retry_count", "0"),
		chromedp.Click("form.jobform button[type=submit]"), chromedp.WaitVisible("#timeout_seconds-error"))
	if msg := eval[string](t, ctx, `document.getElementById("timeout_seconds-error").textContent`); !strings.Contains(msg, "timeout_seconds must be 300") {
		t.Fatalf("timeout error: %q", msg)
	}
	if sel := eval[string](t, ctx, `document.getElementById("package_id").value`); sel != pkgID {
		t.Fatalf("the refused form lost its package: %q", sel)
	}
	step(t, ctx, "scrolling to the error", 5*time.Second, chromedp.ScrollIntoView("#timeout_seconds"))
	screenshot(t, ctx, "jobform-error.png")

	// Corrected, the job is created and the live page opens.
	step(t, ctx, "creating the job", 30*time.Second,
		chromedp.SetValue("#timeout_seconds", "300"), chromedp.Click("form.jobform button[type=submit]"),
		chromedp.WaitVisible("#live"))
	jobURL := eval[string](t, ctx, `location.pathname`)
	jobID := strings.TrimPrefix(jobURL, "/jobs/")
	waitJS(t, ctx, "the rollout to be under way", 60*time.Second,
		`+document.getElementById("count-succeeded").textContent >= 3 && document.getElementById("live-status").textContent == "live"`)

	// Pause: the page shows it without a reload, and the count stops.
	step(t, ctx, "pausing", 30*time.Second, chromedp.Click("#btn-pause"), chromedp.WaitVisible("#btn-resume"))
	waitJS(t, ctx, "the paused state on the live page", 30*time.Second, `document.getElementById("job-state").textContent == "paused"`)
	screenshot(t, ctx, "job-paused.png")
	time.Sleep(1500 * time.Millisecond) // what was already notified may finish
	frozen := eval[string](t, ctx, `document.getElementById("job-finished").textContent`)
	time.Sleep(1500 * time.Millisecond)
	if now := eval[string](t, ctx, `document.getElementById("job-finished").textContent`); now != frozen {
		t.Fatalf("a paused job went on: %s finished, then %s", frozen, now)
	}
	if p := eval[int](t, ctx, `+document.getElementById("job-progress").value`); p >= 100 {
		t.Fatalf("the pause came too late: %d %%", p)
	}
	j, err := api.GetJob(context.Background(), jobID)
	if err != nil || j.State != "paused" {
		t.Fatalf("job after pause: %+v %v", j.State, err)
	}

	// Resume and watch it reach 100 % live.
	step(t, ctx, "resuming", 30*time.Second, chromedp.Click("#btn-resume"), chromedp.WaitVisible("#btn-pause"))
	// Mid-rollout, once a device has failed (the devices go one at a time).
	waitJS(t, ctx, "a failure during the rollout", 60*time.Second, `+document.getElementById("count-failed").textContent >= 1`)
	screenshot(t, ctx, "job-live.png")
	waitJS(t, ctx, "100 %", 120*time.Second, `document.getElementById("job-percent").textContent == "100 %"`)
	waitJS(t, ctx, "the failing devices' reasons", 30*time.Second,
		fmt.Sprintf(`document.querySelectorAll("#failures tbody .reason").length == %d && [...document.querySelectorAll("#failures tbody .reason")].every(function(e){ return e.textContent == "install_failed"; })`, failing))
	if got := eval[string](t, ctx, `document.getElementById("count-failed").textContent`); got != strconv.Itoa(failing) {
		t.Fatalf("failed count %s, want %d", got, failing)
	}
	// The chart kept its history across pause and resume (no reload): it
	// rises from the few succeeded when the page opened to the final share
	// of the fleet.
	pts := strings.Fields(eval[string](t, ctx, `document.getElementById("line-succeeded").getAttribute("points")`))
	final := fmt.Sprintf(",%.1f", 119-float64(fleetSize-failing)*115/fleetSize)
	if len(pts) < 5 || strings.HasSuffix(pts[0], final) || !strings.HasSuffix(pts[len(pts)-1], final) {
		t.Fatalf("the chart's succeeded line: %v", pts)
	}

	// A forged CSRF token is refused and changes nothing.
	waitJS(t, ctx, "the retry button", 30*time.Second, `!document.getElementById("btn-retry").hidden`)
	step(t, ctx, "retrying with a forged token", 30*time.Second,
		chromedp.SetValue(`form[action$="/retry-failed"] input[name=csrf]`, "forged"),
		chromedp.Click("#btn-retry"), chromedp.WaitVisible("#action-error"))
	if msg := eval[string](t, ctx, `document.getElementById("action-error").textContent`); !strings.Contains(msg, "CSRF") {
		t.Fatalf("forged token: %q", msg)
	}
	j, err = api.GetJob(context.Background(), jobID)
	if err != nil || j.Counts["failed"] != int64(failing) {
		t.Fatalf("after a forged retry the job has %v failed (%v), want %d", j.Counts["failed"], err, failing)
	}

	// The failing device's page shows its task and reason.
	step(t, ctx, "a failed device's page", 30*time.Second,
		chromedp.Navigate(base+jobURL), chromedp.WaitVisible("#failures tbody a"),
		chromedp.Click("#failures tbody a"), chromedp.WaitVisible("#tasks"))
	if txt := eval[string](t, ctx, `document.getElementById("tasks").innerText`); !strings.Contains(txt, "install_failed") || !strings.Contains(txt, jobID) {
		t.Fatalf("device task history: %s", txt)
	}

	// The overview after the rollout: the version chart.
	step(t, ctx, "the overview", 30*time.Second, chromedp.Navigate(base+"/"), chromedp.WaitVisible("svg.bars"))
	bars := eval[string](t, ctx, `document.querySelector("svg.bars").textContent`)
	if !strings.Contains(bars, "2.0") || !strings.Contains(bars, fmt.Sprintf("%d (", fleetSize-failing)) {
		t.Fatalf("version chart: %q", bars)
	}
	screenshot(t, ctx, "overview.png")

	// On a phone the same live page fits the width (nothing scrolls sideways).
	step(t, ctx, "a phone-sized viewport", 30*time.Second, chromedp.EmulateViewport(390, 844, chromedp.EmulateScale(2)),
		chromedp.Navigate(base+jobURL), chromedp.WaitVisible("#live"))
	waitJS(t, ctx, "the live page on a phone", 30*time.Second, `document.getElementById("live-status").textContent != ""`)
	if w := eval[int](t, ctx, `document.documentElement.scrollWidth`); w > 390 {
		t.Errorf("on a 390 px wide phone the job page is %d px wide", w)
	}
	screenshot(t, ctx, "job-phone.png")
	step(t, ctx, "the laptop viewport again", 30*time.Second, chromedp.EmulateViewport(1280, 900))

	// Page weight of the live job page: HTML + CSS + JS.
	weight := pageWeight(t, base, jobURL, ctx)
	t.Logf("job page weight: %d bytes (HTML+CSS+JS, uncompressed)", weight)
}

// pageWeight is the job page's HTML as the browser received it (Navigation
// Timing) plus its stylesheet and script.
func pageWeight(t *testing.T, base, path string, ctx context.Context) int {
	t.Helper()
	total := 0
	for _, p := range []string{"/static/console.css", "/static/console.js"} {
		resp, err := http.Get(base + p)
		if err != nil {
			t.Fatal(err)
		}
		b, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		total += len(b)
	}
	step(t, ctx, "the job page", 30*time.Second, chromedp.Navigate(base+path), chromedp.WaitVisible("#live"))
	return total + eval[int](t, ctx, `performance.getEntriesByType("navigation")[0].decodedBodySize`)
}

func randHex(n int) string {
	b := make([]byte, n)
	rand.Read(b)
	return hex.EncodeToString(b)
}
