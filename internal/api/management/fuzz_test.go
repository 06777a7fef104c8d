package management_test

import (
	"bytes"
	"context"
	"encoding/json"
	"io/fs"
	"mime/multipart"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"strings"
	"testing"

	"github.com/updraft-ota/updraft/client"
	"github.com/updraft-ota/updraft/internal/api/httpx"
	"github.com/updraft-ota/updraft/internal/config"
	"github.com/updraft-ota/updraft/internal/ota"
	"github.com/updraft-ota/updraft/internal/server"
)

// fuzzServer is a real server (SQLite, files) for fuzzing the native API in
// process: requests go straight to its handler, with the rate limits off so
// that thousands of calls a second are answered, not throttled.
type fuzzServer struct {
	srv      *server.Server
	auth     string
	product  string
	device   string
	pkgID    string
	jobID    string
	blobRoot string
}

func newFuzzServer(f *testing.F) *fuzzServer {
	f.Helper()
	srv := server.StartForTest(f, func(c *config.Config) {
		c.Unthrottle()
		c.LogLevel = "error"
	})
	creds, _ := srv.Credentials()
	cl := client.New(srv.URL(), creds.AccessKeyID, creds.SecretAccessKey)
	ctx := context.Background()
	fs := &fuzzServer{srv: srv, auth: "Bearer " + creds.AccessKeyID + ":" + creds.SecretAccessKey,
		product: "fz", device: "d1", blobRoot: filepath.Join(srv.Config().DataDir, "blobs")}
	if _, err := cl.CreateProduct(ctx, client.ProductCreate{Key: fs.product, Name: "fuzz"}); err != nil {
		f.Fatal(err)
	}
	if _, err := cl.CreateDevice(ctx, fs.product, client.DeviceCreate{Name: fs.device}); err != nil {
		f.Fatal(err)
	}
	pkg, err := cl.UploadPackage(ctx, client.PackageMetadata{Product: fs.product, Name: "fw", Version: "2.0.0"}, "fw.bin", strings.NewReader("firmware"))
	if err != nil {
		f.Fatal(err)
	}
	fs.pkgID = pkg.ID
	job, err := cl.CreateJob(ctx, client.JobCreate{PackageID: pkg.ID, Target: client.JobTarget{Devices: []string{fs.device}}})
	if err != nil {
		f.Fatal(err)
	}
	fs.jobID = job.ID
	return fs
}

// do sends one request; query goes on the wire as it is (not re-encoded).
func (s *fuzzServer) do(method, path, query, contentType string, body []byte) *httptest.ResponseRecorder {
	r := httptest.NewRequest(method, path, bytes.NewReader(body))
	r.URL.RawQuery = query
	r.Header.Set("Authorization", s.auth)
	if contentType != "" {
		r.Header.Set("Content-Type", contentType)
	}
	w := httptest.NewRecorder()
	s.srv.Handler().ServeHTTP(w, r)
	return w
}

// checkNativeAnswer holds an answer to the native envelope: never a 5xx, an
// error is {"code","message","request_id"} whose code is the status's.
func checkNativeAnswer(t *testing.T, what string, w *httptest.ResponseRecorder) {
	t.Helper()
	if w.Code >= 500 {
		t.Fatalf("%s: HTTP %d (a server error for client input): %s", what, w.Code, w.Body)
	}
	if w.Code < 400 {
		if ct := w.Header().Get("Content-Type"); strings.HasPrefix(ct, "application/json") && !json.Valid(w.Body.Bytes()) {
			t.Fatalf("%s: HTTP %d with invalid JSON: %q", what, w.Code, w.Body)
		}
		return
	}
	var e httpx.ErrorBody
	if err := json.Unmarshal(w.Body.Bytes(), &e); err != nil {
		t.Fatalf("%s: HTTP %d, not the native error envelope (%v): %q", what, w.Code, err, w.Body)
	}
	if e.Code == "" || e.Message == "" || e.RequestID == "" {
		t.Fatalf("%s: HTTP %d, incomplete error envelope: %s", what, w.Code, w.Body)
	}
	if httpx.Status(ota.Code(e.Code)) != w.Code {
		t.Fatalf("%s: HTTP %d with code %q, which the native table answers %d", what, w.Code, e.Code, httpx.Status(ota.Code(e.Code)))
	}
}

// fuzzRoute is a route the fuzzer sends bodies and queries to; path
// parameters name the fixtures (never the fuzzer's own key or tenant, which
// a DELETE could take away).
type fuzzRoute struct {
	method, path string
	json         bool // the body is a JSON document
}

func nativeFuzzRoutes(s *fuzzServer) []fuzzRoute {
	p, d := "/api/v1/products/"+s.product, "/devices/"+s.device
	return []fuzzRoute{
		{"POST", "/api/v1/products", true},
		{"GET", "/api/v1/products", false},
		{"POST", p + "/devices", true},
		{"GET", p + "/devices", false},
		{"PATCH", p + d, true},
		{"POST", p + "/modules", true},
		{"GET", p + "/modules", false},
		{"PATCH", p + "/modules/default", true},
		{"POST", "/api/v1/jobs", true},
		{"GET", "/api/v1/jobs", false},
		{"PATCH", "/api/v1/jobs/" + s.jobID, true},
		{"GET", "/api/v1/jobs/" + s.jobID + "/tasks", false},
		{"POST", "/api/v1/jobs/" + s.jobID + "/tasks/retry", true},
		{"POST", "/api/v1/jobs/" + s.jobID + "/tasks/cancel", true},
		{"POST", "/api/v1/jobs/" + s.jobID + "/tasks/confirm", true},
		{"POST", "/api/v1/jobs/" + s.jobID + "/pause", false}, // takes no body
		{"POST", p + d + "/tasks/cancel", false},              // ?module=, no body
		{"GET", "/api/v1/packages", false},
		{"PATCH", "/api/v1/packages/" + s.pkgID, true},
		{"POST", "/api/v1/tenants", true},
		{"GET", "/api/v1/tenants", false},
		{"PUT", "/api/v1/tenants/fuzz-other/quota", true},
		{"POST", "/api/v1/keys", true},
		{"GET", "/api/v1/keys", false},
	}
}

// FuzzNativeAPI sends arbitrary JSON bodies and query strings to the native
// API's routes: every answer is a 2xx or a clean error in the native
// envelope, and a body that is not JSON is never accepted.
func FuzzNativeAPI(f *testing.F) {
	s := newFuzzServer(f)
	routes := nativeFuzzRoutes(s)
	seeds := []struct {
		route uint8
		query string
		body  string
	}{
		{0, "", `{"key":"thermo","name":"Smart thermostat"}`},
		{0, "", `{"key":"bad key","name":"\u202e"}`},
		{1, "limit=5&offset=10", ``},
		{1, "limit=-5", ``},
		{1, "offset=abc", ``},
		{1, "limit=99999999999999999999", ``},
		{2, "", `{"name":"t-002","groups":["beta"],"attributes":{"site":"a"},"tags":{"k":"v"}}`},
		{3, "group=beta&version=1.0.0&limit=1", ``},
		{4, "", `{"groups":["fleet"]}`},
		{5, "", `{"name":"wifi","description":"radio"}`},
		{8, "", `{"package_id":"` + s.pkgID + `","target":{"all":true},"max_concurrency":10,"retry":{"count":2,"interval_seconds":60}}`},
		{8, "", `{"package_id":"` + s.pkgID + `","target":{"groups":["g"]},"schedule":{"window":{"from":"22:00","to":"06:00","utc_offset_minutes":480}}}`},
		{8, "", `{"package_id":"` + s.pkgID + `","target":{"all":true,"gray_percent":150}}`},
		{9, "state=running&limit=2", ``},
		{10, "", `{"max_concurrency":500,"timeout_seconds":3600,"tags":[{"key":"a","value":"b"}]}`},
		{11, "state=failed&limit=3&offset=1", ``},
		{12, "", `{"all":true}`},
		{13, "", `{"states":["queued"],"task_ids":[1,2,3]}`},
		{14, "", `{"devices":["d1"]}`},
		{16, "module=default", ``},
		{18, "", `{"description":"fixes the display","custom_info":"x"}`},
		{19, "", `{"id":"acme","name":"Acme"}`},
		{21, "", `{"packages":10,"storage_bytes":1000000,"devices":5,"running_jobs":1}`},
		{22, "", `{"tenant":"acme","role":"readonly"}`},
		{0, "", `{"key":"x"} trailing`},
		{0, "", `[1,2,3]`},
		{0, "", `{"key":1e400}`},
	}
	for _, sd := range seeds {
		f.Add(sd.route, sd.query, []byte(sd.body))
	}
	f.Fuzz(func(t *testing.T, route uint8, query string, body []byte) {
		rt := routes[int(route)%len(routes)]
		w := s.do(rt.method, rt.path, query, "application/json", body)
		what := rt.method + " " + rt.path + "?" + query
		checkNativeAnswer(t, what, w)
		if rt.json && len(bytes.TrimSpace(body)) > 0 && !json.Valid(body) && w.Code < 300 {
			t.Fatalf("%s: a body that is not JSON was accepted (HTTP %d): %q", what, w.Code, body)
		}
	})
}

// countFiles is how many files the blob store holds.
func countFiles(t *testing.T, root string) int {
	t.Helper()
	n := 0
	err := filepath.WalkDir(root, func(_ string, d fs.DirEntry, err error) error {
		if err == nil && !d.IsDir() {
			n++
		}
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	return n
}

// FuzzNativePackageUpload sends arbitrary multipart bodies to POST
// /api/v1/packages: an upload is created (201) or refused with a clean 4xx
// that leaves no package and no file behind.
func FuzzNativePackageUpload(f *testing.F) {
	s := newFuzzServer(f)
	const boundary = "fuzzboundary"
	mp := func(parts ...[2]string) []byte {
		var b bytes.Buffer
		mw := multipart.NewWriter(&b)
		_ = mw.SetBoundary(boundary)
		for _, p := range parts {
			name, content := p[0], p[1]
			var w interface{ Write([]byte) (int, error) }
			if name == "file" {
				w, _ = mw.CreateFormFile("file", "fw.bin")
			} else {
				w, _ = mw.CreateFormField(name)
			}
			_, _ = w.Write([]byte(content))
		}
		_ = mw.Close()
		return b.Bytes()
	}
	f.Add(mp([2]string{"metadata", `{"product":"fz","name":"fw","version":"3.0.0"}`}, [2]string{"file", "new firmware"}))
	f.Add(mp([2]string{"metadata", `{"product":"fz","name":"fw","version":"3.0.1","module":"default","sign":"00","sign_method":"MD5"}`}, [2]string{"file", "x"}))
	f.Add(mp([2]string{"file", "file first"}, [2]string{"metadata", `{"product":"fz","name":"fw","version":"3.0.2"}`}))
	f.Add(mp([2]string{"metadata", `{"product":"fz","name":"fw","version":"1.1 beta"}`}, [2]string{"file", "bad version"}))
	f.Add(mp([2]string{"metadata", `{"product":"fz","name":"fw","version":"3.0.3","source_versions":["1.0.0"],"differential":true}`}, [2]string{"file", "diff"}))
	// No closing boundary (issue 12: once answered 503).
	whole := mp([2]string{"metadata", `{"product":"fz","name":"fw","version":"3.0.4"}`}, [2]string{"file", "truncated"})
	f.Add(whole[:len(whole)-len("--"+boundary+"--\r\n")])
	f.Add([]byte("--" + boundary + "\r\n\r\n"))
	f.Add([]byte(""))
	f.Fuzz(func(t *testing.T, body []byte) {
		before := countFiles(t, s.blobRoot)
		w := s.do("POST", "/api/v1/packages", "", "multipart/form-data; boundary="+boundary, body)
		checkNativeAnswer(t, "upload", w)
		if w.Code == http.StatusCreated {
			var pkg struct{ ID string }
			if err := json.Unmarshal(w.Body.Bytes(), &pkg); err != nil || pkg.ID == "" {
				t.Fatalf("upload answered 201 without a package: %s", w.Body)
			}
			return
		}
		if after := countFiles(t, s.blobRoot); after != before {
			t.Fatalf("a refused upload (HTTP %d: %s) left %d files in the blob store (had %d)", w.Code, w.Body, after, before)
		}
	})
}
