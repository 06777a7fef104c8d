package huaweiiotda_test

import (
	"testing"
)

// TestSeed000SignMethodAndFileTypes: a sign_method the request carries is
// echoed in the response; an object whose name is not one of the documented
// file types is refused, as an upload would be, and registers nothing.
func TestSeed000SignMethodAndFileTypes(t *testing.T) {
	e := newEnv(t)
	e.product("prod1")
	sum := e.putObject("fw-bucket", "seed/app.bin", firmware)
	c := e.client(modeSDK)
	req := createPkgReq("prod1", "V2.0", "fw-bucket", "seed/app.bin", ptr(sum))
	req.Body.FileLocation.ObsLocation.SignMethod = ptr("SHA256")
	created, err := c.CreateOtaPackage(req)
	if err != nil {
		t.Fatal(err)
	}
	if o := created.FileLocation.ObsLocation; o == nil || o.SignMethod == nil || *o.SignMethod != "SHA256" {
		t.Fatalf("sign_method not echoed: %+v", created.FileLocation)
	}

	before := e.packageCount()
	txt := e.putObject("fw-bucket", "seed/readme.txt", firmware)
	_, err = c.CreateOtaPackage(createPkgReq("prod1", "V3.0", "fw-bucket", "seed/readme.txt", ptr(txt)))
	wantAPIError(t, err, 400, "IOTDA.000006")
	// Just inside: a documented two-part suffix.
	tgz := e.putObject("fw-bucket", "seed/app.tar.gz", firmware)
	if _, err := c.CreateOtaPackage(createPkgReq("prod1", "V3.1", "fw-bucket", "seed/app.tar.gz", ptr(tgz))); err != nil {
		t.Fatalf(".tar.gz refused: %v", err)
	}
	if n := e.packageCount(); n != before+1 {
		t.Fatalf("%d packages, want %d: the .txt object must register nothing", n, before+1)
	}
}
