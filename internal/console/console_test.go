package console_test

import (
	"context"
	"io"
	"net/http"
	"net/http/cookiejar"
	"net/url"
	"regexp"
	"strings"
	"testing"

	"github.com/jackc/pgx/v5"

	"github.com/updraft-ota/updraft/client"
	"github.com/updraft-ota/updraft/internal/config"
	"github.com/updraft-ota/updraft/internal/console"
	"github.com/updraft-ota/updraft/internal/ota"
	"github.com/updraft-ota/updraft/internal/server"
	"github.com/updraft-ota/updraft/internal/store/postgres"
	"github.com/updraft-ota/updraft/internal/testenv"
)

// operator is a browser-like HTTP client: a cookie jar, no redirects
// followed, so each answer can be checked.
type operator struct {
	t    *testing.T
	base string
	hc   *http.Client
}

func newOperator(t *testing.T, srv *server.Server) *operator {
	jar, _ := cookiejar.New(nil)
	return &operator{t: t, base: srv.URL(), hc: &http.Client{Jar: jar, CheckRedirect: func(*http.Request, []*http.Request) error {
		return http.ErrUseLastResponse
	}}}
}

func (o *operator) do(method, path string, form url.Values) (int, http.Header, string) {
	o.t.Helper()
	var body io.Reader
	if form != nil {
		body = strings.NewReader(form.Encode())
	}
	req, _ := http.NewRequest(method, o.base+path, body)
	if form != nil {
		req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	}
	resp, err := o.hc.Do(req)
	if err != nil {
		o.t.Fatalf("%s %s: %v", method, path, err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, resp.Header, string(b)
}

var csrfRE = regexp.MustCompile(`name="csrf" value="([0-9a-f]+)"`)

func (o *operator) csrf(path string) string {
	o.t.Helper()
	_, _, body := o.do("GET", path, nil)
	m := csrfRE.FindStringSubmatch(body)
	if m == nil {
		o.t.Fatalf("GET %s: no CSRF token in the page:\n%s", path, body)
	}
	return m[1]
}

func (o *operator) signIn(id, secret string) {
	o.t.Helper()
	code, h, body := o.do("POST", "/signin", url.Values{"access_key_id": {id}, "secret": {secret}, "next": {"/jobs"}})
	if code != http.StatusSeeOther || h.Get("Location") != "/jobs" {
		o.t.Fatalf("sign-in: %d %s\n%s", code, h.Get("Location"), body)
	}
}

func startServer(t *testing.T, mutate func(*config.Config)) (*server.Server, server.Credentials) {
	srv := server.StartForTest(t, mutate)
	creds, ok := srv.Credentials()
	if !ok {
		t.Fatal("no credentials")
	}
	return srv, creds
}

func TestSessionCookieAndSignOut(t *testing.T) {
	srv, creds := startServer(t, nil)
	o := newOperator(t, srv)

	// Without a session every page sends the operator to the sign-in form.
	code, h, _ := o.do("GET", "/jobs?state=running", nil)
	if code != http.StatusSeeOther || h.Get("Location") != "/signin?next=%2Fjobs%3Fstate%3Drunning" {
		t.Fatalf("GET /jobs signed out: %d %q", code, h.Get("Location"))
	}
	// A wrong secret is refused and sets no cookie.
	code, h, body := o.do("POST", "/signin", url.Values{"access_key_id": {creds.AccessKeyID}, "secret": {"wrong-secret-123"}})
	if code != http.StatusUnauthorized || h.Get("Set-Cookie") != "" || !strings.Contains(body, "wrong") {
		t.Fatalf("wrong secret: %d cookie %q", code, h.Get("Set-Cookie"))
	}
	// The right one sets an HttpOnly, SameSite=Strict cookie (not Secure on plain HTTP).
	code, h, _ = o.do("POST", "/signin", url.Values{"access_key_id": {creds.AccessKeyID}, "secret": {creds.SecretAccessKey}, "next": {"//evil.example/"}})
	ck := h.Get("Set-Cookie")
	if code != http.StatusSeeOther || h.Get("Location") != "/" {
		t.Fatalf("sign-in: %d to %q (an off-site next must become /)", code, h.Get("Location"))
	}
	if !strings.Contains(ck, console.SessionCookie+"=") || !strings.Contains(ck, "HttpOnly") || !strings.Contains(ck, "SameSite=Strict") || strings.Contains(ck, "Secure") {
		t.Fatalf("session cookie %q", ck)
	}
	if strings.Contains(ck, creds.SecretAccessKey) {
		t.Fatal("the cookie carries the secret")
	}
	code, _, body = o.do("GET", "/", nil)
	if code != http.StatusOK || !strings.Contains(body, "devices online") {
		t.Fatalf("overview: %d\n%s", code, body)
	}

	// A tampered cookie is no session.
	u, _ := url.Parse(o.base)
	good := o.hc.Jar.Cookies(u)[0].Value
	parts := strings.Split(good, ".")
	o.hc.Jar.SetCookies(u, []*http.Cookie{{Name: console.SessionCookie, Value: parts[0] + ".9999999999." + parts[2] + "." + parts[3], Path: "/"}})
	if code, _, _ := o.do("GET", "/", nil); code != http.StatusSeeOther {
		t.Fatalf("a cookie with a changed expiry was accepted: %d", code)
	}
	o.hc.Jar.SetCookies(u, []*http.Cookie{{Name: console.SessionCookie, Value: good, Path: "/"}})

	// Sign-out needs the token too, and clears the cookie.
	if code, _, _ := o.do("POST", "/signout", url.Values{"csrf": {"00"}}); code != http.StatusForbidden {
		t.Fatalf("sign-out with a forged token: %d", code)
	}
	token := o.csrf("/")
	code, h, _ = o.do("POST", "/signout", url.Values{"csrf": {token}})
	if code != http.StatusSeeOther || !strings.Contains(h.Get("Set-Cookie"), "Max-Age=0") {
		t.Fatalf("sign-out: %d %q", code, h.Get("Set-Cookie"))
	}
	if code, _, _ := o.do("GET", "/", nil); code != http.StatusSeeOther {
		t.Fatalf("still signed in after sign-out: %d", code)
	}
}

func TestForgedCSRFChangesNothing(t *testing.T) {
	srv, creds := startServer(t, nil)
	api := client.New(srv.URL(), creds.AccessKeyID, creds.SecretAccessKey)
	ctx := context.Background()
	if _, err := api.CreateProduct(ctx, client.ProductCreate{Key: "csrfp", Name: "csrf"}); err != nil {
		t.Fatal(err)
	}
	pkg, err := api.UploadPackage(ctx, client.PackageMetadata{Product: "csrfp", Name: "fw", Version: "2.0"}, "fw.bin", strings.NewReader("firmware"))
	if err != nil {
		t.Fatal(err)
	}
	o := newOperator(t, srv)
	o.signIn(creds.AccessKeyID, creds.SecretAccessKey)
	real := o.csrf("/packages/" + pkg.ID)
	for _, forged := range []url.Values{{}, {"csrf": {""}}, {"csrf": {strings.Repeat("0", len(real))}}, {"csrf": {real[:len(real)-1] + "x"}}} {
		code, _, body := o.do("POST", "/packages/"+pkg.ID+"/delete", forged)
		if code != http.StatusForbidden || !strings.Contains(body, "CSRF") {
			t.Fatalf("delete with token %q: %d\n%s", forged.Get("csrf"), code, body)
		}
	}
	if _, err := api.GetPackage(ctx, pkg.ID); err != nil {
		t.Fatalf("the package is gone after forged deletes: %v", err)
	}
	// Another session's token is no good either: tokens are per sign-in.
	o2 := newOperator(t, srv)
	o2.signIn(creds.AccessKeyID, creds.SecretAccessKey)
	if code, _, _ := o2.do("POST", "/packages/"+pkg.ID+"/delete", url.Values{"csrf": {real}}); code != http.StatusForbidden {
		t.Fatalf("another session's token was accepted: %d", code)
	}
	// The real token works.
	if code, h, body := o.do("POST", "/packages/"+pkg.ID+"/delete", url.Values{"csrf": {real}}); code != http.StatusSeeOther || h.Get("Location") != "/packages" {
		t.Fatalf("delete with the real token: %d\n%s", code, body)
	}
	if _, err := api.GetPackage(ctx, pkg.ID); !client.IsNotFound(err) {
		t.Fatalf("package after delete: %v", err)
	}
}

func TestJobFormShowsErrorNextToField(t *testing.T) {
	srv, creds := startServer(t, nil)
	api := client.New(srv.URL(), creds.AccessKeyID, creds.SecretAccessKey)
	ctx := context.Background()
	if _, err := api.CreateProduct(ctx, client.ProductCreate{Key: "formp", Name: "form"}); err != nil {
		t.Fatal(err)
	}
	pkg, err := api.UploadPackage(ctx, client.PackageMetadata{Product: "formp", Name: "fw", Version: "2.0"}, "fw.bin", strings.NewReader("firmware"))
	if err != nil {
		t.Fatal(err)
	}
	o := newOperator(t, srv)
	o.signIn(creds.AccessKeyID, creds.SecretAccessKey)
	token := o.csrf("/jobs/new")
	form := func(mut func(url.Values)) url.Values {
		v := url.Values{"csrf": {token}, "package_id": {pkg.ID}, "name": {"j"}, "type": {"upgrade"}, "selection": {"static"},
			"target": {"all"}, "max_concurrency": {"10"}, "timeout_seconds": {"600"}, "timeout_from": {"notified"},
			"overwrite": {"keep"}, "window_tz": {"UTC"}}
		mut(v)
		return v
	}
	cases := []struct {
		name, field string
		mut         func(url.Values)
	}{
		{"timeout below the minimum (service rule)", "timeout_seconds", func(v url.Values) { v.Set("timeout_seconds", "299") }},
		{"not a number (form)", "max_concurrency", func(v url.Values) { v.Set("max_concurrency", "ten") }},
		{"gray on a dynamic job", "gray_percent", func(v url.Values) { v.Set("selection", "dynamic"); v.Set("gray_percent", "10") }},
		{"retry count over the limit", "retry_count", func(v url.Values) { v.Set("retry_count", "6") }},
		{"unknown time zone", "window_tz", func(v url.Values) { v.Set("window_tz", "Mars/Olympus") }},
		{"window not a time", "window_from", func(v url.Values) { v.Set("window_from", "25:00"); v.Set("window_to", "03:00") }},
		{"verify job without devices", "target_devices", func(v url.Values) { v.Set("type", "verify") }},
		{"tag without a value (form)", "tags", func(v url.Values) { v.Set("tags", "ring=1,canary") }},
	}
	for _, c := range cases {
		code, _, body := o.do("POST", "/jobs", form(c.mut))
		if code != http.StatusBadRequest || !strings.Contains(body, `id="`+c.field+`-error"`) || !strings.Contains(body, `aria-invalid="true" aria-describedby="`+c.field+`-error"`) {
			t.Errorf("%s: %d; want the error next to %s\n%s", c.name, code, c.field, body)
		}
	}
	jobs, err := api.ListJobs(ctx, client.JobFilter{})
	if err != nil || jobs.Total != 0 {
		t.Fatalf("refused forms created jobs: %v %v", jobs.Total, err)
	}
	// Just inside the limit it is created.
	code, h, body := o.do("POST", "/jobs", form(func(v url.Values) { v.Set("timeout_seconds", "300"); v.Set("tags", "ring=1,site=north") }))
	if code != http.StatusSeeOther || !strings.HasPrefix(h.Get("Location"), "/jobs/") {
		t.Fatalf("valid job: %d\n%s", code, body)
	}
	job, err := api.GetJob(ctx, strings.TrimPrefix(h.Get("Location"), "/jobs/"))
	if err != nil || len(job.Tags) != 2 || job.Tags[0].Key != "ring" || job.Tags[1].Value != "north" {
		t.Fatalf("the job's tags: %+v %v", job.Tags, err)
	}
}

func TestRootWithActionIsNotTheConsole(t *testing.T) {
	srv, _ := startServer(t, nil)
	o := newOperator(t, srv)
	if code, h, _ := o.do("GET", "/", nil); code != http.StatusSeeOther || !strings.HasPrefix(h.Get("Location"), "/signin") {
		t.Fatalf("GET / without a session: %d %q", code, h.Get("Location"))
	}
	if code, h, _ := o.do("GET", "/?Action=QueryOTAJob", nil); code == http.StatusSeeOther || strings.Contains(h.Get("Content-Type"), "text/html") {
		t.Fatalf("GET /?Action=… went to the console: %d %q", code, h.Get("Content-Type"))
	}
}

func TestConsoleOff(t *testing.T) {
	srv, _ := startServer(t, func(c *config.Config) { c.Console = "false" })
	o := newOperator(t, srv)
	for _, p := range []string{"/", "/signin", "/static/console.js"} {
		if code, _, _ := o.do("GET", p, nil); code != http.StatusNotFound {
			t.Errorf("--console=false: GET %s = %d, want 404", p, code)
		}
	}
	if code, _, _ := o.do("GET", "/healthz", nil); code != http.StatusOK {
		t.Fatalf("healthz with the console off: %d", code)
	}
}

// Two replicas on one PostgreSQL: a session made on one works on the other
// (nothing is kept in memory), and a key whose secret changes in the store
// ends its sessions on the very next request, on every replica.
func TestSessionAcrossReplicasAndKeyChange(t *testing.T) {
	dsn := postgres.TestSchemaDSN(t, testenv.PostgresDSN(t))
	shared := func(c *config.Config) {
		c.DBURL = dsn
		c.BootstrapTenant, c.BootstrapAccessKey, c.BootstrapSecretKey = "acme", "CONSOLEREPLICAKEY01", "console-replica-secret-0123456789"
	}
	a, _ := startServer(t, shared)
	b := server.StartForTest(t, shared)
	o := newOperator(t, a)
	o.signIn("CONSOLEREPLICAKEY01", "console-replica-secret-0123456789")
	token := o.csrf("/")

	// The jar sends 127.0.0.1's cookie to both ports, as a browser would
	// behind one load-balanced name.
	o.base = b.URL()
	if code, _, body := o.do("GET", "/devices", nil); code != http.StatusOK || !strings.Contains(body, "Devices") {
		t.Fatalf("replica B with A's session: %d", code)
	}
	if got := o.csrf("/"); got != token {
		t.Fatalf("replica B derives another CSRF token for the same session")
	}

	// The key's secret is rotated behind the console's back.
	conn, err := pgx.Connect(context.Background(), dsn)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close(context.Background())
	if tag, err := conn.Exec(context.Background(),
		"UPDATE access_keys SET secret = 'rotated-secret-0123456789abcdef' WHERE id = 'CONSOLEREPLICAKEY01'"); err != nil || tag.RowsAffected() != 1 {
		t.Fatalf("rotating the key: %v %v", tag, err)
	}
	for _, srv := range []*server.Server{a, b} {
		o.base = srv.URL()
		if code, h, _ := o.do("GET", "/devices", nil); code != http.StatusSeeOther || !strings.HasPrefix(h.Get("Location"), "/signin") {
			t.Fatalf("%s after the key changed: %d %q; want the sign-in form", srv.URL(), code, h.Get("Location"))
		}
		if code, _, _ := o.do("POST", "/signout", url.Values{"csrf": {token}}); code != http.StatusUnauthorized {
			t.Fatalf("%s: a change after the key changed: %d, want 401", srv.URL(), code)
		}
	}
}

// Every page renders, and the device list filters in the store.
func TestPagesRenderAndDeviceFilters(t *testing.T) {
	srv, creds := startServer(t, nil)
	api := client.New(srv.URL(), creds.AccessKeyID, creds.SecretAccessKey)
	ctx := context.Background()
	if _, err := api.CreateProduct(ctx, client.ProductCreate{Key: "pagesp", Name: "Pages"}); err != nil {
		t.Fatal(err)
	}
	if _, err := api.CreateModule(ctx, "pagesp", client.ModuleCreate{Name: "modem", Alias: "LTE modem"}); err != nil {
		t.Fatal(err)
	}
	for _, d := range []client.DeviceCreate{{Name: "alpha-1", Groups: []string{"east"}}, {Name: "alpha-2", Groups: []string{"west"}}, {Name: "beta-1", Groups: []string{"east"}}} {
		if _, err := api.CreateDevice(ctx, "pagesp", d); err != nil {
			t.Fatal(err)
		}
	}
	pkg, err := api.UploadPackage(ctx, client.PackageMetadata{Product: "pagesp", Name: "fw", Version: "2.0"}, "fw.bin", strings.NewReader("firmware"))
	if err != nil {
		t.Fatal(err)
	}
	job, err := api.CreateJob(ctx, client.JobCreate{PackageID: pkg.ID, Name: "pages job", Target: client.JobTarget{Devices: []string{"alpha-1", "nobody"}}})
	if err != nil {
		t.Fatal(err)
	}
	o := newOperator(t, srv)
	o.signIn(creds.AccessKeyID, creds.SecretAccessKey)
	pages := []struct{ path, want string }{
		{"/", "Versions per product"},
		{"/products", "LTE modem"},
		{"/devices", "beta-1"},
		{"/devices/pagesp/alpha-1", job.ID},
		{"/packages", pkg.SHA256[:12]},
		{"/packages/" + pkg.ID, pkg.SHA256},
		{"/jobs", "pages job"},
		{"/jobs?state=running", "pages job"},
		{"/jobs/new?package=" + pkg.ID, `value="` + pkg.ID + `" selected`},
		{"/jobs/" + job.ID, `id="count-skipped">1<`},
	}
	for _, p := range pages {
		code, h, body := o.do("GET", p.path, nil)
		if code != http.StatusOK || !strings.Contains(body, p.want) {
			t.Errorf("GET %s: %d, want %q in the page\n%s", p.path, code, p.want, body)
		}
		if csp := h.Get("Content-Security-Policy"); !strings.Contains(csp, "script-src 'self'") {
			t.Errorf("GET %s: CSP %q", p.path, csp)
		}
	}
	filters := []struct {
		q    string
		want []string
	}{
		{"q=alpha", []string{"alpha-1", "alpha-2"}},
		{"group=east", []string{"alpha-1", "beta-1"}},
		{"group=east&q=alpha", []string{"alpha-1"}},
		{"online=yes", nil},
		{"online=no&product=pagesp", []string{"alpha-1", "alpha-2", "beta-1"}},
		{"version=1.0", nil},
	}
	rowRE := regexp.MustCompile(`<a href="/devices/pagesp/([^"]+)">`)
	for _, f := range filters {
		code, _, body := o.do("GET", "/devices?"+f.q, nil)
		var got []string
		for _, m := range rowRE.FindAllStringSubmatch(body, -1) {
			got = append(got, m[1])
		}
		if code != http.StatusOK || strings.Join(got, ",") != strings.Join(f.want, ",") {
			t.Errorf("devices?%s: %d %v, want %v", f.q, code, got, f.want)
		}
	}
	// A job whose devices wait for confirmation: the live page offers the
	// button, and it confirms through the service.
	// (The device must be online on a known version to be asked.)
	ref := ota.DeviceRef{ProductKey: "pagesp", Name: "alpha-2"}
	if err := srv.Service().DeviceConnected(ctx, ref, true); err != nil {
		t.Fatal(err)
	}
	if err := srv.Service().ReportVersion(ctx, ref, "", "1.0"); err != nil {
		t.Fatal(err)
	}
	cj, err := api.CreateJob(ctx, client.JobCreate{PackageID: pkg.ID, Name: "confirm job", NeedConfirm: true, Target: client.JobTarget{Devices: []string{"alpha-2"}}})
	if err != nil {
		t.Fatal(err)
	}
	_, _, body := o.do("GET", "/jobs/"+cj.ID, nil)
	if !strings.Contains(body, `id="btn-confirm" >`) && !strings.Contains(body, `id="btn-confirm">`) {
		t.Errorf("the confirm button is hidden with a task in confirm:\n%s", body)
	}
	token := o.csrf("/jobs/" + cj.ID)
	if code, _, body := o.do("POST", "/jobs/"+cj.ID+"/confirm", url.Values{"csrf": {token}}); code != http.StatusSeeOther {
		t.Fatalf("confirm: %d\n%s", code, body)
	}
	if v, err := api.GetJob(ctx, cj.ID); err != nil || v.Counts["confirm"] != 0 {
		t.Fatalf("after confirm: %v %v", v.Counts, err)
	}

	// Another tenant's or a missing thing is a 404 page, not a crash.
	if code, _, _ := o.do("GET", "/jobs/nope", nil); code != http.StatusNotFound {
		t.Errorf("missing job: %d", code)
	}
}
