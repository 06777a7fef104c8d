package ota

import (
	"strings"
	"testing"
)

// TestTextHygiene: free text and display names refuse control characters
// (ANSI escapes) and bidi overrides with a message naming the character;
// descriptions keep tabs and line breaks.
func TestTextHygiene(t *testing.T) {
	for _, s := range []string{"plain", "multi\nline\ttext\r\n", "ünïcode 中文"} {
		if err := CheckLen("description", s, MaxDescriptionLen); err != nil {
			t.Errorf("CheckLen(%q): %v", s, err)
		}
	}
	for _, c := range []struct{ s, want string }{
		{"red \x1b[31m", "control character U+001B"},
		{"nul\x00", "control character U+0000"},
		{"c1\u0085", "control character U+0085"},
		{"evil\u202Etxt.exe", "bidirectional control U+202E"},
		{"iso\u2066", "bidirectional control U+2066"},
		{"bad\xffutf8", "not valid UTF-8"},
	} {
		err := CheckLen("description", c.s, MaxDescriptionLen)
		if err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("CheckLen(%q): %v, want %q", c.s, err, c.want)
		}
		if err := CheckDisplayName("name", c.s, 64, true); err == nil {
			t.Errorf("CheckDisplayName(%q) accepted", c.s)
		}
	}
	if err := CheckDisplayName("name", "two\nlines", 64, true); err == nil {
		t.Error("a display name with a line break was accepted")
	}
	if err := CheckTags("tags", []Tag{{Key: "k", Value: "v\u202E"}}); err == nil {
		t.Error("a tag value with a bidi override was accepted")
	}
}

// TestObjectKeySafeSet: the documented set is accepted, anything else refused.
func TestObjectKeySafeSet(t *testing.T) {
	for _, k := range []string{"a", "releases/v2.0/app.bin", "x!-_.*'() y/z", strings.Repeat("k", MaxObjectKeyLen)} {
		if err := CheckObjectKey("object_key", k); err != nil {
			t.Errorf("%q: %v", k, err)
		}
	}
	for _, k := range []string{"", "a\nb", `a\b`, "../x", "a/../b", "a/./b", "/abs", "a//b", "a/", "ключ", "tab\tkey", "a\x00b", strings.Repeat("k", MaxObjectKeyLen+1)} {
		if err := CheckObjectKey("object_key", k); err == nil {
			t.Errorf("%q was accepted", k)
		}
	}
}
