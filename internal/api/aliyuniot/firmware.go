package aliyuniot

import (
	"context"
	"crypto/hmac"
	"crypto/sha1"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/updraft-ota/updraft/internal/ota"
	"github.com/updraft-ota/updraft/internal/service"
	"github.com/updraft-ota/updraft/internal/store"
)

// Dialect limits Alibaba documents beyond the shared ones in ota.
const (
	maxFirmwarePage  = 100 // ListOTAFirmware PageSize
	firmwareTypeFull = 0
	firmwareTypeDiff = 1
)

// uploadSuffixes are GenerateOTAUploadURL's FileSuffix values.
var uploadSuffixes = map[string]bool{"bin": true, "dav": true, "apk": true, "tar": true, "gz": true, "tar.gz": true, "zip": true, "gzip": true}

// operations is every Action served.
func (a *API) operations() map[string]action {
	m := map[string]action{
		"GenerateOTAUploadURL": a.generateOTAUploadURL,
		"CreateOTAFirmware":    a.createOTAFirmware,
		"QueryOTAFirmware":     a.queryOTAFirmware,
		"ListOTAFirmware":      a.listOTAFirmware,
		"DeleteOTAFirmware":    a.deleteOTAFirmware,
		"ModifyOTAFirmware":    a.modifyOTAFirmware,
	}
	a.jobOperations(m)
	return m
}

// tenantBucket is the blob bucket a tenant's uploads go to: derived from the
// tenant id so that it is a valid bucket name whatever the id holds.
func tenantBucket(tenantID string) string {
	sum := sha256.Sum256([]byte(tenantID))
	return "aliyun-ota-" + hex.EncodeToString(sum[:8])
}

func (a *API) generateOTAUploadURL(ctx context.Context, c *call) (any, error) {
	suffix := c.q.str("FileSuffix")
	if suffix == "" {
		suffix = "bin"
	}
	if !uploadSuffixes[suffix] {
		return nil, ota.Invalid("FileSuffix", "FileSuffix %q is not one of bin, dav, apk, tar, gz, tar.gz, zip, gzip", suffix)
	}
	key, err := a.svc.AccessKey(ctx, c.p.AccessKeyID)
	if err != nil {
		return nil, err
	}
	now := a.opts.Now().UTC()
	objectKey := "ota/" + strings.ToLower(ota.NewID(now)) + "/firmware." + suffix
	policy, sig := signPolicy(key.Secret, objectKey, now.Add(UploadPolicyTTL))
	host := baseURL(c.r) + UploadPath
	return map[string]any{"Data": map[string]any{
		"Host": host, "Key": objectKey, "Policy": policy, "OSSAccessKeyId": key.ID, "Signature": sig,
		"FirmwareUrl": host + "/" + objectKey, "ObjectStorage": "OSS", "UtcCreate": utc(now),
	}}, nil
}

// uploadPolicy is the OSS POST policy document.
type uploadPolicy struct {
	Expiration string `json:"expiration"`
	Conditions []any  `json:"conditions"`
}

// signPolicy builds the base64 policy (expiry, exact key, size range) and its
// OSS signature: base64(HMAC-SHA1(secret, policy)).
func signPolicy(secret, key string, expires time.Time) (policy, signature string) {
	doc, _ := json.Marshal(uploadPolicy{
		Expiration: expires.UTC().Format("2006-01-02T15:04:05.000Z"),
		Conditions: []any{
			[]any{"content-length-range", 0, MaxUploadBytes},
			map[string]string{"key": key},
		},
	})
	policy = base64.StdEncoding.EncodeToString(doc)
	m := hmac.New(sha1.New, []byte(secret))
	m.Write([]byte(policy))
	return policy, base64.StdEncoding.EncodeToString(m.Sum(nil))
}

// objectFromURL turns a FirmwareUrl from GenerateOTAUploadURL back into its
// object key.
func objectFromURL(raw string) (string, error) {
	u, err := url.Parse(raw)
	if err != nil {
		return "", ota.Invalid("FirmwareUrl", "FirmwareUrl %q is not a URL", raw)
	}
	key, ok := strings.CutPrefix(u.Path, UploadPath+"/")
	if !ok || !strings.HasPrefix(key, "ota/") {
		return "", ota.Invalid("FirmwareUrl", "FirmwareUrl %q is not a URL GenerateOTAUploadURL returned: upload the file through GenerateOTAUploadURL first", raw)
	}
	return key, nil
}

func (a *API) createOTAFirmware(ctx context.Context, c *call) (any, error) {
	if n, _ := c.q.count("MultiFiles", "."); n > 0 {
		return nil, ota.Errorf(ota.CodeUnsupported, "MultiFiles (multi-file packages) is not supported by Updraft: upload one file and pass FirmwareUrl")
	}
	name, err := c.q.required("FirmwareName")
	if err != nil {
		return nil, err
	}
	if err := ota.CheckAlibabaFirmwareName("FirmwareName", name); err != nil {
		return nil, err
	}
	dest, err := c.q.required("DestVersion")
	if err != nil {
		return nil, err
	}
	fwURL, err := c.q.required("FirmwareUrl")
	if err != nil {
		return nil, err
	}
	pk, err := c.q.required("ProductKey")
	if err != nil {
		return nil, err
	}
	typ, err := c.q.integer("Type", firmwareTypeFull)
	if err != nil {
		return nil, err
	}
	needVerify, err := c.q.boolean("NeedToVerify", true)
	if err != nil {
		return nil, err
	}
	size, err := c.q.integer("FirmwareSize", -1)
	if err != nil {
		return nil, err
	}
	if err := ota.CheckVersionMax("DestVersion", dest, ota.AlibabaMaxVersionLen); err != nil {
		return nil, err
	}
	desc := c.q.str("FirmwareDesc")
	if err := ota.CheckLen("FirmwareDesc", desc, ota.AlibabaMaxDescriptionLen); err != nil {
		return nil, err
	}
	method := c.q.str("SignMethod")
	if method == "" {
		method = "MD5"
	}
	sm, err := ota.ParseSignMethod(method)
	if err != nil {
		return nil, err
	}
	pkg := ota.Package{ProductKey: pk, Kind: ota.KindFirmware, Name: name, Version: dest, Description: desc,
		CustomInfo: c.q.str("Udi"), SignMethod: sm, Sign: c.q.str("FirmwareSign"), NeedVerify: needVerify}
	switch typ {
	case firmwareTypeFull:
	case firmwareTypeDiff:
		src, err := c.q.required("SrcVersion")
		if err != nil {
			return nil, err
		}
		pkg.Differential, pkg.SourceVersions = true, []string{src}
	default:
		return nil, ota.Invalid("Type", "Type must be 0 (full) or 1 (differential), got %d", typ)
	}
	if m := c.q.str("ModuleName"); m != "" && m != ota.DefaultModule {
		pkg.Kind, pkg.Module = ota.KindModule, m
	}
	objectKey, err := objectFromURL(fwURL)
	if err != nil {
		return nil, err
	}
	_, total, err := a.svc.ListPackages(ctx, c.p, store.PackageFilter{}, store.Page{Limit: 1})
	if err != nil {
		return nil, err
	}
	if total >= int64(a.opts.MaxFirmware) {
		return nil, ota.Errorf(ota.CodeConflict, "the account already has %d OTA packages, the limit is %d: delete unused packages first", total, a.opts.MaxFirmware)
	}
	created, err := a.svc.RegisterObject(ctx, c.p, pkg, tenantBucket(c.p.TenantID), objectKey)
	if err != nil {
		return nil, err
	}
	if size >= 0 && size != created.Size {
		// Declared and measured sizes differ: the caller named the wrong
		// file. Nothing may remain of a refused request.
		if derr := a.svc.DeletePackage(ctx, c.p, created.ID); derr != nil {
			return nil, derr
		}
		return nil, &ota.Error{Code: ota.CodeSignMismatch, Field: "FirmwareSize",
			Message: "FirmwareSize " + strconv.FormatInt(size, 10) + " does not match the uploaded file's " + strconv.FormatInt(created.Size, 10) + " bytes"}
	}
	return map[string]any{"Data": map[string]any{"FirmwareId": created.ID, "UtcCreate": utc(created.CreatedAt)}}, nil
}

// FirmwareInfo is QueryOTAFirmware's FirmwareInfo and ListOTAFirmware's
// SimpleFirmwareInfo (which leaves out the URL).
type FirmwareInfo struct {
	FirmwareID     string `json:"FirmwareId"`
	FirmwareName   string `json:"FirmwareName"`
	FirmwareDesc   string `json:"FirmwareDesc,omitempty"`
	DestVersion    string `json:"DestVersion"`
	SrcVersion     string `json:"SrcVersion,omitempty"`
	Type           int    `json:"Type"`
	ModuleName     string `json:"ModuleName"`
	ProductKey     string `json:"ProductKey"`
	SignMethod     string `json:"SignMethod"`
	FirmwareSign   string `json:"FirmwareSign"`
	FirmwareSize   int64  `json:"FirmwareSize"`
	FirmwareURL    string `json:"FirmwareUrl,omitempty"`
	Udi            string `json:"Udi,omitempty"`
	Status         int    `json:"Status"`
	VerifyProgress int    `json:"VerifyProgress"`
	UtcCreate      string `json:"UtcCreate"`
	UtcModified    string `json:"UtcModified"`
}

// verifyStatus is Alibaba's package Status number.
var verifyStatus = map[ota.VerifyStatus]int{
	ota.VerifyNotNeeded: -1, ota.VerifyPending: 0, ota.VerifyPassed: 1, ota.VerifyInProgress: 2, ota.VerifyFailed: 3,
}

func firmwareInfo(p ota.Package, withURL string) FirmwareInfo {
	f := FirmwareInfo{FirmwareID: p.ID, FirmwareName: p.Name, FirmwareDesc: p.Description, DestVersion: p.Version,
		ModuleName: p.Module, ProductKey: p.ProductKey, SignMethod: signMethodName(p.SignMethod), FirmwareSign: p.Sign,
		FirmwareSize: p.Size, FirmwareURL: withURL, Udi: p.CustomInfo, Status: verifyStatus[p.VerifyStatus],
		UtcCreate: utc(p.CreatedAt), UtcModified: utc(p.ModifiedAt)}
	if p.Differential {
		f.Type = firmwareTypeDiff
		if len(p.SourceVersions) > 0 {
			f.SrcVersion = p.SourceVersions[0]
		}
	}
	switch p.VerifyStatus {
	case ota.VerifyPassed, ota.VerifyFailed:
		f.VerifyProgress = 100
	}
	return f
}

func signMethodName(m ota.SignMethod) string {
	if m == ota.SignMD5 {
		return "MD5"
	}
	return "SHA256"
}

func (a *API) queryOTAFirmware(ctx context.Context, c *call) (any, error) {
	id, err := c.q.required("FirmwareId")
	if err != nil {
		return nil, err
	}
	p, err := a.svc.GetPackage(ctx, c.p, id)
	if err != nil {
		return nil, err
	}
	u := ""
	if !p.External || p.Bucket == tenantBucket(c.p.TenantID) {
		u = baseURL(c.r) + UploadPath + "/" + p.Key
	}
	return map[string]any{"FirmwareInfo": firmwareInfo(p, u)}, nil
}

func (a *API) listOTAFirmware(ctx context.Context, c *call) (any, error) {
	cur, size, err := c.q.page(maxFirmwarePage)
	if err != nil {
		return nil, err
	}
	f := store.PackageFilter{ProductKey: c.q.str("ProductKey"), Version: c.q.str("DestVersion")}
	pkgs, total, err := a.svc.ListPackages(ctx, c.p, f, storePage(cur, size))
	if err != nil {
		return nil, err
	}
	infos := make([]FirmwareInfo, len(pkgs))
	for i, p := range pkgs {
		infos[i] = firmwareInfo(p, "")
	}
	return map[string]any{"FirmwareInfo": map[string]any{"SimpleFirmwareInfo": infos},
		"CurrentPage": cur, "PageSize": size, "Total": total, "PageCount": pageCount(total, size)}, nil
}

func (a *API) deleteOTAFirmware(ctx context.Context, c *call) (any, error) {
	id, err := c.q.required("FirmwareId")
	if err != nil {
		return nil, err
	}
	return nil, a.svc.DeletePackage(ctx, c.p, id)
}

func (a *API) modifyOTAFirmware(ctx context.Context, c *call) (any, error) {
	id, err := c.q.required("FirmwareId")
	if err != nil {
		return nil, err
	}
	if _, err := c.q.required("ProductKey"); err != nil {
		return nil, err
	}
	var ch service.PackageChange
	if v, ok := c.q.v["FirmwareName"]; ok {
		if err := ota.CheckAlibabaFirmwareName("FirmwareName", v[0]); err != nil {
			return nil, err
		}
		ch.Name = &v[0]
	}
	if v, ok := c.q.v["FirmwareDesc"]; ok {
		if err := ota.CheckLen("FirmwareDesc", v[0], ota.AlibabaMaxDescriptionLen); err != nil {
			return nil, err
		}
		ch.Description = &v[0]
	}
	if v, ok := c.q.v["FirmwareUdi"]; ok {
		ch.CustomInfo = &v[0]
	}
	pkg, err := a.svc.GetPackage(ctx, c.p, id)
	if err != nil {
		return nil, err
	}
	if pkg.ProductKey != c.q.str("ProductKey") {
		return nil, ota.NotFound("firmware", id+" in product "+c.q.str("ProductKey"))
	}
	_, err = a.svc.UpdatePackage(ctx, c.p, id, ch)
	return nil, err
}
