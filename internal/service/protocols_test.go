package service_test

import (
	"strings"
	"testing"

	"github.com/updraft-ota/updraft/internal/ota"
)

// A product names its device protocol (native by default) and auth mode
// (secret by default); anything else is refused with the field named.
func TestProductProtocolAndAuth(t *testing.T) {
	e := newFoundationEnv(t)
	p, err := e.svc.CreateProduct(e.ctx, e.a, ota.Product{Key: "plain", Name: "Plain"})
	if err != nil || p.Protocol != ota.ProtocolNative || p.Auth != ota.AuthSecret {
		t.Fatalf("default product = %+v, %v; want native/secret", p, err)
	}
	if _, err := e.svc.CreateProduct(e.ctx, e.a, ota.Product{Key: "hw", Name: "HW", Protocol: ota.ProtocolHuawei, Auth: ota.AuthX509}); err != nil {
		t.Fatal(err)
	}
	got, err := e.svc.GetProduct(e.ctx, e.a, "hw")
	if err != nil || got.Protocol != ota.ProtocolHuawei || got.Auth != ota.AuthX509 {
		t.Fatalf("stored product = %+v, %v; want huawei/x509", got, err)
	}
	if proto, err := e.svc.ProductProtocol(e.ctx, "hw"); err != nil || proto != ota.ProtocolHuawei {
		t.Fatalf("ProductProtocol = %q, %v", proto, err)
	}
	for _, bad := range []ota.Product{
		{Key: "b1", Name: "B", Protocol: "coap"},
		{Key: "b2", Name: "B", Auth: "token"},
	} {
		_, err := e.svc.CreateProduct(e.ctx, e.a, bad)
		field := "protocol"
		if bad.Auth != "" {
			field = "auth"
		}
		if ota.ErrorCode(err) != ota.CodeInvalid || ota.ErrorField(err) != field {
			t.Errorf("CreateProduct(%+v) = %v; want invalid %s", bad, err, field)
		}
		if _, err := e.svc.GetProduct(e.ctx, e.a, bad.Key); ota.ErrorCode(err) != ota.CodeNotFound {
			t.Errorf("refused product %s was stored: %v", bad.Key, err)
		}
	}
}

// Huawei device ids are {product}_{device}: another tenant cannot create a
// device whose id reads the same as an existing one's, so it can never take
// that device's connection or its notices. Native products derive no id and
// do not collide.
func TestHuaweiDeviceIDsAreUniqueAcrossTenants(t *testing.T) {
	e := newFoundationEnv(t)
	mustProduct := func(p ota.Product, who string) {
		t.Helper()
		pr := e.a
		if who == "b" {
			pr = e.b
		}
		if _, err := e.svc.CreateProduct(e.ctx, pr, p); err != nil {
			t.Fatal(err)
		}
	}
	mustProduct(ota.Product{Key: "coll3_x", Name: "A", Protocol: ota.ProtocolHuawei}, "a")
	mustProduct(ota.Product{Key: "coll3", Name: "B", Protocol: ota.ProtocolHuawei}, "b")
	mustProduct(ota.Product{Key: "coll3_n", Name: "native", Protocol: ota.ProtocolNative}, "b")
	dev, err := e.svc.CreateDevice(e.ctx, e.a, ota.Device{ProductKey: "coll3_x", Name: "dev"})
	if err != nil || dev.ProtocolID != "coll3_x_dev" {
		t.Fatalf("CreateDevice = %+v, %v; want protocol id coll3_x_dev", dev, err)
	}
	_, err = e.svc.CreateDevice(e.ctx, e.b, ota.Device{ProductKey: "coll3", Name: "x_dev"})
	if ota.ErrorCode(err) != ota.CodeConflict || !strings.Contains(err.Error(), `"coll3_x_dev"`) || !strings.Contains(err.Error(), "choose another device name") {
		t.Fatalf("colliding device = %v; want a conflict naming the id", err)
	}
	if _, err := e.svc.GetDevice(e.ctx, e.b, "coll3", "x_dev"); ota.ErrorCode(err) != ota.CodeNotFound {
		t.Fatalf("refused device was stored: %v", err)
	}
	// A device name taken in the same product is still reported as such.
	_, err = e.svc.CreateDevice(e.ctx, e.a, ota.Device{ProductKey: "coll3_x", Name: "dev"})
	if ota.ErrorCode(err) != ota.CodeConflict || !strings.Contains(err.Error(), "already exists in product") {
		t.Fatalf("duplicate device = %v", err)
	}
	// Native products derive no id: "coll3_n"/"x_dev" and a Huawei
	// "coll3"/"n_x_dev" may both exist.
	if _, err := e.svc.CreateDevice(e.ctx, e.b, ota.Device{ProductKey: "coll3_n", Name: "x_dev"}); err != nil {
		t.Fatal(err)
	}
	if d, err := e.svc.CreateDevice(e.ctx, e.b, ota.Device{ProductKey: "coll3", Name: "n_x_dev"}); err != nil || d.ProtocolID != "coll3_n_x_dev" {
		t.Fatalf("CreateDevice = %+v, %v", d, err)
	}
}
