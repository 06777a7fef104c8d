package huaweiiotda_test

import (
	"bytes"
	"context"
	"errors"
	"strings"
	"testing"

	"github.com/updraft-ota/updraft/client"
)

// TestObjectsInAnotherTenantsBucket: a bucket another tenant owns is refused
// with 403 in both dialects (IOTDA.000021 in Huawei's envelope), and nothing
// is recorded.
func TestObjectsInAnotherTenantsBucket(t *testing.T) {
	e := newEnv(t)
	e.product("prod1")
	// Another tenant's first use of the bucket, as its own PutObject would do.
	owner, err := e.srv.Store().ClaimBucket(context.Background(), "another-tenant", "their-bucket", e.svc.Now())
	if err != nil || owner != "another-tenant" {
		t.Fatalf("ClaimBucket = %q, %v", owner, err)
	}

	_, err = e.native.PutObject(context.Background(), "their-bucket", "app.bin", bytes.NewReader(firmware), int64(len(firmware)))
	var ae *client.APIError
	if !errors.As(err, &ae) || ae.Status != 403 || ae.Code != "forbidden" || !strings.Contains(ae.Message, "belongs to another tenant") {
		t.Fatalf("native PutObject into another tenant's bucket: %v, want 403 forbidden", err)
	}

	for _, mode := range modes {
		t.Run(mode, func(t *testing.T) {
			_, err := e.client(mode).CreateOtaPackage(createPkgReq("prod1", "V2.0", "their-bucket", "app.bin", nil))
			se := wantAPIError(t, err, 403, "IOTDA.000021")
			if !strings.Contains(se.ErrorMessage, `bucket "their-bucket" belongs to another tenant`) {
				t.Errorf("error_msg = %q", se.ErrorMessage)
			}
			if n := e.packageCount(); n != 0 {
				t.Fatalf("%d packages recorded, want 0", n)
			}
		})
	}
}
