package ota

import (
	"errors"
	"fmt"
	"strings"
	"unicode"
	"unicode/utf8"
)

// Every documented limit lives here, once. Sources: seed 000 (Huawei
// CreateOtaPackage), seed 001 (Alibaba CreateOTAFirmware), seed 002 (EnOS Create
// OTA Job) and research/cloud-ota-spec.md §1.3, §2.3, §3.3. Where the vendors
// differ, the native limit is the widest one that still fits every dialect's
// response fields; a dialect with a tighter request limit applies the named
// vendor constant below through the same Check functions.
const (
	MaxProductKeyLen  = 36 // Huawei product_id: ≤36 [A-Za-z0-9_-]
	MaxProductNameLen = 64
	MaxDeviceNameLen  = 128 // Huawei device_id ≤128 [A-Za-z0-9_-]; Alibaba DeviceName adds . @ :
	MaxGroupIDLen     = 64
	MaxDeviceGroups   = 10
	MaxModuleNameLen  = 64 // Huawei module_name / Alibaba ModuleName: ≤64 [A-Za-z0-9_.-]
	MaxModuleAliasLen = 64
	MaxPackageNameLen = 128     // a display name (EnOS StringI18n names have spaces, any script)
	MaxVersionLen     = 256     // Huawei version ≤256 [A-Za-z0-9_.-]
	MaxSourceVersions = 20      // Huawei support_source_versions ≤20
	MaxDescriptionLen = 1024    // Huawei description ≤1024
	MaxCustomInfoLen  = 4096    // Huawei custom_info / Alibaba Udi ≤4096
	MaxPackageSize    = 1 << 30 // 1 GB (Huawei object_key: max object size 1 GB)
	MaxObjectKeyLen   = 1024    // Huawei object_key ≤1024
	MinBucketNameLen  = 3       // Huawei bucket_name 3–63 [a-z0-9.-]
	MaxBucketNameLen  = 63
	MaxRegionNameLen  = 256  // Huawei region_name ≤256 [A-Za-z0-9-]
	MaxDeviceLabels   = 20   // attributes, and tags, per device or per job target
	MaxLabelKeyLen    = 64   // key 1–64 [A-Za-z0-9._-]
	MaxLabelValueLen  = 256  // value 1–256
	MaxTags           = 10   // Alibaba Tag.N ≤10
	MaxTagKeyLen      = 30   // key 1–30 [A-Za-z0-9.]
	MaxTagValueLen    = 1024 // value 1–1024
	MaxTagsTotalLen   = 4096 // all keys and values together
	// MaxLocalNames bounds a package's or job's names in other languages
	// (EnOS StringI18n i18nValue, whose documented locales are four): room
	// for every language a console is likely to show, not for a dictionary.
	MaxLocalNames = 16

	// Vendor request limits tighter than the native ones.
	AlibabaMaxVersionLen      = 64  // DestVersion 1–64
	AlibabaMaxDescriptionLen  = 100 // FirmwareDesc ≤100
	AlibabaMaxFirmwareNameLen = 40  // FirmwareName 1–40
	HuaweiMaxAppIDLen         = 36  // app_id ≤36 [A-Za-z0-9_-]
)

// AllowedFileSuffixes are the package file types seed 000 accepts. Longer
// suffixes come first so ".tar.gz" wins over ".gz".
var AllowedFileSuffixes = []string{
	".tar.gz", ".tar.xz", ".bin", ".dav", ".tar", ".gz", ".zip", ".gzip", ".apk", ".pack", ".exe", ".bat", ".img",
}

func isAlnum(r rune) bool { return r < utf8.RuneSelf && (unicode.IsLetter(r) || unicode.IsDigit(r)) }

func checkChars(field, what, s string, extra string) error {
	for _, r := range s {
		if isAlnum(r) || strings.ContainsRune(extra, r) {
			continue
		}
		return Invalid(field, "%s %q contains %q: only letters, digits and %s are allowed", what, s, r, describe(extra))
	}
	return nil
}

func describe(extra string) string {
	parts := make([]string, 0, len(extra))
	for _, r := range extra {
		parts = append(parts, fmt.Sprintf("%q", r))
	}
	return strings.Join(parts, " ")
}

func checkRequiredLen(field, what, s string, min, max int) error {
	n := utf8.RuneCountInString(s)
	if n == 0 && min > 0 {
		return Invalid(field, "%s is required", what)
	}
	if n < min || n > max {
		return Invalid(field, "%s must be %d to %d characters, got %d", what, min, max, n)
	}
	return nil
}

// CheckLen checks an optional free-text field (descriptions, custom info):
// at most max characters of valid UTF-8, no control characters other than
// tab and line breaks (no ANSI escapes), no bidirectional overrides.
func CheckLen(field, s string, max int) error {
	if n := utf8.RuneCountInString(s); n > max {
		return Invalid(field, "%s may be at most %d characters, got %d", field, max, n)
	}
	return checkText(field, s, "\t\n\r")
}

// checkText: valid UTF-8, no control character except those in allowed, no
// bidirectional embedding, override or isolate (U+202A–U+202E,
// U+2066–U+2069), which make text display differently from what it is.
func checkText(field, s, allowed string) error {
	if !utf8.ValidString(s) {
		return Invalid(field, "%s is not valid UTF-8", field)
	}
	for _, r := range s {
		if unicode.IsControl(r) && !strings.ContainsRune(allowed, r) {
			return Invalid(field, "%s contains the control character %U: remove it (terminal escapes and invisible controls are not allowed)", field, r)
		}
		if IsBidiControl(r) {
			return Invalid(field, "%s contains the bidirectional control %U: remove it (it makes text display differently from what it is)", field, r)
		}
	}
	return nil
}

// IsBidiControl reports the explicit bidirectional formatting characters.
func IsBidiControl(r rune) bool {
	return r >= 0x202A && r <= 0x202E || r >= 0x2066 && r <= 0x2069
}

// CheckProductKey: 1–36 of [A-Za-z0-9_-].
func CheckProductKey(field, s string) error {
	if err := checkRequiredLen(field, "product key", s, 1, MaxProductKeyLen); err != nil {
		return err
	}
	return checkChars(field, "product key", s, "_-")
}

// CheckDeviceName: 1–128 of [A-Za-z0-9_.:@-].
func CheckDeviceName(field, s string) error {
	if err := checkRequiredLen(field, "device name", s, 1, MaxDeviceNameLen); err != nil {
		return err
	}
	return checkChars(field, "device name", s, "_-.:@")
}

// CheckGroupID: 1–64 of [A-Za-z0-9_.-].
func CheckGroupID(field, s string) error {
	if err := checkRequiredLen(field, "group id", s, 1, MaxGroupIDLen); err != nil {
		return err
	}
	return checkChars(field, "group id", s, "_-.")
}

// CheckModuleName: 1–64 of [A-Za-z0-9_.-].
func CheckModuleName(field, s string) error {
	if err := checkRequiredLen(field, "module name", s, 1, MaxModuleNameLen); err != nil {
		return err
	}
	return checkChars(field, "module name", s, "_-.")
}

// CheckVersion: 1–256 of [A-Za-z0-9_.-].
func CheckVersion(field, s string) error {
	return CheckVersionMax(field, s, MaxVersionLen)
}

// CheckVersionMax is CheckVersion with a dialect's tighter length.
func CheckVersionMax(field, s string, max int) error {
	if err := checkRequiredLen(field, "version", s, 1, max); err != nil {
		return err
	}
	return checkChars(field, "version", s, "_-.")
}

// CheckSourceVersions: at most 20, each a valid version, no duplicates, none
// equal to the destination.
func CheckSourceVersions(field string, vs []string, dest string) error {
	if len(vs) > MaxSourceVersions {
		return Invalid(field, "at most %d source versions are allowed, got %d", MaxSourceVersions, len(vs))
	}
	seen := make(map[string]bool, len(vs))
	for _, v := range vs {
		if err := CheckVersion(field, v); err != nil {
			return err
		}
		if v == dest {
			return Invalid(field, "source version %q equals the destination version: a package cannot upgrade a device to the version it already has", v)
		}
		if seen[v] {
			return Invalid(field, "source version %q is listed twice", v)
		}
		seen[v] = true
	}
	return nil
}

// CheckPackageName: a package name is a display name of 1–128 characters
// (printable, no control characters): EnOS firmware names are free text in
// any script. Alibaba's tighter FirmwareName rule is
// CheckAlibabaFirmwareName, applied by that dialect alone.
func CheckPackageName(field, s string) error {
	if err := checkRequiredLen(field, "package name", s, 1, MaxPackageNameLen); err != nil {
		return err
	}
	if strings.TrimSpace(s) != s {
		return Invalid(field, "package name %q starts or ends with white space: remove it (names are compared exactly)", s)
	}
	return checkText(field, s, "")
}

// CheckAlibabaFirmwareName follows Alibaba FirmwareName: 1–40 characters;
// letters (any script), digits, '-', '_', '(' and ')'; starting with a
// letter or digit.
func CheckAlibabaFirmwareName(field, s string) error {
	if err := checkRequiredLen(field, "FirmwareName", s, 1, AlibabaMaxFirmwareNameLen); err != nil {
		return err
	}
	for i, r := range s {
		ok := unicode.IsLetter(r) || unicode.IsDigit(r)
		if i > 0 {
			ok = ok || strings.ContainsRune("-_()", r)
		}
		if !ok {
			if i == 0 {
				return Invalid(field, "FirmwareName %q must start with a letter or digit", s)
			}
			return Invalid(field, "FirmwareName %q contains %q: only letters, digits, '-', '_', '(' and ')' are allowed", s, r)
		}
	}
	return nil
}

// CheckDisplayName checks a free display name (products, module aliases):
// printable, no control characters, at most max characters.
func CheckDisplayName(field, s string, max int, required bool) error {
	if required && s == "" {
		return Invalid(field, "%s is required", field)
	}
	if n := utf8.RuneCountInString(s); n > max {
		return Invalid(field, "%s may be at most %d characters, got %d", field, max, n)
	}
	return checkText(field, s, "")
}

// CheckSignFormat: a SHA256 sign is 64 hex digits, an MD5 sign 32.
func CheckSignFormat(field string, m SignMethod, sign string) error {
	want := 64
	if m == SignMD5 {
		want = 32
	}
	if len(sign) != want {
		return Invalid(field, "a %s sign is %d hex digits, got %d characters", m, want, len(sign))
	}
	for _, r := range sign {
		if !strings.ContainsRune("0123456789abcdefABCDEF", r) {
			return Invalid(field, "sign contains %q: only hex digits are allowed", r)
		}
	}
	return nil
}

// CheckFileName: the file must have one of AllowedFileSuffixes.
func CheckFileName(field, name string) error {
	if name == "" {
		return Invalid(field, "a file name is required to know the file type")
	}
	lower := strings.ToLower(name)
	for _, s := range AllowedFileSuffixes {
		if strings.HasSuffix(lower, s) && len(lower) > len(s) {
			return nil
		}
	}
	return Invalid(field, "file %q has an unsupported type: use one of %s", name, strings.Join(AllowedFileSuffixes, " "))
}

// CheckFileSize: 1 byte to 1 GB.
func CheckFileSize(field string, size int64) error {
	if size <= 0 {
		return Invalid(field, "the file is empty")
	}
	if size > MaxPackageSize {
		return &Error{Code: CodeTooLarge, Field: field, Message: fmt.Sprintf("the file is %d bytes; the limit is %d (1 GB)", size, int64(MaxPackageSize))}
	}
	return nil
}

// CheckBucketName: 3–63 of [a-z0-9.-].
func CheckBucketName(field, s string) error {
	if err := checkRequiredLen(field, "bucket name", s, MinBucketNameLen, MaxBucketNameLen); err != nil {
		return err
	}
	for _, r := range s {
		if !(r >= 'a' && r <= 'z' || r >= '0' && r <= '9' || r == '.' || r == '-') {
			return Invalid(field, "bucket name %q contains %q: only lowercase letters, digits, '.' and '-' are allowed", s, r)
		}
	}
	return nil
}

// ObjectKeyChars are the characters an object key may use besides ASCII
// letters and digits: S3's "safe characters", space, and '/' as the separator. No
// backslash, control character or non-ASCII, so a key is the same file
// name on every blob store and OS and cannot smuggle a line break into logs.
const ObjectKeyChars = "/!-_.*'() "

// CheckObjectKey: 1–1024 of [A-Za-z0-9/!-_.*'() ], not starting with '/',
// no empty, "." or ".." path segment.
func CheckObjectKey(field, s string) error {
	if err := checkRequiredLen(field, "object key", s, 1, MaxObjectKeyLen); err != nil {
		return err
	}
	for _, r := range s {
		if !(r < utf8.RuneSelf && (r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9') || strings.ContainsRune(ObjectKeyChars, r)) {
			return Invalid(field, "object key %q contains %q: only ASCII letters, digits and %s are allowed", s, r, describe(ObjectKeyChars))
		}
	}
	if strings.HasPrefix(s, "/") {
		return Invalid(field, "object key %q must not start with '/'", s)
	}
	for _, seg := range strings.Split(s, "/") {
		if seg == ".." || seg == "." || seg == "" {
			return Invalid(field, "object key %q must not contain empty, '.' or '..' path segments", s)
		}
	}
	return nil
}

// CheckRegionName: 1–256 of [A-Za-z0-9-].
func CheckRegionName(field, s string) error {
	if err := checkRequiredLen(field, "region name", s, 1, MaxRegionNameLen); err != nil {
		return err
	}
	return checkChars(field, "region name", s, "-")
}

// CheckLabels checks a device's (or a job target's) attributes or tags: at
// most MaxDeviceLabels; key 1–64 of [A-Za-z0-9._-]; value 1–256 of text.
func CheckLabels(field string, m map[string]string) error {
	if len(m) > MaxDeviceLabels {
		return Invalid(field, "at most %d labels are allowed, got %d", MaxDeviceLabels, len(m))
	}
	for k, v := range m {
		if err := checkRequiredLen(field, "label key", k, 1, MaxLabelKeyLen); err != nil {
			return err
		}
		if err := checkChars(field, "label key", k, "._-"); err != nil {
			return err
		}
		if err := checkRequiredLen(field, "label value", v, 1, MaxLabelValueLen); err != nil {
			return err
		}
		if err := checkText(field, v, ""); err != nil {
			return err
		}
	}
	return nil
}

// CheckTags: at most 10; key 1–30 of [A-Za-z0-9.]; value 1–1024; all together ≤4096.
func CheckTags(field string, tags []Tag) error {
	if len(tags) > MaxTags {
		return Invalid(field, "at most %d tags are allowed, got %d", MaxTags, len(tags))
	}
	total := 0
	seen := map[string]bool{}
	for _, t := range tags {
		if err := checkRequiredLen(field, "tag key", t.Key, 1, MaxTagKeyLen); err != nil {
			return err
		}
		if err := checkChars(field, "tag key", t.Key, "."); err != nil {
			return err
		}
		if err := checkRequiredLen(field, "tag value", t.Value, 1, MaxTagValueLen); err != nil {
			return err
		}
		if err := checkText(field, t.Value, ""); err != nil {
			return err
		}
		if seen[t.Key] {
			return Invalid(field, "tag key %q is used twice", t.Key)
		}
		seen[t.Key] = true
		total += utf8.RuneCountInString(t.Key) + utf8.RuneCountInString(t.Value)
	}
	if total > MaxTagsTotalLen {
		return Invalid(field, "tags may total at most %d characters, got %d", MaxTagsTotalLen, total)
	}
	return nil
}

// CheckLocale: a locale key as EnOS writes them: a language of 2–3
// lowercase letters, optionally '_' and a region of 2 uppercase letters or
// 3 digits (en, zh_CN, es_419).
func CheckLocale(field, s string) error {
	lang, region, hasRegion := strings.Cut(s, "_")
	ok := len(lang) >= 2 && len(lang) <= 3 && allIn(lang, 'a', 'z')
	if hasRegion {
		ok = ok && (len(region) == 2 && allIn(region, 'A', 'Z') || len(region) == 3 && allIn(region, '0', '9'))
	}
	if !ok {
		return Invalid(field, "locale %q is not a language such as en, optionally followed by _ and a region such as US: write it like en_US or zh_CN", s)
	}
	return nil
}

func allIn(s string, lo, hi byte) bool {
	for i := 0; i < len(s); i++ {
		if s[i] < lo || s[i] > hi {
			return false
		}
	}
	return true
}

// CheckLocalNames checks a name's translations, by locale: at most
// MaxLocalNames, each key a CheckLocale locale, each value non-empty and
// valid by checkName, the rule of the name it translates.
func CheckLocalNames(field string, names map[string]string, checkName func(field, s string) error) error {
	if len(names) > MaxLocalNames {
		return Invalid(field, "at most %d localized names are allowed, got %d: keep the locales your users read", MaxLocalNames, len(names))
	}
	for locale, name := range names {
		if err := CheckLocale(field, locale); err != nil {
			return err
		}
		if name == "" {
			return Invalid(field, "the %s name is empty: give the name in that locale or leave the locale out", locale)
		}
		if err := checkName(field, name); err != nil {
			var e *Error
			if errors.As(err, &e) {
				return Invalid(field, "the %s name: %s", locale, e.Message)
			}
			return err
		}
	}
	return nil
}
