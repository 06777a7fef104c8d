package ota

import (
	"strings"
	"testing"
)

func TestCheckDeviceAuth(t *testing.T) {
	x509 := Product{Key: "p", Protocol: ProtocolHuawei, Auth: AuthX509}
	secret := Product{Key: "s", Protocol: ProtocolNative, Auth: AuthSecret}
	native509 := Product{Key: "n", Protocol: ProtocolNative, Auth: AuthX509}
	cases := []struct {
		p     Product
		proof DeviceProof
		want  string // "" = accepted, else a substring of the error
	}{
		{x509, DeviceProof{Cert: true, CertCN: "p_d1"}, ""},
		{x509, DeviceProof{Cert: true, CertCN: "p_d1", Secret: true}, ""},
		{x509, DeviceProof{Secret: true}, `CN is "p_d1"`},
		{x509, DeviceProof{Cert: true, CertCN: "p_d2"}, `needs CN "p_d1"`},
		{native509, DeviceProof{Cert: true, CertCN: "n.d1"}, ""},
		{native509, DeviceProof{Cert: true, CertCN: "n_d1"}, `needs CN "n.d1"`},
		{secret, DeviceProof{Secret: true}, ""},
		{secret, DeviceProof{Secret: true, Cert: true, CertCN: "s.d1"}, ""},
		{secret, DeviceProof{Cert: true, CertCN: "s.d1"}, "a client certificate alone is not accepted"},
	}
	for _, tc := range cases {
		err := tc.p.CheckDeviceAuth("d1", tc.proof)
		switch {
		case tc.want == "" && err != nil:
			t.Errorf("%s %+v refused: %v", tc.p.Auth, tc.proof, err)
		case tc.want != "" && (ErrorCode(err) != CodeUnauthenticated || !strings.Contains(err.Error(), tc.want)):
			t.Errorf("%s %+v = %v; want unauthenticated with %q", tc.p.Auth, tc.proof, err, tc.want)
		}
	}
}

// Software packages upgrade the software module; a device that never
// reported a software version runs its firmware version there.
func TestSoftwareModule(t *testing.T) {
	if m := (&Package{Kind: KindSoftware, Module: DefaultModule}).TargetModule(); m != SoftwareModule {
		t.Errorf("software package targets %q", m)
	}
	if m := (&Package{Kind: KindFirmware, Module: DefaultModule}).TargetModule(); m != DefaultModule {
		t.Errorf("firmware package targets %q", m)
	}
	one := Device{Versions: map[string]string{DefaultModule: "1.0"}}
	both := Device{Versions: map[string]string{DefaultModule: "1.0", SoftwareModule: "S1"}}
	if one.Version(SoftwareModule) != "1.0" || both.Version(SoftwareModule) != "S1" || both.Version("") != "1.0" {
		t.Errorf("versions: %q %q %q", one.Version(SoftwareModule), both.Version(SoftwareModule), both.Version(""))
	}
	if err := (&Module{Name: SoftwareModule}).Validate(); ErrorCode(err) != CodeInvalid {
		t.Errorf("custom module %q: %v; want refused", SoftwareModule, err)
	}
}
