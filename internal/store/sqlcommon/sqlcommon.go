// Package sqlcommon holds the small, dialect-neutral pieces every SQL backend
// of store needs: how list- and struct-valued domain fields are encoded into
// JSON text columns, and how a page size is chosen. It has no SQL and no
// driver in it, so the SQLite and PostgreSQL backends store the same JSON and
// behave the same way.
//
// Encodings (stable; changing them needs a migration in every backend):
//
//	[]string            JSON array of strings, "[]" when empty
//	[]ota.Tag           JSON array of {"key":…,"value":…}, "[]" when empty
//	map[string]string   JSON object, "{}" when empty
//	ota.Target          JSON object {"all","devices","groups","gray_percent","source_versions"}
//	*ota.DailyWindow    JSON object {"from_minute","to_minute","utc_offset_minutes"}, "" when nil
//
// Decoders accept "" and "null" as empty, and return nil slices and maps for
// empty values, so an empty field reads back the same whichever way it was
// written.
package sqlcommon

import (
	"encoding/json"
	"fmt"

	"github.com/updraft-ota/updraft/internal/ota"
)

// DefaultLimit is the page size when neither the page nor the filter sets one
// (store.Page documents 100).
const DefaultLimit = 100

// Limit picks the row limit of a listing from the page's limit and a filter's
// own limit (DeviceFilter.Limit, TaskFilter.Limit): the smaller of the ones
// set, DefaultLimit when neither is.
func Limit(pageLimit, filterLimit int) int {
	switch {
	case pageLimit > 0 && filterLimit > 0:
		return min(pageLimit, filterLimit)
	case pageLimit > 0:
		return pageLimit
	case filterLimit > 0:
		return filterLimit
	}
	return DefaultLimit
}

// EncodeStrings encodes a string list ("[]" when empty).
func EncodeStrings(v []string) string {
	if len(v) == 0 {
		return "[]"
	}
	return mustJSON(v)
}

// DecodeStrings decodes EncodeStrings' output; empty reads back as nil.
func DecodeStrings(s string) ([]string, error) {
	var v []string
	if err := decode(s, &v); err != nil {
		return nil, fmt.Errorf("string list: %w", err)
	}
	if len(v) == 0 {
		return nil, nil
	}
	return v, nil
}

type tagJSON struct {
	Key   string `json:"key"`
	Value string `json:"value"`
}

// EncodeTags encodes tags in order ("[]" when empty).
func EncodeTags(tags []ota.Tag) string {
	if len(tags) == 0 {
		return "[]"
	}
	out := make([]tagJSON, len(tags))
	for i, t := range tags {
		out[i] = tagJSON(t)
	}
	return mustJSON(out)
}

// DecodeTags decodes EncodeTags' output; empty reads back as nil.
func DecodeTags(s string) ([]ota.Tag, error) {
	var v []tagJSON
	if err := decode(s, &v); err != nil {
		return nil, fmt.Errorf("tags: %w", err)
	}
	if len(v) == 0 {
		return nil, nil
	}
	out := make([]ota.Tag, len(v))
	for i, t := range v {
		out[i] = ota.Tag(t)
	}
	return out, nil
}

// EncodeVersions encodes a module → version map ("{}" when empty).
func EncodeVersions(m map[string]string) string {
	if len(m) == 0 {
		return "{}"
	}
	return mustJSON(m)
}

// DecodeVersions decodes a module → version map; empty reads back as nil.
func DecodeVersions(s string) (map[string]string, error) {
	var m map[string]string
	if err := decode(s, &m); err != nil {
		return nil, fmt.Errorf("versions: %w", err)
	}
	if len(m) == 0 {
		return nil, nil
	}
	return m, nil
}

// EncodeLocalNames encodes a locale → name map ("{}" when empty).
func EncodeLocalNames(m map[string]string) string {
	if len(m) == 0 {
		return "{}"
	}
	return mustJSON(m)
}

// DecodeLocalNames decodes EncodeLocalNames' output; empty reads back as nil.
func DecodeLocalNames(s string) (map[string]string, error) {
	var m map[string]string
	if err := decode(s, &m); err != nil {
		return nil, fmt.Errorf("local names: %w", err)
	}
	if len(m) == 0 {
		return nil, nil
	}
	return m, nil
}

// DecodeLabels decodes a device's attributes or tags (a JSON object of
// strings, written with EncodeVersions); empty reads back as nil.
func DecodeLabels(s string) (map[string]string, error) {
	var m map[string]string
	if err := decode(s, &m); err != nil {
		return nil, fmt.Errorf("labels: %w", err)
	}
	if len(m) == 0 {
		return nil, nil
	}
	return m, nil
}

type targetJSON struct {
	All            bool              `json:"all,omitempty"`
	Devices        []string          `json:"devices,omitempty"`
	Groups         []string          `json:"groups,omitempty"`
	Attributes     map[string]string `json:"attributes,omitempty"`
	Tags           map[string]string `json:"tags,omitempty"`
	GrayPercent    float64           `json:"gray_percent,omitempty"`
	SourceVersions []string          `json:"source_versions,omitempty"`
}

// EncodeTarget encodes a job's target. GrayPercent keeps its exact float64
// value (encoding/json writes the shortest representation that reads back
// identically).
func EncodeTarget(t ota.Target) string {
	return mustJSON(targetJSON(t))
}

// DecodeTarget decodes EncodeTarget's output.
func DecodeTarget(s string) (ota.Target, error) {
	var v targetJSON
	if err := decode(s, &v); err != nil {
		return ota.Target{}, fmt.Errorf("target: %w", err)
	}
	if len(v.Devices) == 0 {
		v.Devices = nil
	}
	if len(v.Groups) == 0 {
		v.Groups = nil
	}
	if len(v.SourceVersions) == 0 {
		v.SourceVersions = nil
	}
	if len(v.Attributes) == 0 {
		v.Attributes = nil
	}
	if len(v.Tags) == 0 {
		v.Tags = nil
	}
	return ota.Target(v), nil
}

type windowJSON struct {
	FromMinute       int `json:"from_minute"`
	ToMinute         int `json:"to_minute"`
	UTCOffsetMinutes int `json:"utc_offset_minutes"`
}

// EncodeWindow encodes a schedule's daily window; nil encodes as "".
func EncodeWindow(w *ota.DailyWindow) string {
	if w == nil {
		return ""
	}
	return mustJSON(windowJSON(*w))
}

// DecodeWindow decodes EncodeWindow's output; "" reads back as nil.
func DecodeWindow(s string) (*ota.DailyWindow, error) {
	if s == "" || s == "null" {
		return nil, nil
	}
	var v windowJSON
	if err := json.Unmarshal([]byte(s), &v); err != nil {
		return nil, fmt.Errorf("schedule window: %w", err)
	}
	w := ota.DailyWindow(v)
	return &w, nil
}

func decode(s string, v any) error {
	if s == "" || s == "null" {
		return nil
	}
	return json.Unmarshal([]byte(s), v)
}

// mustJSON marshals values that cannot fail to marshal (strings, numbers,
// bools and slices/maps of them).
func mustJSON(v any) string {
	b, err := json.Marshal(v)
	if err != nil {
		panic("sqlcommon: " + err.Error())
	}
	return string(b)
}
