package management_test

import (
	"bytes"
	"context"
	"crypto/md5"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"math/rand/v2"
	"mime/multipart"
	"net/http"
	"net/textproto"
	"runtime"
	"strings"
	"testing"

	"github.com/updraft-ota/updraft/client"
	"github.com/updraft-ota/updraft/internal/api/management"
)

// randomBytes returns n deterministic pseudo-random bytes.
func randomBytes(n int, seed uint64) []byte {
	b := make([]byte, n)
	r := rand.NewChaCha8([32]byte{byte(seed), byte(seed >> 8)})
	_, _ = r.Read(b)
	return b
}

func sha256Hex(b []byte) string { s := sha256.Sum256(b); return hex.EncodeToString(s[:]) }
func md5Hex(b []byte) string    { s := md5.Sum(b); return hex.EncodeToString(s[:]) }

func setupProduct(t *testing.T, e *env, key string) {
	t.Helper()
	if _, err := e.Client.CreateProduct(context.Background(), client.ProductCreate{Key: key, Name: key}); err != nil {
		t.Fatal(err)
	}
}

// TestPackageRoundTrip uploads 50 MB, checks the measured digests against
// crypto/sha256 and crypto/md5, downloads it whole, by Range, with If-Range,
// and through the signed redirect URL.
func TestPackageRoundTrip(t *testing.T) {
	if testing.Short() {
		t.Skip("50 MB upload")
	}
	e := newEnv(t, management.Options{})
	ctx := context.Background()
	setupProduct(t, e, "thermo")
	content := randomBytes(50<<20, 1)
	wantSHA := sha256Hex(content)

	var sent int64
	progressCalls := 0
	pkg, err := e.Client.UploadPackage(ctx, client.PackageMetadata{
		Product: "thermo", Name: "thermo-fw-2", Version: "2.0.0", SourceVersions: []string{"1.0.0", "1.1.0"},
		Description: "fixes", CustomInfo: `{"reboot":true}`, Sign: strings.ToUpper(wantSHA), NeedVerify: true,
		Tags: []client.Tag{{Key: "channel", Value: "beta"}},
	}, "thermo-2.0.0.bin", bytes.NewReader(content), client.OnProgress(func(n int64) { sent = n; progressCalls++ }))
	if err != nil {
		t.Fatal(err)
	}
	if pkg.SHA256 != wantSHA || pkg.MD5 != md5Hex(content) || pkg.Size != int64(len(content)) {
		t.Fatalf("measured %s/%s/%d, want %s/%s/%d", pkg.SHA256, pkg.MD5, pkg.Size, wantSHA, md5Hex(content), len(content))
	}
	if pkg.Sign != wantSHA || pkg.SignMethod != "SHA256" || pkg.VerifyStatus != "unverified" || !pkg.NeedVerify {
		t.Errorf("sign/verify: %+v", pkg)
	}
	if pkg.Kind != "firmware" || pkg.Module != "default" || pkg.FileName != "thermo-2.0.0.bin" || len(pkg.SourceVersions) != 2 ||
		pkg.CustomInfo != `{"reboot":true}` || len(pkg.Tags) != 1 || pkg.CreatedAt.IsZero() {
		t.Errorf("package %+v", pkg)
	}
	if sent != int64(len(content)) || progressCalls < 2 {
		t.Errorf("progress reported %d bytes in %d calls", sent, progressCalls)
	}
	if got, err := e.Client.GetPackage(ctx, pkg.ID); err != nil || got.SHA256 != wantSHA {
		t.Fatalf("get: %+v %v", got, err)
	}

	// Whole file.
	d, err := e.Client.DownloadPackage(ctx, pkg.ID, nil)
	if err != nil {
		t.Fatal(err)
	}
	got, err := io.ReadAll(d.Body)
	d.Body.Close()
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(got, content) || d.Partial || d.SHA256 != wantSHA || d.ETag != `"`+wantSHA+`"` || d.FileName != "thermo-2.0.0.bin" {
		t.Fatalf("download: %d bytes, equal=%v, %+v", len(got), bytes.Equal(got, content), d)
	}

	// A range, resumed with If-Range.
	const off, n = 12_345_678, 1_000_003
	d, err = e.Client.DownloadPackage(ctx, pkg.ID, &client.Range{Offset: off, Length: n, IfRange: d.ETag})
	if err != nil {
		t.Fatal(err)
	}
	got, _ = io.ReadAll(d.Body)
	d.Body.Close()
	if !d.Partial || d.Offset != off || d.Total != int64(len(content)) || !bytes.Equal(got, content[off:off+n]) {
		t.Fatalf("range: partial=%v offset=%d total=%d len=%d equal=%v", d.Partial, d.Offset, d.Total, len(got), bytes.Equal(got, content[off:off+n]))
	}
	// The tail, open-ended.
	d, err = e.Client.DownloadPackage(ctx, pkg.ID, &client.Range{Offset: int64(len(content)) - 10})
	if err != nil {
		t.Fatal(err)
	}
	got, _ = io.ReadAll(d.Body)
	d.Body.Close()
	if !bytes.Equal(got, content[len(content)-10:]) {
		t.Fatalf("tail range: %x", got)
	}
	// A stale If-Range gets the whole file.
	d, err = e.Client.DownloadPackage(ctx, pkg.ID, &client.Range{Offset: 10, Length: 10, IfRange: `"stale"`})
	if err != nil {
		t.Fatal(err)
	}
	n2, _ := io.Copy(io.Discard, d.Body)
	d.Body.Close()
	if d.Partial || n2 != int64(len(content)) {
		t.Fatalf("stale If-Range: partial=%v, %d bytes", d.Partial, n2)
	}
	// A range past the end.
	_, err = e.Client.DownloadPackage(ctx, pkg.ID, &client.Range{Offset: int64(len(content)) + 1})
	if apiErr, ok := err.(*client.APIError); !ok || apiErr.Status != http.StatusRequestedRangeNotSatisfiable {
		t.Fatalf("unsatisfiable range: %v", err)
	}

	// The signed URL needs no credentials and serves the same bytes.
	u, err := e.Client.PackageURL(ctx, pkg.ID)
	if err != nil {
		t.Fatal(err)
	}
	resp, err := http.Get(u)
	if err != nil {
		t.Fatal(err)
	}
	h := sha256.New()
	_, _ = io.Copy(h, resp.Body)
	resp.Body.Close()
	if resp.StatusCode != 200 || hex.EncodeToString(h.Sum(nil)) != wantSHA {
		t.Fatalf("signed URL %s: %d", u, resp.StatusCode)
	}

	// Delete: 204, then gone, file included.
	if err := e.Client.DeletePackage(ctx, pkg.ID); err != nil {
		t.Fatal(err)
	}
	_, err = e.Client.GetPackage(ctx, pkg.ID)
	wantAPIError(t, err, 404, "not_found")
	_, err = e.Client.DownloadPackage(ctx, pkg.ID, nil)
	wantAPIError(t, err, 404, "not_found")
	err = e.Client.DeletePackage(ctx, pkg.ID)
	wantAPIError(t, err, 404, "not_found")
	if n := e.blobFiles(); n != 0 {
		t.Errorf("%d blob files left after delete", n)
	}
}

func TestPackageListAndFilters(t *testing.T) {
	e := newEnv(t, management.Options{})
	ctx := context.Background()
	c := e.Client
	setupProduct(t, e, "thermo")
	setupProduct(t, e, "lamp")
	if _, err := c.CreateModule(ctx, "thermo", client.ModuleCreate{Name: "modem"}); err != nil {
		t.Fatal(err)
	}
	upload := func(meta client.PackageMetadata) client.Package {
		t.Helper()
		p, err := c.UploadPackage(ctx, meta, meta.Name+".bin", bytes.NewReader(randomBytes(1000, uint64(len(meta.Name)))))
		if err != nil {
			t.Fatal(err)
		}
		return p
	}
	upload(client.PackageMetadata{Product: "thermo", Name: "t1", Version: "1.0"})
	upload(client.PackageMetadata{Product: "thermo", Name: "t2", Version: "2.0", Kind: "software"})
	modem := upload(client.PackageMetadata{Product: "thermo", Name: "m1", Version: "2.0", Kind: "module", Module: "modem", SignMethod: "md5"})
	upload(client.PackageMetadata{Product: "lamp", Name: "l1", Version: "1.0"})

	if modem.SignMethod != "MD5" || modem.Sign != modem.MD5 {
		t.Errorf("md5 package: method %q sign %q md5 %q", modem.SignMethod, modem.Sign, modem.MD5)
	}
	for _, tc := range []struct {
		f    client.PackageFilter
		want []string // newest first
	}{
		{client.PackageFilter{}, []string{"l1", "m1", "t2", "t1"}},
		{client.PackageFilter{Product: "thermo"}, []string{"m1", "t2", "t1"}},
		{client.PackageFilter{Module: "modem"}, []string{"m1"}},
		{client.PackageFilter{Kind: "software"}, []string{"t2"}},
		{client.PackageFilter{Version: "1.0"}, []string{"l1", "t1"}},
		{client.PackageFilter{Product: "thermo", Version: "2.0"}, []string{"m1", "t2"}},
		{client.PackageFilter{Name: "t1"}, []string{"t1"}},
		{client.PackageFilter{Page: client.Page{Limit: 2}}, []string{"l1", "m1"}},
		{client.PackageFilter{Page: client.Page{Limit: 2, Offset: 3}}, []string{"t1"}},
	} {
		l, err := c.ListPackages(ctx, tc.f)
		if err != nil {
			t.Fatal(err)
		}
		var names []string
		for _, p := range l.Items {
			names = append(names, p.Name)
		}
		if fmt.Sprint(names) != fmt.Sprint(tc.want) {
			t.Errorf("filter %+v: got %v, want %v", tc.f, names, tc.want)
		}
		if tc.f.Limit == 0 && l.Total != int64(len(tc.want)) {
			t.Errorf("filter %+v: total %d, want %d", tc.f, l.Total, len(tc.want))
		}
		if tc.f.Limit != 0 && tc.f.Product == "" && l.Total != 4 {
			t.Errorf("paged: total %d, want 4", l.Total)
		}
	}
	_, err := c.ListPackages(ctx, client.PackageFilter{Kind: "kernel"})
	wantAPIError(t, err, 400, "invalid", "kind")
	_, err = c.ListPackages(ctx, client.PackageFilter{Page: client.Page{Limit: -1}})
	if err != nil { // Limit ≤ 0 is not sent: the server default applies
		t.Fatal(err)
	}
	resp, _ := e.raw("GET", "/api/v1/packages?offset=-3", "", nil)
	if resp.StatusCode != 400 {
		t.Errorf("negative offset: %d", resp.StatusCode)
	}

	// Tenants do not see each other's packages.
	other := e.addTenant("acme")
	if l, err := other.ListPackages(ctx, client.PackageFilter{}); err != nil || l.Total != 0 {
		t.Fatalf("other tenant: %+v %v", l, err)
	}
	_, err = other.GetPackage(ctx, modem.ID)
	wantAPIError(t, err, 404, "not_found")
	_, err = other.DownloadPackage(ctx, modem.ID, nil)
	wantAPIError(t, err, 404, "not_found")
	err = other.DeletePackage(ctx, modem.ID)
	wantAPIError(t, err, 404, "not_found")
}

// TestPackageBadInput: each bad upload is a 4xx with a clear message, and
// leaves the package count and the blob store unchanged.
func TestPackageBadInput(t *testing.T) {
	e := newEnv(t, management.Options{})
	ctx := context.Background()
	setupProduct(t, e, "thermo")
	content := randomBytes(256<<10, 2)
	good := func() client.PackageMetadata {
		return client.PackageMetadata{Product: "thermo", Name: "fw", Version: "2.0.0"}
	}
	// One accepted package, so that "unchanged" is not "empty".
	if _, err := e.Client.UploadPackage(ctx, good(), "fw.bin", bytes.NewReader(content)); err != nil {
		t.Fatal(err)
	}
	baseCount, baseFiles := e.packageCount(), e.blobFiles()

	sources := make([]string, 21)
	for i := range sources {
		sources[i] = fmt.Sprintf("1.%d", i)
	}
	cases := []struct {
		name     string
		meta     func(m *client.PackageMetadata)
		fileName string
		content  []byte
		status   int
		code     string
		field    string
		fragment string
	}{
		{name: "illegal version characters", meta: func(m *client.PackageMetadata) { m.Version = "2.0 beta/1" }, status: 400, code: "invalid", field: "version", fragment: "only letters, digits"},
		{name: "21 source versions", meta: func(m *client.PackageMetadata) { m.SourceVersions = sources }, status: 400, code: "invalid", field: "source_versions", fragment: "at most 20"},
		{name: "source equals destination", meta: func(m *client.PackageMetadata) { m.SourceVersions = []string{"2.0.0"} }, status: 400, code: "invalid", field: "source_versions", fragment: "equals the destination"},
		{name: "sign mismatch", meta: func(m *client.PackageMetadata) { m.Sign = sha256Hex([]byte("another file")) }, status: 422, code: "sign_mismatch", field: "sign", fragment: "does not match"},
		{name: "md5 sign mismatch", meta: func(m *client.PackageMetadata) { m.SignMethod = "MD5"; m.Sign = md5Hex([]byte("x")) }, status: 422, code: "sign_mismatch", fragment: "does not match"},
		{name: "malformed sign", meta: func(m *client.PackageMetadata) { m.Sign = "abc" }, status: 400, code: "invalid", field: "sign", fragment: "64 hex digits"},
		{name: "unknown sign method", meta: func(m *client.PackageMetadata) { m.SignMethod = "CRC32" }, status: 400, code: "invalid", field: "sign_method", fragment: "CRC32"},
		{name: "unknown product", meta: func(m *client.PackageMetadata) { m.Product = "ghost" }, status: 404, code: "not_found", fragment: "ghost"},
		{name: "bad kind", meta: func(m *client.PackageMetadata) { m.Kind = "kernel" }, status: 400, code: "invalid", field: "kind", fragment: "kernel"},
		{name: "module without kind module", meta: func(m *client.PackageMetadata) { m.Module = "modem" }, status: 400, code: "invalid", field: "module"},
		{name: "unknown module", meta: func(m *client.PackageMetadata) { m.Kind = "module"; m.Module = "modem" }, status: 404, code: "not_found"},
		{name: "oversized custom info", meta: func(m *client.PackageMetadata) { m.CustomInfo = strings.Repeat("x", 4097) }, status: 400, code: "invalid", field: "custom_info", fragment: "4096"},
		{name: "oversized description", meta: func(m *client.PackageMetadata) { m.Description = strings.Repeat("é", 1025) }, status: 400, code: "invalid", field: "description", fragment: "1024"},
		{name: "bad name", meta: func(m *client.PackageMetadata) { m.Name = "fw\x07" }, status: 400, code: "invalid", field: "name", fragment: "control character"},
		{name: "missing version", meta: func(m *client.PackageMetadata) { m.Version = "" }, status: 400, code: "invalid", field: "version", fragment: "required"},
		{name: "differential without sources", meta: func(m *client.PackageMetadata) { m.Differential = true }, status: 400, code: "invalid", field: "source_versions"},
		{name: "too many tags", meta: func(m *client.PackageMetadata) {
			for i := range 11 {
				m.Tags = append(m.Tags, client.Tag{Key: fmt.Sprintf("k%d", i), Value: "v"})
			}
		}, status: 400, code: "invalid", field: "tags"},
		{name: "duplicate name", meta: func(m *client.PackageMetadata) { m.Version = "3.0" }, status: 409, code: "conflict", field: "name", fragment: "already exists"},
		{name: "bad file type", fileName: "fw.txt", status: 400, code: "invalid", field: "file", fragment: "unsupported type"},
		{name: "no file name", fileName: "", status: 400, code: "invalid", field: "file"},
		{name: "empty file", fileName: "fw2.bin", content: []byte{}, status: 400, code: "invalid", field: "file", fragment: "empty"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			meta := good()
			if tc.name != "duplicate name" {
				meta.Name = "fw-new"
			}
			if tc.meta != nil {
				tc.meta(&meta)
			}
			fileName := tc.fileName
			if fileName == "" && tc.name != "no file name" {
				fileName = "fw-new.bin"
			}
			body := content
			if tc.content != nil {
				body = tc.content
			}
			_, err := e.Client.UploadPackage(ctx, meta, fileName, bytes.NewReader(body))
			apiErr := wantAPIError(t, err, tc.status, tc.code, tc.fragment)
			if tc.field != "" && apiErr.Field != tc.field {
				t.Errorf("field %q, want %q (%s)", apiErr.Field, tc.field, apiErr.Message)
			}
			if n := e.packageCount(); n != baseCount {
				t.Errorf("package count %d, want %d", n, baseCount)
			}
			if n := e.blobFiles(); n != baseFiles {
				t.Errorf("%d blob files, want %d", n, baseFiles)
			}
		})
	}

	// Malformed multipart bodies, sent by hand.
	type part struct{ name, fileName, contentType, body string }
	metaJSON := func(m client.PackageMetadata) string { b, _ := json.Marshal(m); return string(b) }
	okMeta := metaJSON(client.PackageMetadata{Product: "thermo", Name: "fw-raw", Version: "9.0"})
	fileBody := string(content[:4096])
	raw := []struct {
		name     string
		parts    []part
		ctype    string // overrides the multipart content type
		rawBody  string
		noClose  bool // the closing boundary is left off
		status   int
		code     string
		fragment string
	}{
		{name: "metadata after file", parts: []part{{"file", "fw.bin", "", fileBody}, {"metadata", "", "application/json", okMeta}}, status: 400, code: "invalid", fragment: "must come before"},
		{name: "missing file part", parts: []part{{"metadata", "", "application/json", okMeta}}, status: 400, code: "invalid", fragment: `"file" part is missing`},
		{name: "no parts", parts: []part{}, status: 400, code: "invalid", fragment: "empty"},
		{name: "stray part", parts: []part{{"meta", "", "", okMeta}}, status: 400, code: "invalid", fragment: `unexpected part "meta"`},
		{name: "stray second part", parts: []part{{"metadata", "", "", okMeta}, {"blob", "x.bin", "", fileBody}}, status: 400, code: "invalid", fragment: `unexpected part "blob"`},
		{name: "malformed metadata JSON", parts: []part{{"metadata", "", "", `{"product": "thermo",`}, {"file", "fw.bin", "", fileBody}}, status: 400, code: "invalid", fragment: "metadata part is malformed JSON"},
		{name: "unknown metadata field", parts: []part{{"metadata", "", "", `{"product":"thermo","name":"x","version":"1","firmware_url":"http://x"}`}, {"file", "fw.bin", "", fileBody}}, status: 400, code: "invalid", fragment: `unknown field "firmware_url"`},
		{name: "metadata field of wrong type", parts: []part{{"metadata", "", "", `{"product":"thermo","name":"x","version":1}`}, {"file", "fw.bin", "", fileBody}}, status: 400, code: "invalid", fragment: `field "version" must be a string`},
		{name: "oversized metadata JSON", parts: []part{{"metadata", "", "", `{"product":"thermo","name":"x","version":"1","description":"` + strings.Repeat("x", 2<<20) + `"}`}, {"file", "fw.bin", "", fileBody}}, status: 413, code: "too_large", fragment: "metadata part is larger"},
		{name: "not multipart", ctype: "application/json", rawBody: okMeta, status: 400, code: "invalid", fragment: "multipart/form-data"},
		{name: "file without the closing boundary", parts: []part{{"metadata", "", "", okMeta}, {"file", "fw.bin", "", fileBody}}, noClose: true, status: 400, code: "invalid", fragment: "closing boundary"},
		{name: "broken multipart", ctype: "multipart/form-data; boundary=xyz", rawBody: "--xyz\r\nno headers end", status: 400, code: "invalid", fragment: "malformed multipart"},
	}
	for _, tc := range raw {
		t.Run(tc.name, func(t *testing.T) {
			var buf bytes.Buffer
			ctype := tc.ctype
			if tc.parts != nil {
				mw := multipart.NewWriter(&buf)
				for _, p := range tc.parts {
					h := textproto.MIMEHeader{}
					disp := fmt.Sprintf(`form-data; name=%q`, p.name)
					if p.fileName != "" {
						disp += fmt.Sprintf(`; filename=%q`, p.fileName)
					}
					h.Set("Content-Disposition", disp)
					if p.contentType != "" {
						h.Set("Content-Type", p.contentType)
					}
					w, _ := mw.CreatePart(h)
					io.WriteString(w, p.body)
				}
				mw.Close()
				ctype = mw.FormDataContentType()
				if tc.noClose {
					buf.Truncate(bytes.LastIndex(buf.Bytes(), []byte("\r\n--"+mw.Boundary()+"--")))
				}
			} else {
				buf.WriteString(tc.rawBody)
			}
			resp, body := e.raw("POST", "/api/v1/packages", ctype, &buf)
			var eb errorBody
			_ = json.Unmarshal(body, &eb)
			if resp.StatusCode != tc.status || eb.Code != tc.code || !strings.Contains(eb.Message, tc.fragment) {
				t.Fatalf("got %d %q %q, want %d %s mentioning %q", resp.StatusCode, eb.Code, eb.Message, tc.status, tc.code, tc.fragment)
			}
			if eb.RequestID == "" {
				t.Error("no request id")
			}
			if n := e.packageCount(); n != baseCount {
				t.Errorf("package count %d, want %d", n, baseCount)
			}
			if n := e.blobFiles(); n != baseFiles {
				t.Errorf("%d blob files, want %d", n, baseFiles)
			}
		})
	}

	// Unauthenticated uploads are refused before anything is read.
	_, err := client.New(e.URL, testKeyID, "wrong").UploadPackage(ctx, good(), "fw9.bin", bytes.NewReader(content))
	wantAPIError(t, err, 401, "unauthenticated")
	if n := e.packageCount(); n != baseCount {
		t.Errorf("package count %d, want %d", n, baseCount)
	}
}

// TestRejectedLargeUpload: a bad package with a large file is refused from
// its metadata, before the file is read; the client gets the clean 4xx, not
// a broken pipe.
func TestRejectedLargeUpload(t *testing.T) {
	e := newEnv(t, management.Options{})
	ctx := context.Background()
	setupProduct(t, e, "thermo")
	big := randomBytes(20<<20, 3)
	_, err := e.Client.UploadPackage(ctx, client.PackageMetadata{Product: "thermo", Name: "big", Version: "bad version"}, "big.bin", bytes.NewReader(big))
	wantAPIError(t, err, 400, "invalid", "version")
	if n := e.blobFiles(); n != 0 {
		t.Errorf("%d blob files left", n)
	}
}

// genReader yields n deterministic pseudo-random bytes without holding them.
type genReader struct {
	r *rand.ChaCha8
	n int64
}

func (g *genReader) Read(p []byte) (int, error) {
	if g.n <= 0 {
		return 0, io.EOF
	}
	if int64(len(p)) > g.n {
		p = p[:g.n]
	}
	_, _ = g.r.Read(p)
	g.n -= int64(len(p))
	return len(p), nil
}

// TestTransfersStream: uploading and downloading 64 MB allocates far less
// than 64 MB in the whole process (client, API, service and blob store), so
// nothing buffers the file.
func TestTransfersStream(t *testing.T) {
	if testing.Short() {
		t.Skip("64 MB transfer")
	}
	e := newEnv(t, management.Options{})
	ctx := context.Background()
	setupProduct(t, e, "thermo")
	const size = 64 << 20
	const budget = 16 << 20

	allocated := func() uint64 {
		var m runtime.MemStats
		runtime.ReadMemStats(&m)
		return m.TotalAlloc
	}
	h := sha256.New()
	src := io.TeeReader(&genReader{r: rand.NewChaCha8([32]byte{9}), n: size}, h)
	before := allocated()
	pkg, err := e.Client.UploadPackage(ctx, client.PackageMetadata{Product: "thermo", Name: "big", Version: "1"}, "big.img", src)
	if err != nil {
		t.Fatal(err)
	}
	up := allocated() - before
	t.Logf("upload of %d MB allocated %.1f MB", size>>20, float64(up)/(1<<20))
	if up > budget {
		t.Errorf("uploading %d bytes allocated %d bytes: something buffers the file", size, up)
	}
	if want := hex.EncodeToString(h.Sum(nil)); pkg.SHA256 != want || pkg.Size != size {
		t.Fatalf("measured %s/%d, want %s/%d", pkg.SHA256, pkg.Size, want, size)
	}

	before = allocated()
	d, err := e.Client.DownloadPackage(ctx, pkg.ID, nil)
	if err != nil {
		t.Fatal(err)
	}
	h.Reset()
	n, err := io.Copy(h, d.Body)
	d.Body.Close()
	if err != nil || n != size || hex.EncodeToString(h.Sum(nil)) != pkg.SHA256 {
		t.Fatalf("download: %d bytes, %v", n, err)
	}
	down := allocated() - before
	t.Logf("download of %d MB allocated %.1f MB", size>>20, float64(down)/(1<<20))
	if down > budget {
		t.Errorf("downloading %d bytes allocated %d bytes: something buffers the file", size, down)
	}
}
