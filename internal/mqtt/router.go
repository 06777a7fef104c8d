package mqtt

import (
	"strings"
	"sync"
)

// router finds the connected clients whose subscriptions match a topic. It
// costs a map entry per subscription and nothing per topic level: exact
// filters (every filter a device gets today) are looked up directly;
// filters with a wildcard are kept under their literal prefix (the levels
// before the first wildcard) and tried against each '/'-prefix of the
// published topic.
type router struct {
	mu    sync.RWMutex
	exact map[string][]subscriber // filter without wildcards → subscribers
	wild  map[string][]subscriber // literal prefix → subscribers with a wildcard filter
}

type subscriber struct {
	c      *client
	filter string
	qos    byte
}

func newRouter() *router {
	return &router{exact: map[string][]subscriber{}, wild: map[string][]subscriber{}}
}

// literalPrefix is the part of filter before its first wildcard level
// ("a/b" for "a/b/+/c" and for "a/b/#", "" for "#"), and whether it has one.
func literalPrefix(filter string) (string, bool) {
	levels := strings.Split(filter, "/")
	for i, l := range levels {
		if l == "+" || l == "#" {
			return strings.Join(levels[:i], "/"), true
		}
	}
	return filter, false
}

func (r *router) table(filter string) (map[string][]subscriber, string) {
	if key, wild := literalPrefix(filter); wild {
		return r.wild, key
	}
	return r.exact, filter
}

// add subscribes c to filter at qos, replacing an existing subscription of
// c to the same filter (MQTT-3.8.4-3).
func (r *router) add(c *client, filter string, qos byte) {
	r.mu.Lock()
	defer r.mu.Unlock()
	t, key := r.table(filter)
	subs := t[key]
	for i, s := range subs {
		if s.c == c && s.filter == filter {
			subs[i].qos = qos
			return
		}
	}
	t[key] = append(subs, subscriber{c: c, filter: filter, qos: qos})
}

// remove unsubscribes c from filter; it reports whether c was subscribed.
func (r *router) remove(c *client, filter string) bool {
	r.mu.Lock()
	defer r.mu.Unlock()
	t, key := r.table(filter)
	subs := t[key]
	for i, s := range subs {
		if s.c == c && s.filter == filter {
			last := len(subs) - 1
			subs[i] = subs[last]
			subs[last] = subscriber{}
			if last == 0 {
				delete(t, key)
			} else {
				t[key] = subs[:last]
			}
			return true
		}
	}
	return false
}

// match returns each client subscribed to a filter matching topic once,
// with the highest QoS of its matching subscriptions.
func (r *router) match(topic string) []subscriber {
	var out []subscriber
	put := func(s subscriber) {
		for i := range out {
			if out[i].c == s.c {
				out[i].qos = max(out[i].qos, s.qos)
				return
			}
		}
		out = append(out, s)
	}
	r.mu.RLock()
	defer r.mu.RUnlock()
	for _, s := range r.exact[topic] {
		put(s)
	}
	if len(r.wild) == 0 {
		return out
	}
	for end := 0; ; {
		for _, s := range r.wild[topic[:end]] {
			if matches(s.filter, topic) {
				put(s)
			}
		}
		if end == len(topic) {
			break
		}
		if i := strings.IndexByte(topic[end+1:], '/'); i >= 0 {
			end += 1 + i
		} else {
			end = len(topic)
		}
	}
	return out
}
