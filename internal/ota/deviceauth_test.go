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
