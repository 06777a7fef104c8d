package management

// Wire structs of the native API and their converters. The JSON names are a
// stable contract (documented in openapi.json); change them only additively.

import (
	"time"

	"github.com/updraft-ota/updraft/internal/ota"
)

// list is every listing's envelope.
type list[T any] struct {
	Items []T   `json:"items"`
	Total int64 `json:"total"`
}

func newList[S any, T any](in []S, total int64, conv func(S) T) list[T] {
	out := list[T]{Items: make([]T, 0, len(in)), Total: total}
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

type tagJSON struct {
	Key   string `json:"key"`
	Value string `json:"value"`
}

func tagsToOTA(in []tagJSON) []ota.Tag {
	if len(in) == 0 {
		return nil
	}
	out := make([]ota.Tag, len(in))
	for i, t := range in {
		out[i] = ota.Tag{Key: t.Key, Value: t.Value}
	}
	return out
}

func tagsFromOTA(in []ota.Tag) []tagJSON {
	out := make([]tagJSON, len(in))
	for i, t := range in {
		out[i] = tagJSON{Key: t.Key, Value: t.Value}
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

type productCreate struct {
	Key         string `json:"key"`
	Name        string `json:"name"`
	Description string `json:"description"`
	Protocol    string `json:"protocol"`
	Auth        string `json:"auth"`
}

type productJSON struct {
	Key         string    `json:"key"`
	Name        string    `json:"name"`
	Description string    `json:"description"`
	Protocol    string    `json:"protocol"`
	Auth        string    `json:"auth"`
	CreatedAt   time.Time `json:"created_at"`
}

func productFromOTA(p ota.Product) productJSON {
	return productJSON{Key: p.Key, Name: p.Name, Description: p.Description, Protocol: string(p.Protocol), Auth: string(p.Auth), CreatedAt: utc(p.CreatedAt)}
}

// Module JSON uses ota's field names (module_name, alias_name) so that
// validation errors name the field the caller sent.
type moduleCreate struct {
	Name        string `json:"module_name"`
	Alias       string `json:"alias_name"`
	Description string `json:"description"`
}

type moduleUpdate struct {
	Alias       *string `json:"alias_name"`
	Description *string `json:"description"`
}

type moduleJSON struct {
	Product     string    `json:"product"`
	Name        string    `json:"module_name"`
	Alias       string    `json:"alias_name"`
	Description string    `json:"description"`
	CreatedAt   time.Time `json:"created_at"`
}

func moduleFromOTA(m ota.Module) moduleJSON {
	return moduleJSON{Product: m.ProductKey, Name: m.Name, Alias: m.Alias, Description: m.Description, CreatedAt: utc(m.CreatedAt)}
}

// Devices.

type deviceCreate struct {
	Name       string            `json:"name"`
	Secret     string            `json:"secret"`
	Groups     []string          `json:"groups"`
	Attributes map[string]string `json:"attributes"`
	Tags       map[string]string `json:"tags"`
}

// deviceUpdate is PATCH's body; each field given replaces that part of the
// device (groups, attributes, tags), the others stay.
type deviceUpdate struct {
	Groups     *[]string          `json:"groups"`
	Attributes *map[string]string `json:"attributes"`
	Tags       *map[string]string `json:"tags"`
}

type deviceJSON struct {
	Product    string            `json:"product"`
	Name       string            `json:"name"`
	Secret     string            `json:"secret,omitempty"` // only in the create response
	Groups     []string          `json:"groups"`
	Attributes map[string]string `json:"attributes"`
	Tags       map[string]string `json:"tags"`
	Versions   map[string]string `json:"versions"`
	Online     bool              `json:"online"`
	LastSeen   *time.Time        `json:"last_seen"`
	CreatedAt  time.Time         `json:"created_at"`
}

func emptyMapIfNil(m map[string]string) map[string]string {
	if m == nil {
		return map[string]string{}
	}
	return m
}

// deviceFromOTA never includes the secret; the create handler adds it.
func deviceFromOTA(d ota.Device) deviceJSON {
	versions := d.Versions
	if versions == nil {
		versions = map[string]string{}
	}
	return deviceJSON{
		Product: d.ProductKey, Name: d.Name, Groups: emptyIfNil(d.Groups), Versions: versions,
		Attributes: emptyMapIfNil(d.Attributes), Tags: emptyMapIfNil(d.Tags),
		Online: d.Online, LastSeen: utcOrNil(d.LastSeen), CreatedAt: utc(d.CreatedAt),
	}
}

// Packages.

// packageMetadata is the upload's metadata part.
type packageMetadata struct {
	Product        string    `json:"product"`
	Module         string    `json:"module"`
	Kind           string    `json:"kind"`
	Name           string    `json:"name"`
	Version        string    `json:"version"`
	SourceVersions []string  `json:"source_versions"`
	Differential   bool      `json:"differential"`
	Description    string    `json:"description"`
	CustomInfo     string    `json:"custom_info"`
	SignMethod     string    `json:"sign_method"`
	Sign           string    `json:"sign"`
	NeedVerify     bool      `json:"need_verify"`
	Tags           []tagJSON `json:"tags"`
}

func (m packageMetadata) toOTA() (ota.Package, error) {
	// The API accepts the vendors' spellings of a sign method (sha-256, md5);
	// the domain holds the canonical one.
	method, err := ota.ParseSignMethod(m.SignMethod)
	if err != nil {
		return ota.Package{}, err
	}
	return ota.Package{
		ProductKey: m.Product, Module: m.Module, Kind: ota.PackageKind(m.Kind), Name: m.Name, Version: m.Version,
		SourceVersions: m.SourceVersions, Differential: m.Differential, Description: m.Description,
		CustomInfo: m.CustomInfo, SignMethod: method, Sign: m.Sign, NeedVerify: m.NeedVerify, Tags: tagsToOTA(m.Tags),
	}, nil
}

type packageJSON struct {
	ID             string    `json:"id"`
	Product        string    `json:"product"`
	Module         string    `json:"module"`
	Kind           string    `json:"kind"`
	Name           string    `json:"name"`
	Version        string    `json:"version"`
	SourceVersions []string  `json:"source_versions"`
	Differential   bool      `json:"differential"`
	Description    string    `json:"description"`
	CustomInfo     string    `json:"custom_info"`
	SignMethod     string    `json:"sign_method"`
	Sign           string    `json:"sign"`
	NeedVerify     bool      `json:"need_verify"`
	VerifyStatus   string    `json:"verify_status"`
	Tags           []tagJSON `json:"tags"`
	FileName       string    `json:"file_name"`
	Size           int64     `json:"size"`
	SHA256         string    `json:"sha256"`
	MD5            string    `json:"md5"`
	CreatedAt      time.Time `json:"created_at"`
	ModifiedAt     time.Time `json:"modified_at"`
}

func packageFromOTA(p ota.Package) packageJSON {
	return packageJSON{
		ID: p.ID, Product: p.ProductKey, Module: p.Module, Kind: string(p.Kind), Name: p.Name, Version: p.Version,
		SourceVersions: emptyIfNil(p.SourceVersions), Differential: p.Differential, Description: p.Description,
		CustomInfo: p.CustomInfo, SignMethod: string(p.SignMethod), Sign: p.Sign, NeedVerify: p.NeedVerify,
		VerifyStatus: string(p.VerifyStatus), Tags: tagsFromOTA(p.Tags), FileName: p.FileName, Size: p.Size,
		SHA256: p.SHA256, MD5: p.MD5, CreatedAt: utc(p.CreatedAt), ModifiedAt: utc(p.ModifiedAt),
	}
}
