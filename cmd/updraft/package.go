package main

import (
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"github.com/dustin/go-humanize"
	"github.com/schollz/progressbar/v3"
	"github.com/spf13/cobra"

	"github.com/updraft-ota/updraft/client"
)

func init() { rootCmd.AddCommand(newPackageCmd()) }

func newPackageCmd() *cobra.Command {
	cmd := &cobra.Command{Use: "package", Short: "Upload, list, show, download and delete packages"}
	addClientFlags(cmd)
	cmd.AddCommand(newPackageUploadCmd(), newPackageListCmd(), newPackageShowCmd(), newPackageDeleteCmd(), newPackageDownloadCmd(),
		newPackageUpdateCmd())
	return cmd
}

func newPackageUploadCmd() *cobra.Command {
	var meta client.PackageMetadata
	var tags []string
	cmd := &cobra.Command{
		Use:   "upload FILE --product P --version V",
		Short: "Upload a package file and print its id and SHA-256",
		Long: `Upload a package file, streaming it to the server, which measures its size,
SHA-256 and MD5, checks --sign against them, and records the package.

The file must end in one of .bin .tar.gz .tar.xz .dav .tar .gz .zip .gzip .apk
.pack .exe .bat .img and be at most 1 GB. --name defaults to PRODUCT-[MODULE-]VERSION
(with characters a name may not hold replaced by '_'). A module package needs
--kind module --module M.`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			c, err := newAPIClient(cmd)
			if err != nil {
				return err
			}
			asJSON, err := outputJSON(cmd)
			if err != nil {
				return err
			}
			f, err := openUpload(args[0], "upload")
			if err != nil {
				return err
			}
			defer f.Close()
			if meta.Name == "" {
				meta.Name = defaultPackageName(meta.Product, meta.Module, meta.Version)
			}
			if meta.Tags, err = parseTags(tags); err != nil {
				return err
			}
			p, err := c.UploadPackage(cmd.Context(), meta, f.name, f, f.progress(cmd)...)
			if err != nil {
				return err
			}
			if asJSON {
				return printJSON(cmd.OutOrStdout(), p)
			}
			return printFields(cmd.OutOrStdout(), "id", p.ID, "sha256", p.SHA256, "name", p.Name, "version", p.Version,
				"size", fmt.Sprintf("%d (%s)", p.Size, humanize.IBytes(uint64(p.Size))))
		},
	}
	fl := cmd.Flags()
	fl.StringVar(&meta.Product, "product", "", "product key (required)")
	fl.StringVar(&meta.Version, "version", "", "destination version (required)")
	fl.StringVar(&meta.Module, "module", "", "module (with --kind module; default: the whole firmware)")
	fl.StringVar(&meta.Kind, "kind", "", "firmware (default), software or module")
	fl.StringVar(&meta.Name, "name", "", "package name, unique (default PRODUCT-[MODULE-]VERSION)")
	fl.StringArrayVar(&meta.SourceVersions, "source-version", nil, "a version this package upgrades from (repeatable, at most 20)")
	fl.BoolVar(&meta.Differential, "differential", false, "the file is a delta that applies only to --source-version")
	fl.StringVar(&meta.Description, "desc", "", "description")
	fl.StringVar(&meta.CustomInfo, "custom-info", "", "text sent to devices with the upgrade notice (at most 4096 characters)")
	fl.StringVar(&meta.SignMethod, "sign-method", "", "SHA256 (default) or MD5")
	fl.StringVar(&meta.Sign, "sign", "", "expected hex digest of the file; the upload fails if it does not match")
	fl.BoolVar(&meta.NeedVerify, "need-verify", false, "require a passed verify job before upgrade jobs")
	fl.StringArrayVar(&tags, "tag", nil, "KEY=VALUE label (repeatable)")
	_ = cmd.MarkFlagRequired("product")
	_ = cmd.MarkFlagRequired("version")
	return cmd
}

// defaultPackageName builds a name from what identifies the package, keeping
// the characters a package name allows.
func defaultPackageName(product, module, version string) string {
	parts := []string{product}
	if module != "" && module != "default" {
		parts = append(parts, module)
	}
	parts = append(parts, version)
	name := []rune(strings.Map(func(r rune) rune {
		if r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || r == '-' || r == '_' || r == '(' || r == ')' {
			return r
		}
		return '_'
	}, strings.Join(parts, "-")))
	if len(name) > 40 {
		name = name[:40]
	}
	return string(name)
}

func parseTags(in []string) ([]client.Tag, error) {
	var tags []client.Tag
	for _, s := range in {
		k, v, ok := strings.Cut(s, "=")
		if !ok {
			return nil, fmt.Errorf("--tag %q: use KEY=VALUE", s)
		}
		tags = append(tags, client.Tag{Key: k, Value: v})
	}
	return tags, nil
}

// newProgressBar returns a byte progress bar on stderr, or nil when stderr is
// not a terminal (scripts, CI, tests).
func newProgressBar(cmd *cobra.Command, size int64, what string) *progressbar.ProgressBar {
	w := cmd.ErrOrStderr()
	if !isTerminal(w) {
		return nil
	}
	return progressbar.NewOptions64(size,
		progressbar.OptionSetWriter(w),
		progressbar.OptionSetDescription(what),
		progressbar.OptionShowBytes(true),
		progressbar.OptionShowTotalBytes(true),
		progressbar.OptionSetWidth(30),
		progressbar.OptionThrottle(100*time.Millisecond),
		progressbar.OptionClearOnFinish(),
	)
}

func newPackageListCmd() *cobra.Command {
	var f client.PackageFilter
	cmd := &cobra.Command{
		Use:   "list",
		Short: "List packages, newest first",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			c, err := newAPIClient(cmd)
			if err != nil {
				return err
			}
			l, err := c.ListPackages(cmd.Context(), f)
			if err != nil {
				return err
			}
			asJSON, err := outputJSON(cmd)
			if err != nil || asJSON {
				return orPrintJSON(cmd, err, l)
			}
			t := newTable(cmd.OutOrStdout(), "ID", "NAME", "PRODUCT", "MODULE", "KIND", "VERSION", "SIZE", "VERIFY", "CREATED")
			for _, p := range l.Items {
				t.row(p.ID, p.Name, p.Product, p.Module, p.Kind, p.Version, humanize.IBytes(uint64(p.Size)), p.VerifyStatus, when(p.CreatedAt))
			}
			if err := t.flush(); err != nil {
				return err
			}
			footer(cmd.OutOrStdout(), len(l.Items), l.Total)
			return nil
		},
	}
	fl := cmd.Flags()
	fl.StringVar(&f.Product, "product", "", "only this product's packages")
	fl.StringVar(&f.Module, "module", "", "only this module's packages")
	fl.StringVar(&f.Kind, "kind", "", "only firmware, software or module packages")
	fl.StringVar(&f.Version, "version", "", "only packages to this version")
	fl.StringVar(&f.Name, "name", "", "only the package with this name")
	pageFlags(cmd, &f.Page)
	return cmd
}

func newPackageShowCmd() *cobra.Command {
	return &cobra.Command{
		Use:   "show ID",
		Short: "Show a package",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			c, err := newAPIClient(cmd)
			if err != nil {
				return err
			}
			p, err := c.GetPackage(cmd.Context(), args[0])
			if err != nil {
				return err
			}
			asJSON, err := outputJSON(cmd)
			if err != nil || asJSON {
				return orPrintJSON(cmd, err, p)
			}
			tags := make([]string, len(p.Tags))
			for i, t := range p.Tags {
				tags[i] = t.Key + "=" + t.Value
			}
			return printFields(cmd.OutOrStdout(),
				"id", p.ID, "name", p.Name, "product", p.Product, "module", p.Module, "kind", p.Kind,
				"version", p.Version, "source versions", strings.Join(p.SourceVersions, ","),
				"differential", strconv.FormatBool(p.Differential), "file", p.FileName,
				"size", fmt.Sprintf("%d (%s)", p.Size, humanize.IBytes(uint64(p.Size))),
				"sha256", p.SHA256, "md5", p.MD5, "sign", p.SignMethod+" "+p.Sign,
				"verify", fmt.Sprintf("%s (need verify: %v)", p.VerifyStatus, p.NeedVerify),
				"description", p.Description, "custom info", p.CustomInfo, "tags", strings.Join(tags, ","),
				"created", when(p.CreatedAt), "modified", when(p.ModifiedAt))
		},
	}
}

func newPackageDeleteCmd() *cobra.Command {
	return &cobra.Command{
		Use:   "delete ID",
		Short: "Delete a package and its file (refused while an unfinished job uses it)",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			c, err := newAPIClient(cmd)
			if err != nil {
				return err
			}
			if err := c.DeletePackage(cmd.Context(), args[0]); err != nil {
				return err
			}
			fmt.Fprintf(cmd.OutOrStdout(), "deleted package %s\n", args[0])
			return nil
		},
	}
}

func newPackageDownloadCmd() *cobra.Command {
	var out string
	cmd := &cobra.Command{
		Use:   "download ID [-o FILE]",
		Short: "Download a package file and check its SHA-256",
		Long: `Download a package file to FILE (default: its file name, in the current
directory; "-" writes to stdout) and check its SHA-256. The file appears only
once complete and verified.`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			c, err := newAPIClient(cmd)
			if err != nil {
				return err
			}
			asJSON, err := outputJSON(cmd)
			if err != nil {
				return err
			}
			d, err := c.DownloadPackage(cmd.Context(), args[0], nil)
			if err != nil {
				return err
			}
			defer d.Body.Close()
			if out == "" {
				out = filepath.Base(d.FileName)
				if out == "." || out == "/" || out == "" {
					out = args[0] + ".bin"
				}
			}
			var body io.Reader = d.Body
			if bar := newProgressBar(cmd, d.Length, "downloading "+args[0]); bar != nil && out != "-" {
				body = io.TeeReader(d.Body, bar)
				defer bar.Exit()
			}
			n, sum, err := saveVerified(cmd, out, body, d.SHA256)
			if err != nil {
				return err
			}
			switch {
			case out == "-":
				return nil
			case asJSON:
				return printJSON(cmd.OutOrStdout(), map[string]any{"file": out, "size": n, "sha256": sum})
			default:
				return printFields(cmd.OutOrStdout(), "file", out, "size", strconv.FormatInt(n, 10), "sha256", sum+" (verified)")
			}
		},
	}
	cmd.Flags().StringVarP(&out, "out", "o", "", `write to FILE ("-" for stdout; default: the package's file name)`)
	return cmd
}

// saveVerified copies body to path ("-": stdout) while hashing it; a file is
// written under a temporary name and renamed only when its SHA-256 matches.
func saveVerified(cmd *cobra.Command, path string, body io.Reader, wantSHA string) (int64, string, error) {
	h := sha256.New()
	if path == "-" {
		n, err := io.Copy(io.MultiWriter(cmd.OutOrStdout(), h), body)
		if err != nil {
			return n, "", err
		}
		sum := hex.EncodeToString(h.Sum(nil))
		if wantSHA != "" && sum != wantSHA {
			return n, sum, fmt.Errorf("the download's SHA-256 %s does not match the package's %s", sum, wantSHA)
		}
		return n, sum, nil
	}
	tmp, err := os.CreateTemp(filepath.Dir(path), "."+filepath.Base(path)+".*.part")
	if err != nil {
		return 0, "", err
	}
	defer os.Remove(tmp.Name()) // after a successful rename, a no-op
	n, err := io.Copy(io.MultiWriter(tmp, h), body)
	if cerr := tmp.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return n, "", fmt.Errorf("downloading: %w", err)
	}
	sum := hex.EncodeToString(h.Sum(nil))
	if wantSHA != "" && sum != wantSHA {
		return n, sum, fmt.Errorf("the download's SHA-256 %s does not match the package's %s: nothing was saved", sum, wantSHA)
	}
	if err := os.Rename(tmp.Name(), path); err != nil {
		return n, sum, err
	}
	return n, sum, nil
}
