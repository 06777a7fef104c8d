package blobtest

import (
	"crypto/md5"
	"crypto/sha256"
	"encoding/hex"
	"hash"
	"io"
	"math/rand/v2"
)

// generator yields n pseudo-random bytes without holding them, and hashes
// what it yields so the suite knows the expected digests afterwards.
type generator struct {
	left   int64
	rng    *rand.ChaCha8
	sh, md hash.Hash
}

func newGenerator(n int64) *generator {
	var seed [32]byte
	seed[0] = byte(n)
	return &generator{left: n, rng: rand.NewChaCha8(seed), sh: sha256.New(), md: md5.New()}
}

func (g *generator) Read(b []byte) (int, error) {
	if g.left <= 0 {
		return 0, io.EOF
	}
	if int64(len(b)) > g.left {
		b = b[:g.left]
	}
	n, _ := g.rng.Read(b)
	g.left -= int64(n)
	g.sh.Write(b[:n])
	g.md.Write(b[:n])
	return n, nil
}

func (g *generator) sha256() string { return hex.EncodeToString(g.sh.Sum(nil)) }
func (g *generator) md5() string    { return hex.EncodeToString(g.md.Sum(nil)) }
