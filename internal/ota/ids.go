package ota

import (
	"crypto/rand"
	"encoding/binary"
	"encoding/hex"
	"sync/atomic"
	"time"
)

var idCounter atomic.Uint32

func init() {
	var b [4]byte
	_, _ = rand.Read(b[:])
	idCounter.Store(binary.BigEndian.Uint32(b[:]))
}

// NewID returns a 24-character lowercase hex id: 4 bytes of Unix seconds, 5
// random bytes and a 3-byte counter. Ids sort by creation time, which Huawei's
// `marker` paging (newest first, ids below the marker) relies on, and they fit
// every vendor's id rules (≤36, [a-z0-9]).
func NewID(now time.Time) string {
	var b [12]byte
	binary.BigEndian.PutUint32(b[0:4], uint32(now.Unix()))
	_, _ = rand.Read(b[4:9])
	c := idCounter.Add(1)
	b[9], b[10], b[11] = byte(c>>16), byte(c>>8), byte(c)
	return hex.EncodeToString(b[:])
}

// NewSecret returns a random secret of n bytes as hex (2n characters).
func NewSecret(n int) string {
	b := make([]byte, n)
	_, _ = rand.Read(b)
	return hex.EncodeToString(b)
}
