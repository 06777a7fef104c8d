package mqtt

import "strings"

// matches reports whether topic name topic matches topic filter filter
// (MQTT 3.1.1 §4.7: '+' one level, '#' the rest, topics starting with '$'
// are not matched by a leading wildcard).
func matches(filter, topic string) bool {
	if strings.HasPrefix(topic, "$") && (strings.HasPrefix(filter, "+") || strings.HasPrefix(filter, "#")) {
		return false
	}
	f := strings.Split(filter, "/")
	t := strings.Split(topic, "/")
	for i, level := range f {
		if level == "#" {
			return true
		}
		if i >= len(t) {
			return false
		}
		if level != "+" && level != t[i] {
			return false
		}
	}
	return len(f) == len(t)
}

// covers reports whether every topic matched by filter requested is also
// matched by filter allowed, so a device cannot widen its reach with a
// wildcard. Shared subscriptions are never covered: devices do not share.
func covers(allowed, requested string) bool {
	if first, _, _ := strings.Cut(requested, "/"); strings.EqualFold(first, "$share") || strings.EqualFold(first, "$queue") {
		return false
	}
	a := strings.Split(allowed, "/")
	r := strings.Split(requested, "/")
	for i, level := range a {
		if level == "#" {
			return true
		}
		if i >= len(r) {
			return false
		}
		switch {
		case r[i] == "#":
			return false // requested reaches deeper than allowed
		case level == "+":
			// any single level, including '+', stays within
		case r[i] != level:
			return false
		}
	}
	return len(a) == len(r)
}

func anyMatches(filters []string, topic string) bool {
	for _, f := range filters {
		if matches(f, topic) {
			return true
		}
	}
	return false
}

func anyCovers(allowed []string, requested string) bool {
	for _, a := range allowed {
		if covers(a, requested) {
			return true
		}
	}
	return false
}

// validFilter reports whether filter is a well-formed topic filter (MQTT
// 3.1.1 §4.7.1: not empty; '#' only as the whole last level, '+' only as a
// whole level).
func validFilter(filter string) bool {
	if filter == "" {
		return false
	}
	levels := strings.Split(filter, "/")
	for i, l := range levels {
		if strings.ContainsAny(l, "+#") && len(l) > 1 {
			return false
		}
		if l == "#" && i != len(levels)-1 {
			return false
		}
	}
	return true
}
