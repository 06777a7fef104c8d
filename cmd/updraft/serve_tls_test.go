package main

import (
	"bytes"
	"crypto/tls"
	"crypto/x509"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
)

// `serve --tls auto` prints where ca.pem is and serves HTTPS that a client
// trusting only that CA accepts; a second start reuses the same CA.
func TestServeTLSAuto(t *testing.T) {
	data := t.TempDir()
	var firstCA []byte
	for i := range 2 {
		cmd, addr, stdout, stderr := startServe(t, nil, "--data", data, "--http", "127.0.0.1:0", "--tls", "auto", "--mqtts", "127.0.0.1:0")
		ca := filepath.Join(data, "ca.pem")
		if !stdout.waitFor(ca) {
			t.Errorf("start %d: stdout does not name %s:\n%s", i+1, ca, stdout)
		}
		if url, _ := stderr.serving["url"].(string); url != "https://"+addr {
			t.Errorf("start %d: serving url %q; want https://%s", i+1, url, addr)
		}
		pem, err := os.ReadFile(ca)
		if err != nil {
			t.Fatal(err)
		}
		if i == 0 {
			firstCA = pem
		} else if !bytes.Equal(pem, firstCA) {
			t.Error("a restart replaced the CA")
		}
		roots := x509.NewCertPool()
		roots.AppendCertsFromPEM(pem)
		hc := &http.Client{Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: roots}}}
		resp, err := hc.Get("https://" + addr + "/healthz")
		if err != nil {
			t.Fatalf("start %d: %v", i+1, err)
		}
		resp.Body.Close()
		// The CLI finds the server and the CA in credentials.json.
		var out, errOut bytes.Buffer
		cli := updraft(t, nil, "product", "list", "--data", data, "--output", "json")
		cli.Stdout, cli.Stderr = &out, &errOut
		if err := cli.Run(); err != nil {
			t.Errorf("start %d: updraft product list over HTTPS: %v: %s", i+1, err, errOut.String())
		}
		if i == 0 {
			// A device certificate from the same CA, named for a Huawei device.
			var certOut bytes.Buffer
			issue := updraft(t, nil, "tls", "device-cert", "--data", data, "--product", "hp", "--device", "d1", "--protocol", "huawei", "--out", t.TempDir())
			issue.Stdout, issue.Stderr = &certOut, &certOut
			if err := issue.Run(); err != nil || !strings.Contains(certOut.String(), "CN          hp_d1") {
				t.Errorf("tls device-cert: %v: %s", err, certOut.String())
			}
		}
		if fi, err := os.Stat(filepath.Join(data, "ca-key.pem")); err != nil || fi.Mode().Perm() != 0o600 {
			t.Errorf("ca-key.pem: %v %v", err, fi.Mode())
		}
		cmd.Process.Signal(syscall.SIGTERM)
		if code := waitExit(t, cmd); code != 0 {
			t.Fatalf("exit %d", code)
		}
	}
}

// A missing key file, or a key without a certificate (from the
// environment), stops serve with exit 1 and the flag named.
func TestServeTLSFlagErrors(t *testing.T) {
	dir := t.TempDir()
	cert := filepath.Join(dir, "cert.pem")
	os.WriteFile(cert, []byte("x"), 0o600)
	for _, tc := range []struct {
		env  []string
		args []string
		want string
	}{
		{nil, []string{"--tls-cert", cert, "--tls-key", filepath.Join(dir, "missing.pem")}, "--tls-key"},
		{[]string{"UPDRAFT_TLS_KEY=" + cert}, nil, "add --tls-cert FILE"},
	} {
		var stderr bytes.Buffer
		cmd := updraft(t, tc.env, append([]string{"serve", "--data", t.TempDir(), "--http", "127.0.0.1:0", "--mqtt", "off"}, tc.args...)...)
		cmd.Stderr = &stderr
		cmd.Run()
		if cmd.ProcessState.ExitCode() != 1 || !strings.Contains(stderr.String(), tc.want) {
			t.Errorf("%v %v: exit %d, stderr %q; want %q", tc.env, tc.args, cmd.ProcessState.ExitCode(), stderr.String(), tc.want)
		}
	}
}
