package aliyuniot_test

import (
	"context"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/updraft-ota/updraft/internal/config"
)

// TestUploadLimitOSS: --max-uploads-per-tenant 1: while one upload of the
// tenant is in progress, the OSS-style form upload is answered as OSS
// answers too many requests at once (503 ActiveRequestLimitExceeded); once
// it has finished the same form is accepted.
func TestUploadLimitOSS(t *testing.T) {
	e := newEnvWith(t, func(c *config.Config) { c.MaxUploadsPerTenant = "1" })
	c := e.tea("", e.ak, e.sk)
	d := c.mustCall("GenerateOTAUploadURL", nil)["Data"].(map[string]any)

	r, w := io.Pipe()
	done := make(chan error, 1)
	go func() { _, err := e.svc.PutObject(context.Background(), e.p, "held-uploads", "held", r); done <- err }()
	wrote := make(chan error, 1)
	go func() { _, err := w.Write([]byte("x")); wrote <- err }()
	select {
	case err := <-wrote:
		if err != nil {
			t.Fatal(err)
		}
	case err := <-done:
		t.Fatalf("the held upload ended before its file did: %v", err)
	case <-time.After(30 * time.Second):
		t.Fatal("waited 30 s for the service to start reading the held upload's file")
	}

	status, body := upload(t, str(d["Host"]), str(d["Key"]), str(d["OSSAccessKeyId"]), str(d["Policy"]), str(d["Signature"]), []byte("firmware"))
	if status != http.StatusServiceUnavailable || !strings.Contains(body, "<Code>ActiveRequestLimitExceeded</Code>") {
		t.Fatalf("an upload over the limit: %d %s; want 503 ActiveRequestLimitExceeded", status, body)
	}
	_ = w.Close()
	select {
	case err := <-done:
		if err != nil {
			t.Fatal(err)
		}
	case <-time.After(30 * time.Second):
		t.Fatal("waited 30 s for the held upload to finish")
	}
	if status, body := upload(t, str(d["Host"]), str(d["Key"]), str(d["OSSAccessKeyId"]), str(d["Policy"]), str(d["Signature"]), []byte("firmware")); status != http.StatusNoContent {
		t.Fatalf("the upload once the slot is free: %d %s", status, body)
	}
}
