package ota

import (
	"strings"
	"time"
)

// PackageKind says what a package upgrades. Huawei's package_type and batch
// task_type map onto it one to one.
type PackageKind string

const (
	KindFirmware PackageKind = "firmware"
	KindSoftware PackageKind = "software"
	KindModule   PackageKind = "module"
)

// CheckPackageKind accepts firmware, software and module.
func CheckPackageKind(field string, k PackageKind) error {
	switch k {
	case KindFirmware, KindSoftware, KindModule:
		return nil
	}
	return Invalid(field, "kind %q is not one of firmware, software, module", k)
}

// SignMethod is the digest a package is signed with and devices verify.
type SignMethod string

const (
	SignSHA256 SignMethod = "SHA256"
	SignMD5    SignMethod = "MD5"
)

// ParseSignMethod accepts the vendors' spellings (SHA256, SHA-256, sha256,
// Md5, MD5…). An empty string is SHA256.
func ParseSignMethod(s string) (SignMethod, error) {
	switch strings.ToUpper(strings.ReplaceAll(s, "-", "")) {
	case "", "SHA256":
		return SignSHA256, nil
	case "MD5":
		return SignMD5, nil
	}
	return "", Invalid("sign_method", "sign method %q is not supported: use SHA256 or MD5", s)
}

// VerifyStatus is where a package stands on its verification gate.
type VerifyStatus string

const (
	VerifyNotNeeded  VerifyStatus = "not_needed" // Alibaba Status −1
	VerifyPending    VerifyStatus = "unverified" // 0
	VerifyInProgress VerifyStatus = "verifying"  // 2
	VerifyPassed     VerifyStatus = "verified"   // 1
	VerifyFailed     VerifyStatus = "failed"     // 3
)

// Tag is a key/value label carried by packages and jobs (and sent to devices
// with job notices as Alibaba's extData).
type Tag struct {
	Key   string
	Value string
}

// Package is a registered upgrade file: what it upgrades, to which version,
// from which versions, and the blob holding its bytes.
type Package struct {
	ID             string
	TenantID       string
	ProductKey     string
	Module         string // DefaultModule unless Kind is KindModule
	Kind           PackageKind
	Name           string
	LocalNames     map[string]string // the name in other languages, by locale such as en_US (CheckLocalNames)
	Version        string            // destination version
	Differential   bool              // the file is a delta that applies only to SourceVersions
	SourceVersions []string          // versions it upgrades from; for a full package an optional filter
	Description    string
	CustomInfo     string // pushed to devices with the notice
	SignMethod     SignMethod
	Sign           string // hex digest devices verify; = SHA256 or MD5 below
	NeedVerify     bool
	VerifyStatus   VerifyStatus
	Tags           []Tag
	Space          string // resource space label (Huawei app_id); echoed back, no rules attached

	// The blob: where it is and what was measured while storing it.
	Region   string // object-store region the caller named (Huawei obs region_name); informational
	Bucket   string
	Key      string // object key in Bucket
	External bool   // registered from an existing object (not uploaded through Updraft): never deleted with the package
	FileName string
	Size     int64
	SHA256   string // lowercase hex
	MD5      string // lowercase hex

	CreatedAt  time.Time
	ModifiedAt time.Time
}

// NewPackageStatus is the verification status a package starts in.
func NewPackageStatus(needVerify bool) VerifyStatus {
	if needVerify {
		return VerifyPending
	}
	return VerifyNotNeeded
}

// Normalize fills defaults before validation: the module, the sign method.
func (p *Package) Normalize() {
	if p.Module == "" {
		p.Module = DefaultModule
	}
	if p.Kind == "" {
		p.Kind = KindFirmware
	}
	if p.SignMethod == "" {
		p.SignMethod = SignSHA256
	}
	p.Sign = strings.ToLower(p.Sign)
}

// TargetModule is the module whose version a package upgrades, where its
// jobs and tasks live: SoftwareModule for software packages, else Module.
func (p *Package) TargetModule() string {
	if p.Kind == KindSoftware {
		return SoftwareModule
	}
	return p.Module
}

// Validate checks everything about a package that does not need its file.
// File-dependent checks (size, sign against content, file type) are
// CheckFileName, CheckFileSize and CheckSign.
func (p *Package) Validate() error {
	if err := CheckProductKey("product", p.ProductKey); err != nil {
		return err
	}
	switch p.Kind {
	case KindFirmware, KindSoftware:
		if p.Module != DefaultModule {
			return Invalid("module", "module %q needs kind %q; %s packages upgrade the default module", p.Module, KindModule, p.Kind)
		}
	case KindModule:
		if err := CheckModuleName("module", p.Module); err != nil {
			return err
		}
		if p.Module == DefaultModule {
			return Invalid("module", "a module package names its custom module; the default module takes kind firmware or software")
		}
	default:
		return CheckPackageKind("kind", p.Kind)
	}
	if err := CheckPackageName("name", p.Name); err != nil {
		return err
	}
	if err := CheckLocalNames("local_names", p.LocalNames, CheckPackageName); err != nil {
		return err
	}
	if err := CheckVersion("version", p.Version); err != nil {
		return err
	}
	if err := CheckSourceVersions("source_versions", p.SourceVersions, p.Version); err != nil {
		return err
	}
	if p.Differential && len(p.SourceVersions) == 0 {
		return Invalid("source_versions", "a differential package needs at least one source version")
	}
	if err := CheckLen("description", p.Description, MaxDescriptionLen); err != nil {
		return err
	}
	if err := CheckLen("custom_info", p.CustomInfo, MaxCustomInfoLen); err != nil {
		return err
	}
	if _, err := ParseSignMethod(string(p.SignMethod)); err != nil {
		return err
	}
	if p.Sign != "" {
		if err := CheckSignFormat("sign", p.SignMethod, p.Sign); err != nil {
			return err
		}
	}
	return CheckTags("tags", p.Tags)
}

// Refuses says why the package may not move a device now on version from
// (ReasonNone when it may). Declared source versions decide first: a device
// on one of them qualifies, any other version does not. Without them the
// versions are ordered (CompareVersions): an equal one is already there, a
// newer one is a downgrade unless allowDowngrade. Versions that cannot be
// ordered qualify, as nothing says otherwise.
func (p *Package) Refuses(from string, allowDowngrade bool) Reason {
	if from == p.Version {
		return ReasonAlreadyOnVersion
	}
	if len(p.SourceVersions) > 0 {
		for _, v := range p.SourceVersions {
			if v == from {
				return ReasonNone
			}
		}
		return ReasonSourceVersionMismatch
	}
	c, ok := CompareVersions(from, p.Version)
	switch {
	case ok && c == 0:
		return ReasonAlreadyOnVersion
	case ok && c > 0 && !allowDowngrade:
		return ReasonDowngrade
	}
	return ReasonNone
}

// ExpectedSign returns the digest of the content for the package's method.
func (p *Package) ExpectedSign() string {
	if p.SignMethod == SignMD5 {
		return p.MD5
	}
	return p.SHA256
}

// CheckSign compares a declared sign with what was measured on the content.
// An empty declared sign always matches (the measured digest becomes the sign).
func CheckSign(method SignMethod, declared, sha256hex, md5hex string) error {
	if declared == "" {
		return nil
	}
	want := sha256hex
	if method == SignMD5 {
		want = md5hex
	}
	if !strings.EqualFold(declared, want) {
		return &Error{Code: CodeSignMismatch, Field: "sign", Message: "the declared " + string(method) +
			" sign " + declared + " does not match the file's " + want + ": check that you uploaded the right file"}
	}
	return nil
}
