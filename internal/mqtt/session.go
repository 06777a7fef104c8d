package mqtt

import (
	"encoding/binary"
	"strings"
	"sync"

	"github.com/updraft-ota/updraft/internal/ota"
)

// The broker holds the session of every connected device, and a dialect
// builds it from a dozen strings that differ from device to device only by
// the device's product key and name ("updraft/v1/{product}/{device}/…").
// So the broker keeps a session as its device and a shape: the session with
// the product key and name taken out of its strings, shared by every
// connected device whose session has the same shape. A device then costs
// its two names, not its topics; the session is rebuilt (session) when a
// message, a subscription or a delivery needs it.

// piece is a literal, or the device's product key or name.
type piece struct {
	lit string
	ref byte // refLiteral, refProduct, refName
}

const (
	refLiteral byte = iota
	refProduct
	refName
)

// pattern is a string of a session with the device's names taken out.
type pattern []piece

// shape is a session's pattern, shared by the devices whose sessions have it.
type shape struct {
	key    string // its encoding: the shapes map's key
	refs   int    // connections holding it (under shapes.mu)
	notice pattern
	lists  [4][]pattern // Modules, Publish, Subscribe, AutoSubscribe
}

// shapes interns shapes; one no connection holds is dropped, so their
// number is bounded by the connections.
type shapes struct {
	mu sync.Mutex
	m  map[string]*shape
}

func sessionLists(s *Session) [4]*[]string {
	return [4]*[]string{&s.Modules, &s.Publish, &s.Subscribe, &s.AutoSubscribe}
}

// intern returns the shape of s (held until release).
func (ss *shapes) intern(s *Session) *shape {
	dev := s.Device
	sh := &shape{notice: cut(s.NoticeTopic, dev)}
	for i, l := range sessionLists(s) {
		for _, x := range *l {
			sh.lists[i] = append(sh.lists[i], cut(x, dev))
		}
	}
	sh.key = sh.encode()
	ss.mu.Lock()
	defer ss.mu.Unlock()
	if ss.m == nil {
		ss.m = make(map[string]*shape)
	}
	if old, ok := ss.m[sh.key]; ok {
		sh = old
	} else {
		ss.m[sh.key] = sh
	}
	sh.refs++
	return sh
}

func (ss *shapes) release(sh *shape) {
	ss.mu.Lock()
	defer ss.mu.Unlock()
	if sh.refs--; sh.refs == 0 {
		delete(ss.m, sh.key)
	}
}

// cut takes dev's product key and name out of s (the longer first where
// both start at one place); expand puts them back, exactly.
func cut(s string, dev ota.DeviceRef) pattern {
	var p pattern
	lit := 0
	names := [2]struct {
		v   string
		ref byte
	}{{dev.ProductKey, refProduct}, {dev.Name, refName}}
	if len(dev.Name) > len(dev.ProductKey) {
		names[0], names[1] = names[1], names[0]
	}
	for i := 0; i < len(s); {
		matched := false
		for _, n := range names {
			if n.v != "" && strings.HasPrefix(s[i:], n.v) {
				if lit < i {
					p = append(p, piece{lit: s[lit:i]})
				}
				p = append(p, piece{ref: n.ref})
				i += len(n.v)
				lit, matched = i, true
				break
			}
		}
		if !matched {
			i++
		}
	}
	if lit < len(s) {
		p = append(p, piece{lit: s[lit:]})
	}
	for i := range p {
		p[i].lit = strings.Clone(p[i].lit) // the shape outlives the dialect's strings
	}
	return p
}

func (p pattern) expand(dev ota.DeviceRef) string {
	if len(p) == 1 && p[0].ref == refLiteral {
		return p[0].lit
	}
	var b strings.Builder
	for _, x := range p {
		switch x.ref {
		case refProduct:
			b.WriteString(dev.ProductKey)
		case refName:
			b.WriteString(dev.Name)
		default:
			b.WriteString(x.lit)
		}
	}
	return b.String()
}

// encode is an unambiguous rendering of the shape (length-prefixed).
func (sh *shape) encode() string {
	var b []byte
	put := func(p pattern) {
		b = binary.AppendUvarint(b, uint64(len(p)))
		for _, x := range p {
			b = append(b, x.ref)
			b = binary.AppendUvarint(b, uint64(len(x.lit)))
			b = append(b, x.lit...)
		}
	}
	put(sh.notice)
	for _, l := range sh.lists {
		b = binary.AppendUvarint(b, uint64(len(l)))
		for _, p := range l {
			put(p)
		}
	}
	return string(b)
}

// session rebuilds the session of dev.
func (sh *shape) session(dev ota.DeviceRef) *Session {
	s := &Session{Device: dev, NoticeTopic: sh.notice.expand(dev)}
	for i, l := range sessionLists(s) {
		if len(sh.lists[i]) == 0 {
			continue
		}
		*l = make([]string, len(sh.lists[i]))
		for j, p := range sh.lists[i] {
			(*l)[j] = p.expand(dev)
		}
	}
	return s
}

// pack returns strs as substrings of one allocation; a string contained in
// a longer one costs nothing (a device's name in its client id).
func pack(strs ...string) []string {
	order := make([]int, len(strs))
	size := 0
	for i := range order {
		order[i] = i
		size += len(strs[i])
	}
	// Longest first, so that shorter strings are found inside longer ones.
	for i := 1; i < len(order); i++ {
		for j := i; j > 0 && len(strs[order[j]]) > len(strs[order[j-1]]); j-- {
			order[j], order[j-1] = order[j-1], order[j]
		}
	}
	var sb strings.Builder
	sb.Grow(size) // never reallocated: offsets found in sb.String() hold in the result
	at := make([]int, len(strs))
	for _, i := range order {
		if k := strings.Index(sb.String(), strs[i]); k >= 0 {
			at[i] = k
			continue
		}
		at[i] = sb.Len()
		sb.WriteString(strs[i])
	}
	all := sb.String()
	out := make([]string, len(strs))
	for i := range strs {
		out[i] = all[at[i] : at[i]+len(strs[i])]
	}
	return out
}
