package main

import (
	"fmt"

	"github.com/dustin/go-humanize"
	"github.com/spf13/cobra"

	"github.com/updraft-ota/updraft/client"
	"github.com/updraft-ota/updraft/internal/config"
)

func init() { rootCmd.AddCommand(newObjectCmd()) }

// The object commands take the access key as --key like every other command;
// the object's own key is --object-key (Huawei's object_key). --access-key is
// the old name of --key, kept (deprecated) for scripts.
func newObjectCmd() *cobra.Command {
	cmd := &cobra.Command{
		Use:   "object",
		Short: "Store files by bucket and key, to register them as packages by reference",
		Long: `Store files in the server's object store by bucket and key. Huawei IoTDA's
CreateOtaPackage then names such a file in file_location.obs_location
(bucket_name, object_key) instead of uploading it.`,
	}
	f := cmd.PersistentFlags()
	f.String("server", "", "server URL (env UPDRAFT_SERVER; default: credentials.json's, else "+defaultServer+")")
	f.String("key", "", "access key as ID:SECRET (env UPDRAFT_KEY; default: <data>/credentials.json)")
	f.String("access-key", "", "old name of --key")
	_ = f.MarkDeprecated("access-key", "use --key ID:SECRET (the object's key is --object-key)")
	f.String("data", "", "data directory holding credentials.json (env UPDRAFT_DATA; default "+config.Default().DataDir+")")
	f.String("output", "table", "output format: table or json")
	cmd.AddCommand(newObjectPutCmd())
	return cmd
}

// objectAPIClient is newAPIClient, with the deprecated --access-key standing
// in for --key.
func objectAPIClient(cmd *cobra.Command) (*client.Client, error) {
	if old, _ := cmd.Flags().GetString("access-key"); old != "" {
		if cur, _ := cmd.Flags().GetString("key"); cur != "" && cur != old {
			return nil, fmt.Errorf("--access-key is the old name of --key: give one of them")
		}
		if err := cmd.Flags().Set("key", old); err != nil {
			return nil, err
		}
	}
	return newAPIClient(cmd)
}

func newObjectPutCmd() *cobra.Command {
	var bucket, key string
	cmd := &cobra.Command{
		Use:   "put --bucket B --object-key K FILE",
		Short: "Store FILE as bucket/key and print its size and SHA-256",
		Long: `Store FILE as object K in bucket B, streaming it to the server, which measures
its size, SHA-256 and MD5. The bucket is 3–63 lowercase letters, digits, '.'
and '-'; the key is up to 1024 characters and may contain '/' (folders). Files
are at most 1 GB. An object a package uses cannot be replaced.

The printed SHA-256 is what Huawei's CreateOtaPackage takes as sign.`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			if bucket == "" || key == "" {
				return usageErr(cmd, "--bucket and --object-key are required")
			}
			c, err := objectAPIClient(cmd)
			if err != nil {
				return err
			}
			asJSON, err := outputJSON(cmd)
			if err != nil {
				return err
			}
			f, err := openUpload(args[0], "put")
			if err != nil {
				return err
			}
			defer f.Close()
			obj, err := c.PutObject(cmd.Context(), bucket, key, f, f.size, f.progress(cmd)...)
			if err != nil {
				return err
			}
			if asJSON {
				return printJSON(cmd.OutOrStdout(), obj)
			}
			return printFields(cmd.OutOrStdout(),
				"bucket", obj.Bucket,
				"key", obj.Key,
				"size", fmt.Sprintf("%d (%s)", obj.Size, humanize.IBytes(uint64(obj.Size))),
				"sha256", obj.SHA256,
				"md5", obj.MD5,
			)
		},
	}
	cmd.Flags().StringVar(&bucket, "bucket", "", "bucket name (required)")
	cmd.Flags().StringVar(&key, "object-key", "", "object key, e.g. releases/v2.0/app.bin (required)")
	return cmd
}
