package main

// What the operator commands (product, device, package, job) share: which
// server and key to use, the output format, and how results are printed.

import (
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"
	"golang.org/x/term"

	"github.com/updraft-ota/updraft/client"
	"github.com/updraft-ota/updraft/internal/config"
	"github.com/updraft-ota/updraft/internal/server"
)

// defaultServer is used when no flag, variable or credentials file names one.
const defaultServer = "http://127.0.0.1:8080"

// addClientFlags gives an operator command group the flags that choose the
// server, the key and the output format. Call it on each group's parent
// command (product, device, package, job).
func addClientFlags(cmd *cobra.Command) {
	f := cmd.PersistentFlags()
	f.String("server", "", "server URL (env UPDRAFT_SERVER; default: credentials.json's, else "+defaultServer+")")
	f.String("key", "", "access key as ID:SECRET (env UPDRAFT_KEY; default: <data>/credentials.json)")
	f.String("data", "", "data directory holding credentials.json (env UPDRAFT_DATA; default "+config.Default().DataDir+")")
	f.String("output", "table", "output format: table or json")
	f.String("ca-cert", "", "CA certificate (PEM) to trust for an https server besides the system's (env UPDRAFT_CA_CERT; default: credentials.json's, written by serve --tls auto)")
}

// flagOrEnv returns the flag's value, else the environment variable's.
func flagOrEnv(cmd *cobra.Command, flag, env string) string {
	if v, _ := cmd.Flags().GetString(flag); v != "" {
		return v
	}
	return os.Getenv(env)
}

// newAPIClient builds the API client from resolveAccess.
func newAPIClient(cmd *cobra.Command) (*client.Client, error) {
	serverURL, id, secret, err := resolveAccess(cmd)
	if err != nil {
		return nil, err
	}
	opts := []client.Option{client.WithUserAgent("updraft-cli")}
	if ca := caCertFile(cmd); ca != "" && strings.HasPrefix(serverURL, "https://") {
		hc, err := trustingClient(ca)
		if err != nil {
			return nil, err
		}
		opts = append(opts, client.WithHTTPClient(hc))
	}
	return client.New(serverURL, id, secret, opts...), nil
}

// caCertFile is the extra CA to trust: --ca-cert, UPDRAFT_CA_CERT, else the
// auto CA that credentials.json names.
func caCertFile(cmd *cobra.Command) string {
	if cmd.Flags().Lookup("ca-cert") != nil {
		if v := flagOrEnv(cmd, "ca-cert", "UPDRAFT_CA_CERT"); v != "" {
			return v
		}
	} else if v := os.Getenv("UPDRAFT_CA_CERT"); v != "" {
		return v
	}
	if creds, err := server.ReadCredentials(credentialsPath(cmd)); err == nil {
		return creds.CA
	}
	return ""
}

// trustingClient is an HTTP client that trusts the system roots and the CA
// certificates in caFile.
func trustingClient(caFile string) (*http.Client, error) {
	tc, err := trustConfig(caFile)
	if err != nil {
		return nil, err
	}
	tr := http.DefaultTransport.(*http.Transport).Clone()
	tr.TLSClientConfig = tc
	return &http.Client{Transport: tr}, nil
}

// trustConfig is a TLS client configuration that trusts the system roots
// and the CA certificates in caFile.
func trustConfig(caFile string) (*tls.Config, error) {
	pem, err := os.ReadFile(caFile)
	if err != nil {
		return nil, fmt.Errorf("--ca-cert %s: %w", caFile, err)
	}
	pool, err := x509.SystemCertPool()
	if err != nil || pool == nil {
		pool = x509.NewCertPool()
	}
	if !pool.AppendCertsFromPEM(pem) {
		return nil, fmt.Errorf("--ca-cert %s holds no PEM certificate", caFile)
	}
	return &tls.Config{RootCAs: pool, MinVersion: tls.VersionTLS12}, nil
}

// resolveAccess finds the server and access key: flags (--server, --key),
// then UPDRAFT_SERVER and UPDRAFT_KEY, then <data>/credentials.json (written
// by the first `updraft serve`; --data or UPDRAFT_DATA), then the default
// server. It needs the command to have "server", "key" and "data" flags.
func resolveAccess(cmd *cobra.Command) (serverURL, keyID, secret string, err error) {
	serverURL = flagOrEnv(cmd, "server", "UPDRAFT_SERVER")
	key := flagOrEnv(cmd, "key", "UPDRAFT_KEY")
	if serverURL == "" || key == "" {
		path := credentialsPath(cmd)
		creds, err := server.ReadCredentials(path)
		switch {
		case err == nil:
			if key == "" {
				key = creds.AccessKeyID + ":" + creds.SecretAccessKey
			}
			if serverURL == "" {
				serverURL = creds.Server
			}
		case errors.Is(err, fs.ErrNotExist):
		case key == "":
			return "", "", "", fmt.Errorf("reading the access key from %s: %w", path, err)
		}
	}
	if serverURL == "" {
		serverURL = defaultServer
	}
	if !strings.Contains(serverURL, "://") {
		serverURL = "http://" + serverURL // --server 127.0.0.1:8080
	}
	if key == "" {
		return serverURL, "", "", errNoAccessKey
	}
	id, sec, ok := strings.Cut(key, ":")
	if !ok || id == "" || sec == "" {
		return "", "", "", errors.New("the access key must be ID:SECRET (--key or UPDRAFT_KEY)")
	}
	return serverURL, id, sec, nil
}

// credentialsPath is <data>/credentials.json (--data, UPDRAFT_DATA, or the
// server's default data directory).
func credentialsPath(cmd *cobra.Command) string {
	data := flagOrEnv(cmd, "data", "UPDRAFT_DATA")
	if data == "" {
		data = config.Default().DataDir
	}
	return filepath.Join(data, server.CredentialsFile)
}

var errNoAccessKey = errors.New("no access key: pass --key ID:SECRET, set UPDRAFT_KEY, or run where updraft-data/credentials.json is (or point --data at its directory)")

// outputJSON reports whether --output is json (and rejects unknown formats).
func outputJSON(cmd *cobra.Command) (bool, error) {
	switch f, _ := cmd.Flags().GetString("output"); f {
	case "json":
		return true, nil
	case "table", "":
		return false, nil
	default:
		return false, fmt.Errorf("--output %q: use table or json", f)
	}
}

// printJSON writes v indented.
func printJSON(w io.Writer, v any) error {
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	return enc.Encode(v)
}

// table writes aligned columns; call flush when done.
type table struct{ tw *tabwriter.Writer }

func newTable(w io.Writer, header ...string) *table {
	t := &table{tw: tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)}
	t.row(header...)
	return t
}

func (t *table) row(cells ...string) { fmt.Fprintln(t.tw, strings.Join(cells, "\t")) }
func (t *table) flush() error        { return t.tw.Flush() }

// fields prints "name: value" lines, aligned.
func printFields(w io.Writer, kv ...string) error {
	tw := tabwriter.NewWriter(w, 0, 4, 1, ' ', 0)
	for i := 0; i+1 < len(kv); i += 2 {
		fmt.Fprintf(tw, "%s:\t%s\n", kv[i], kv[i+1])
	}
	return tw.Flush()
}

// when formats a time for tables ("-" for none).
func when(t time.Time) string {
	if t.IsZero() {
		return "-"
	}
	return t.UTC().Format(time.RFC3339)
}

// isTerminal reports whether w is a terminal (progress bars only go there).
func isTerminal(w io.Writer) bool {
	f, ok := w.(*os.File)
	return ok && term.IsTerminal(int(f.Fd()))
}

// pageFlags adds --limit and --offset to a list command.
func pageFlags(cmd *cobra.Command, p *client.Page) {
	cmd.Flags().IntVar(&p.Limit, "limit", 0, "at most this many items (server default 100, max 1000)")
	cmd.Flags().IntVar(&p.Offset, "offset", 0, "skip this many items")
}

// footer prints "N of TOTAL" under a table when the page is not everything.
func footer(w io.Writer, shown int, total int64) {
	if int64(shown) < total {
		fmt.Fprintf(w, "(%d of %d; use --limit and --offset for more)\n", shown, total)
	}
}
