package huaweiiotda_test

import (
	"context"
	"testing"

	"github.com/huaweicloud/huaweicloud-sdk-go-v3/services/iotda/v5/model"

	"github.com/updraft-ota/updraft/client"
)

// TestAuditHuaweiChanges: a change made with the official SDK is in the
// audit log at once, naming the key, the package and the X-Request-Id the
// SDK received; a refused change leaves no entry.
func TestAuditHuaweiChanges(t *testing.T) {
	e := newEnv(t)
	e.product("prod1")
	sum := e.putObject("fw-bucket", "dir/app.bin", firmware)
	rec := &recorder{}
	c := e.client(modeSDK, withRecorder(rec))
	created, err := c.CreateOtaPackage(createPkgReq("prod1", "V2.0", "fw-bucket", "dir/app.bin", ptr(sum)))
	if err != nil {
		t.Fatal(err)
	}
	createReqID := rec.header.Get("X-Request-Id")
	if createReqID == "" {
		t.Fatal("no X-Request-Id on the response")
	}
	if _, err := c.CreateOtaPackage(createPkgReq("no-such-product", "V3.0", "fw-bucket", "dir/app.bin", ptr(sum))); err == nil {
		t.Fatal("a package of a missing product was created")
	}
	if _, err := c.DeleteOtaPackage(&model.DeleteOtaPackageRequest{PackageId: *created.PackageId}); err != nil {
		t.Fatal(err)
	}
	deleteReqID := rec.header.Get("X-Request-Id")

	l, err := e.native.ListAudit(context.Background(), client.AuditFilter{ResourceType: "package"})
	if err != nil {
		t.Fatal(err)
	}
	if l.Total != 2 || len(l.Items) != 2 {
		t.Fatalf("package audit entries: %+v", l)
	}
	del, cre := l.Items[0], l.Items[1]
	if cre.Action != "package.create" || cre.ResourceID != *created.PackageId || cre.ActorKeyID != e.ak ||
		cre.RequestID != createReqID || cre.Tenant != e.project {
		t.Fatalf("create entry %+v (request id %s)", cre, createReqID)
	}
	if del.Action != "package.delete" || del.ResourceID != *created.PackageId || del.RequestID != deleteReqID || del.RequestID == createReqID {
		t.Fatalf("delete entry %+v (request id %s)", del, deleteReqID)
	}
}
