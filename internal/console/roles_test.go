package console_test

import (
	"context"
	"net/http"
	"net/url"
	"strings"
	"testing"

	"github.com/updraft-ota/updraft/client"
)

// TestReadonlyKeyChangesNothing: a console signed in with a readonly key
// shows pages, may sign out, and is refused every change with its real
// CSRF token.
func TestReadonlyKeyChangesNothing(t *testing.T) {
	srv, creds := startServer(t, nil)
	api := client.New(srv.URL(), creds.AccessKeyID, creds.SecretAccessKey)
	ctx := context.Background()
	if _, err := api.CreateProduct(ctx, client.ProductCreate{Key: "rop", Name: "readonly"}); err != nil {
		t.Fatal(err)
	}
	pkg, err := api.UploadPackage(ctx, client.PackageMetadata{Product: "rop", Name: "fw", Version: "2.0"}, "fw.bin", strings.NewReader("firmware"))
	if err != nil {
		t.Fatal(err)
	}
	ro, err := api.CreateKey(ctx, "", "readonly")
	if err != nil {
		t.Fatal(err)
	}
	o := newOperator(t, srv)
	o.signIn(ro.ID, ro.Secret)
	token := o.csrf("/packages/" + pkg.ID)
	code, _, body := o.do("POST", "/packages/"+pkg.ID+"/delete", url.Values{"csrf": {token}})
	if code != http.StatusForbidden || !strings.Contains(body, "readonly") {
		t.Fatalf("readonly delete: %d\n%s", code, body)
	}
	if _, err := api.GetPackage(ctx, pkg.ID); err != nil {
		t.Fatalf("the package is gone after a readonly delete: %v", err)
	}
	code, _, body = o.do("POST", "/jobs", url.Values{"csrf": {token}, "package": {pkg.ID}, "target": {"all"}})
	if code != http.StatusForbidden || !strings.Contains(body, "readonly") {
		t.Fatalf("readonly job create: %d\n%s", code, body)
	}
	if jobs, err := api.ListJobs(ctx, client.JobFilter{}); err != nil || jobs.Total != 0 {
		t.Fatalf("jobs after a readonly create: %+v %v", jobs, err)
	}
	if code, _, _ := o.do("POST", "/signout", url.Values{"csrf": {token}}); code != http.StatusSeeOther {
		t.Fatalf("readonly sign-out: %d", code)
	}
}
