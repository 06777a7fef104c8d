package server_test

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"mime/multipart"
	"net/http"
	"testing"
	"time"

	"github.com/updraft-ota/updraft/client"
	"github.com/updraft-ota/updraft/internal/api/httpx"
	"github.com/updraft-ota/updraft/internal/config"
	"github.com/updraft-ota/updraft/internal/server"
	"github.com/updraft-ota/updraft/internal/service"
)

// holdObjectUpload starts an object upload through the server's service
// whose file never ends, and returns once the service is reading it (it
// holds an upload slot), with the function that ends it.
func holdObjectUpload(t *testing.T, svc *service.Service, p service.Principal, key string) (finish func()) {
	t.Helper()
	r, w := io.Pipe()
	done := make(chan error, 1)
	go func() { _, err := svc.PutObject(context.Background(), p, "held-uploads", key, r); done <- err }()
	wrote := make(chan error, 1)
	go func() { _, err := w.Write([]byte("x")); wrote <- err }()
	select {
	case err := <-wrote:
		if err != nil {
			t.Fatalf("the held upload: %v", err)
		}
	case err := <-done:
		t.Fatalf("the held upload ended before its file did: %v", err)
	case <-time.After(30 * time.Second):
		t.Fatal("waited 30 s for the service to start reading the held upload's file")
	}
	return func() {
		_ = w.Close()
		select {
		case err := <-done:
			if err != nil {
				t.Fatalf("the held upload failed: %v", err)
			}
		case <-time.After(30 * time.Second):
			t.Fatal("waited 30 s for a finished upload to be answered")
		}
	}
}

// TestUploadLimitNative: --max-uploads-per-tenant 1: while one upload of
// the tenant is in progress, a package upload on the native API is 429
// rate_limited with Retry-After, and once it has finished the same upload
// is accepted.
func TestUploadLimitNative(t *testing.T) {
	s := server.StartForTest(t, func(c *config.Config) { c.MaxUploadsPerTenant = "1" })
	creds, _ := s.Credentials()
	cl := client.New(s.URL(), creds.AccessKeyID, creds.SecretAccessKey)
	if _, err := cl.CreateProduct(context.Background(), client.ProductCreate{Key: "thermo", Name: "thermo"}); err != nil {
		t.Fatal(err)
	}
	upload := func() (*http.Response, string) {
		var b bytes.Buffer
		mw := multipart.NewWriter(&b)
		_ = mw.WriteField("metadata", `{"product":"thermo","name":"fw","version":"1.1.0"}`)
		fw, _ := mw.CreateFormFile("file", "fw.bin")
		_, _ = fw.Write([]byte("firmware"))
		_ = mw.Close()
		req, _ := http.NewRequest("POST", s.URL()+"/api/v1/packages", &b)
		req.Header.Set("Content-Type", mw.FormDataContentType())
		req.Header.Set("Authorization", "Bearer "+creds.AccessKeyID+":"+creds.SecretAccessKey)
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		body, _ := io.ReadAll(resp.Body)
		return resp, string(body)
	}
	finish := holdObjectUpload(t, s.Service(), service.Principal{TenantID: creds.Tenant, AccessKeyID: creds.AccessKeyID}, "held")
	resp, body := upload()
	var eb httpx.ErrorBody
	_ = json.Unmarshal([]byte(body), &eb)
	if resp.StatusCode != http.StatusTooManyRequests || eb.Code != "rate_limited" || resp.Header.Get("Retry-After") == "" {
		t.Fatalf("an upload over the limit: %d %q Retry-After %q; want 429 rate_limited with Retry-After", resp.StatusCode, body, resp.Header.Get("Retry-After"))
	}
	finish()
	if resp, body := upload(); resp.StatusCode != http.StatusCreated {
		t.Fatalf("the upload once the slot is free: %d %s", resp.StatusCode, body)
	}
}
