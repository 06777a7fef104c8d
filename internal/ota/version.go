package ota

import (
	"strconv"
	"strings"
)

// CompareVersions orders two version strings the way device firmware
// versions are written: an optional "v"/"V", dot-separated numbers (any
// count: "1.2", "1.2.0", "V1.0.0.12"; missing parts are 0), and an optional
// semantic-versioning pre-release after "-" (lower than the release) and
// build after "+" (ignored). ok is false when either string is not of that
// form ("beta", "2024-rc"): such versions have no order, and the caller
// falls back to what the package declares (Package.SourceVersions).
func CompareVersions(a, b string) (cmp int, ok bool) {
	pa, ok1 := parseVersion(a)
	pb, ok2 := parseVersion(b)
	if !ok1 || !ok2 {
		return 0, false
	}
	for i := 0; i < max(len(pa.nums), len(pb.nums)); i++ {
		var x, y uint64
		if i < len(pa.nums) {
			x = pa.nums[i]
		}
		if i < len(pb.nums) {
			y = pb.nums[i]
		}
		if x != y {
			if x < y {
				return -1, true
			}
			return 1, true
		}
	}
	return comparePrerelease(pa.pre, pb.pre), true
}

type parsedVersion struct {
	nums []uint64
	pre  []string
}

func parseVersion(s string) (parsedVersion, bool) {
	var v parsedVersion
	s = strings.TrimPrefix(strings.TrimPrefix(s, "v"), "V")
	s, _, _ = strings.Cut(s, "+")
	core, pre, hasPre := strings.Cut(s, "-")
	if core == "" || (hasPre && pre == "") {
		return v, false
	}
	for _, part := range strings.Split(core, ".") {
		n, err := strconv.ParseUint(part, 10, 64)
		if err != nil || part == "" || part[0] == '+' {
			return v, false
		}
		v.nums = append(v.nums, n)
	}
	if hasPre {
		v.pre = strings.Split(pre, ".")
		for _, id := range v.pre {
			if id == "" {
				return v, false
			}
		}
	}
	return v, true
}

// comparePrerelease follows semantic versioning §11: no pre-release ranks
// above any; identifiers compare numerically when both are numbers, else
// lexically, numbers below words; a longer list wins a common prefix.
func comparePrerelease(a, b []string) int {
	switch {
	case len(a) == 0 && len(b) == 0:
		return 0
	case len(a) == 0:
		return 1
	case len(b) == 0:
		return -1
	}
	for i := 0; i < min(len(a), len(b)); i++ {
		x, errX := strconv.ParseUint(a[i], 10, 64)
		y, errY := strconv.ParseUint(b[i], 10, 64)
		switch {
		case errX == nil && errY == nil:
			if x != y {
				if x < y {
					return -1
				}
				return 1
			}
		case errX == nil:
			return -1
		case errY == nil:
			return 1
		default:
			if c := strings.Compare(a[i], b[i]); c != 0 {
				return c
			}
		}
	}
	switch {
	case len(a) < len(b):
		return -1
	case len(a) > len(b):
		return 1
	}
	return 0
}
