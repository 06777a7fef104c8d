package main

import (
	"fmt"
	"os"
	"path/filepath"
	"time"

	"github.com/spf13/cobra"

	"github.com/updraft-ota/updraft/internal/config"
	"github.com/updraft-ota/updraft/internal/ota"
)

func init() { rootCmd.AddCommand(newTLSCmd()) }

func newTLSCmd() *cobra.Command {
	cmd := &cobra.Command{
		Use:   "tls",
		Short: "Certificates of the local CA that `serve --tls auto` created",
	}
	var product, device, protocol, data, out string
	issue := &cobra.Command{
		Use:   "device-cert",
		Short: "Issue a device client certificate (products with auth x509) from <data>/ca.pem",
		Long: `Issue a client certificate for a device of a product with auth x509, signed by the
local CA in the data directory (created by ` + "`updraft serve --tls auto`" + `). Its CN is the id the
device connects with: {product}.{device} for native products, {product}_{device}
(the device_id) for Huawei products. Writes <out>/<CN>.pem and <out>/<CN>-key.pem (0600).`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if product == "" || device == "" {
				return fmt.Errorf("--product and --device are required")
			}
			if err := ota.CheckProtocol("protocol", ota.Protocol(protocol)); err != nil {
				return fmt.Errorf("--protocol %q: use native, huawei, alibaba or enos (the product's protocol)", protocol)
			}
			if data == "" {
				data = os.Getenv("UPDRAFT_DATA")
			}
			if data == "" {
				data = config.Default().DataDir
			}
			if _, err := os.Stat(filepath.Join(data, config.CAFile)); err != nil {
				return fmt.Errorf("--data %s has no %s: start `updraft serve --tls auto --data %s` once to create the CA", data, config.CAFile, data)
			}
			cn := ota.Protocol(protocol).CertName(product, device)
			certPEM, keyPEM, err := config.IssueClientCert(data, cn, time.Now())
			if err != nil {
				return err
			}
			if out == "" {
				out = "."
			}
			certPath, keyPath := filepath.Join(out, cn+".pem"), filepath.Join(out, cn+"-key.pem")
			if err := os.WriteFile(keyPath, keyPEM, 0o600); err != nil {
				return err
			}
			if err := os.WriteFile(certPath, certPEM, 0o644); err != nil {
				return err
			}
			fmt.Fprintf(cmd.OutOrStdout(), "certificate %s\nkey         %s\nCN          %s\ntrust       %s\n",
				certPath, keyPath, cn, filepath.Join(data, config.CAFile))
			return nil
		},
	}
	f := issue.Flags()
	f.StringVar(&product, "product", "", "product key")
	f.StringVar(&device, "device", "", "device name")
	f.StringVar(&protocol, "protocol", string(ota.ProtocolNative), "the product's protocol: native or huawei (decides the CN)")
	f.StringVar(&data, "data", "", "data directory of the server (env UPDRAFT_DATA; default "+config.Default().DataDir+")")
	f.StringVar(&out, "out", ".", "directory to write the certificate and key to")
	cmd.AddCommand(issue)
	return cmd
}
