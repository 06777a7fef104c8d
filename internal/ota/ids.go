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

// NewID returns a 24-character lowercase hex id: 4 bytes of Unix seconds, a
// 3-byte counter and 5 random bytes. Ids sort by creation time — within a
// second too, in one process, because the counter comes before the random
// part — which Huawei's `marker` paging (newest first, ids below the marker)
// relies on; and they fit every vendor's id rules (≤36, [a-z0-9]).
func NewID(now time.Time) string {
	var b [12]byte
	binary.BigEndian.PutUint32(b[0:4], uint32(now.Unix()))
	c := idCounter.Add(1)
	b[4], b[5], b[6] = byte(c>>16), byte(c>>8), byte(c)
	_, _ = rand.Read(b[7:12])
	return hex.EncodeToString(b[:])
}

// NewSecret returns a random secret of n bytes as hex (2n characters).
func NewSecret(n int) string {
	b := make([]byte, n)
	_, _ = rand.Read(b)
	return hex.EncodeToString(b)
}
