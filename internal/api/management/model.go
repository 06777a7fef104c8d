package management

// Converters between the domain (internal/ota) and the native API's wire
// types, which are defined once in package apiv1 (shared with client/ and
// checked against openapi.json by TestOpenAPIMatchesWireTypes). The domain
// never sees apiv1: translating is this adapter's job.

import (
	"time"

	"github.com/updraft-ota/updraft/apiv1"
	"github.com/updraft-ota/updraft/internal/ota"
)

func newList[S any, T any](in []S, total int64, conv func(S) T) apiv1.List[T] {
	out := apiv1.List[T]{Items: make([]T, 0, len(in)), Total: total}
	for _, v := range in {
		out.Items = append(out.Items, conv(v))
	}
	return out
}

// utc renders times as RFC 3339 in UTC (encoding/json formats time.Time as
// RFC 3339 with sub-second digits).
func utc(t time.Time) time.Time { return t.UTC() }

// utcOrNil is utc for optional times: the zero time is JSON null.
func utcOrNil(t time.Time) *time.Time {
	if t.IsZero() {
		return nil
	}
	u := t.UTC()
	return &u
}

func tagsToOTA(in []apiv1.Tag) []ota.Tag {
	if len(in) == 0 {
		return nil
	}
	out := make([]ota.Tag, len(in))
	for i, t := range in {
		out[i] = ota.Tag{Key: t.Key, Value: t.Value}
	}
	return out
}

func tagsFromOTA(in []ota.Tag) []apiv1.Tag {
	out := make([]apiv1.Tag, len(in))
	for i, t := range in {
		out[i] = apiv1.Tag{Key: t.Key, Value: t.Value}
	}
	return out
}

// emptyIfNil keeps JSON arrays as [] rather than null.
func emptyIfNil(s []string) []string {
	if s == nil {
		return []string{}
	}
	return s
}

// Products and modules.

func productFromOTA(p ota.Product) apiv1.Product {
	return apiv1.Product{Key: p.Key, Name: p.Name, Description: p.Description, Protocol: string(p.Protocol), Auth: string(p.Auth), CreatedAt: utc(p.CreatedAt)}
}

func moduleFromOTA(m ota.Module) apiv1.Module {
	return apiv1.Module{Product: m.ProductKey, Name: m.Name, Alias: m.Alias, Description: m.Description, CreatedAt: utc(m.CreatedAt)}
}

// Devices.

func emptyMapIfNil(m map[string]string) map[string]string {
	if m == nil {
		return map[string]string{}
	}
	return m
}

// deviceFromOTA never includes the secret; the create handler adds it.
func deviceFromOTA(d ota.Device) apiv1.Device {
	versions := d.Versions
	if versions == nil {
		versions = map[string]string{}
	}
	return apiv1.Device{
		Product: d.ProductKey, Name: d.Name, Groups: emptyIfNil(d.Groups), Versions: versions,
		Attributes: emptyMapIfNil(d.Attributes), Tags: emptyMapIfNil(d.Tags),
		Online: d.Online, LastSeen: utcOrNil(d.LastSeen), CreatedAt: utc(d.CreatedAt),
	}
}

// Packages.

func packageFromMetadata(m apiv1.PackageMetadata) (ota.Package, error) {
	// The API accepts the vendors' spellings of a sign method (sha-256, md5);
	// the domain holds the canonical one.
	method, err := ota.ParseSignMethod(m.SignMethod)
	if err != nil {
		return ota.Package{}, err
	}
	return ota.Package{
		ProductKey: m.Product, Module: m.Module, Kind: ota.PackageKind(m.Kind), Name: m.Name, LocalNames: m.LocalNames,
		Version: m.Version, SourceVersions: m.SourceVersions, Differential: m.Differential, Description: m.Description,
		CustomInfo: m.CustomInfo, SignMethod: method, Sign: m.Sign, NeedVerify: m.NeedVerify, Tags: tagsToOTA(m.Tags),
	}, nil
}

func packageFromOTA(p ota.Package) apiv1.Package {
	return apiv1.Package{
		ID: p.ID, Product: p.ProductKey, Module: p.Module, Kind: string(p.Kind), Name: p.Name, LocalNames: p.LocalNames,
		Version: p.Version, SourceVersions: emptyIfNil(p.SourceVersions), Differential: p.Differential, Description: p.Description,
		CustomInfo: p.CustomInfo, SignMethod: string(p.SignMethod), Sign: p.Sign, NeedVerify: p.NeedVerify,
		VerifyStatus: string(p.VerifyStatus), Tags: tagsFromOTA(p.Tags), FileName: p.FileName, Size: p.Size,
		SHA256: p.SHA256, MD5: p.MD5, CreatedAt: utc(p.CreatedAt), ModifiedAt: utc(p.ModifiedAt),
	}
}
