package ota

import "fmt"

// CertName is the common name (CN) of the client certificate that identifies
// a device of a product with auth x509: the id the device connects with. For
// protocols that derive a device id that id (Huawei: "{product}_{device}",
// its MQTT username), else "{product}.{device}" (the native MQTT client id).
func (p Protocol) CertName(productKey, name string) string {
	if id := p.DeviceID(productKey, name); id != "" {
		return id
	}
	return productKey + "." + name
}

// DeviceProof is what a device presented when it connected.
type DeviceProof struct {
	// Secret: it proved the device secret (a valid signature or password).
	Secret bool
	// Cert: it presented a client certificate that chains to a CA the server
	// trusts for devices; CertCN is that certificate's common name.
	Cert   bool
	CertCN string
}

// CheckDeviceAuth decides whether device name of product p may connect with
// proof. A product with auth x509 takes a client certificate whose CN is the
// device's CertName, and nothing else (its secret proves nothing); a product
// with auth secret takes the secret, and a certificate alone proves nothing.
func (p Product) CheckDeviceAuth(name string, proof DeviceProof) error {
	switch p.Auth {
	case AuthX509:
		want := p.Protocol.CertName(p.Key, name)
		if !proof.Cert {
			return &Error{Code: CodeUnauthenticated, Message: fmt.Sprintf(
				"product %q authenticates its devices by client certificate (auth x509): connect over TLS with a certificate whose CN is %q; a secret is not accepted", p.Key, want)}
		}
		if proof.CertCN != want {
			return &Error{Code: CodeUnauthenticated, Message: fmt.Sprintf(
				"the client certificate's CN %q is not this device's: device %q of product %q needs CN %q", proof.CertCN, name, p.Key, want)}
		}
		return nil
	default:
		if !proof.Secret {
			return &Error{Code: CodeUnauthenticated, Message: fmt.Sprintf(
				"product %q authenticates its devices by secret (auth secret): a client certificate alone is not accepted; sign the connection with the device secret", p.Key)}
		}
		return nil
	}
}
