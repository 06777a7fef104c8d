package management_test

import (
	"bytes"
	"encoding/json"
	"fmt"
	"log/slog"
	"mime/multipart"
	"net"
	"net/textproto"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/updraft-ota/updraft/client"
	"github.com/updraft-ota/updraft/internal/api/management"
	"github.com/updraft-ota/updraft/internal/service"
	"github.com/updraft-ota/updraft/internal/testenv"
)

type lockedBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *lockedBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *lockedBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}

// TestUploadClientGone: a client that closes the connection in the middle
// of a package's file leaves no package and no file behind, and the server
// does not log it as its own error.
func TestUploadClientGone(t *testing.T) {
	var logs lockedBuffer
	e := newEnv(t, management.Options{Log: slog.New(slog.NewTextHandler(&logs, &slog.HandlerOptions{Level: slog.LevelDebug}))})
	setupProduct(t, e, "thermo")
	base := e.packageCount()

	var head bytes.Buffer
	mw := multipart.NewWriter(&head)
	meta, _ := mw.CreateFormField("metadata")
	fmt.Fprint(meta, `{"product":"thermo","name":"gone","version":"1.0"}`)
	h := textproto.MIMEHeader{}
	h.Set("Content-Disposition", `form-data; name="file"; filename="fw.bin"`)
	file, _ := mw.CreatePart(h)
	file.Write(bytes.Repeat([]byte{0xA5}, 256<<10)) // a quarter of the declared file, then the client hangs up

	conn, err := net.Dial("tcp", strings.TrimPrefix(e.URL, "http://"))
	if err != nil {
		t.Fatal(err)
	}
	fmt.Fprintf(conn, "POST /api/v1/packages HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer %s:%s\r\nContent-Type: %s\r\nContent-Length: %d\r\n\r\n",
		testKeyID, testSecret, mw.FormDataContentType(), head.Len()+(1<<20))
	if _, err := conn.Write(head.Bytes()); err != nil {
		t.Fatal(err)
	}
	// Wait until the server is storing the file (a temporary file exists),
	// so the hang-up lands mid-upload.
	testenv.Within(t, 10*time.Second, "the upload to start", func() {
		for e.blobFiles() == 0 {
			time.Sleep(5 * time.Millisecond)
		}
	})
	conn.Close()

	testenv.Within(t, 10*time.Second, "the partial file to be removed", func() {
		for e.blobFiles() != 0 {
			time.Sleep(10 * time.Millisecond)
		}
	})
	if n := e.packageCount(); n != base {
		t.Errorf("packages %d, want %d", n, base)
	}
	if l := logs.String(); strings.Contains(l, "level=ERROR") {
		t.Errorf("a client hang-up was logged as a server error:\n%s", l)
	}
}

// TestUploadLimit: the package size limit (service.Options.MaxPackageSize,
// 1 GB by default; 64 KiB here) takes a file of exactly the limit and
// refuses one byte more with 413 too_large, keeping nothing.
func TestUploadLimit(t *testing.T) {
	const limit = 64 << 10
	e := startEnv(t, &testClock{t: time.Date(2025, 3, 1, 12, 0, 0, 0, time.UTC), step: time.Second}, nil,
		management.Options{}, service.Options{MaxPackageSize: limit})
	setupProduct(t, e, "thermo")
	ctx := t.Context()
	_, err := e.Client.UploadPackage(ctx, client.PackageMetadata{Product: "thermo", Name: "at-limit", Version: "1.0"}, "fw.bin", bytes.NewReader(randomBytes(limit, 1)))
	if err != nil {
		t.Fatalf("a file of exactly the limit: %v", err)
	}
	files := e.blobFiles()
	_, err = e.Client.UploadPackage(ctx, client.PackageMetadata{Product: "thermo", Name: "over", Version: "1.1"}, "fw.bin", bytes.NewReader(randomBytes(limit+1, 2)))
	wantAPIError(t, err, 413, "too_large", fmt.Sprint(limit))
	if n := e.packageCount(); n != 1 {
		t.Errorf("packages %d, want 1", n)
	}
	if n := e.blobFiles(); n != files {
		t.Errorf("blob files %d, want %d", n, files)
	}
}

// TestJSONBodyLimit: a JSON body of exactly MaxJSONBody bytes is read (and
// judged on its content); one byte more is 413 too_large in the native
// envelope.
func TestJSONBodyLimit(t *testing.T) {
	const limit = 4096
	e := newEnv(t, management.Options{MaxJSONBody: limit})
	body := func(n int) string {
		s := `{"key":"p1","name":"P1"}`
		return s + strings.Repeat(" ", n-len(s))
	}
	resp, b := e.raw("POST", "/api/v1/products", "application/json", strings.NewReader(body(limit)))
	if resp.StatusCode != 201 {
		t.Fatalf("a body of exactly the limit: %d %s", resp.StatusCode, b)
	}
	resp, b = e.raw("POST", "/api/v1/products", "application/json", strings.NewReader(body(limit+1)))
	var eb errorBody
	_ = json.Unmarshal(b, &eb)
	if resp.StatusCode != 413 || eb.Code != "too_large" || eb.RequestID == "" {
		t.Fatalf("one byte over: %d %s", resp.StatusCode, b)
	}
}
