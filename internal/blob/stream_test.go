package blob

import (
	"context"
	"crypto/md5"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"io"
	"strings"
	"testing"
)

func TestLimitReader(t *testing.T) {
	for _, tc := range []struct {
		content string
		limit   int64
		tooBig  bool
	}{
		{"", 1, false},
		{"abcd", 4, false},
		{"abcd", 5, false},
		{"abcde", 4, true},
	} {
		l := LimitReader(context.Background(), strings.NewReader(tc.content), tc.limit)
		got, err := io.ReadAll(l)
		if tc.tooBig {
			if !errors.Is(err, ErrTooLarge) {
				t.Errorf("%q with limit %d: error %v, want ErrTooLarge", tc.content, tc.limit, err)
			}
			continue
		}
		if err != nil || string(got) != tc.content || l.N() != int64(len(tc.content)) {
			t.Errorf("%q with limit %d: read %q, N %d, error %v", tc.content, tc.limit, got, l.N(), err)
		}
	}
}

func TestLimitReaderStopsWhenContextDone(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	_, err := LimitReader(ctx, strings.NewReader("abc"), 10).Read(make([]byte, 3))
	if !errors.Is(err, context.Canceled) {
		t.Fatalf("error %v, want context.Canceled", err)
	}
}

func TestDigester(t *testing.T) {
	d := NewDigester()
	io.Copy(d, strings.NewReader("hello, "))
	io.Copy(d, strings.NewReader("world"))
	sh, md := d.Sums()
	wantSH := sha256.Sum256([]byte("hello, world"))
	wantMD := md5.Sum([]byte("hello, world"))
	if sh != hex.EncodeToString(wantSH[:]) || md != hex.EncodeToString(wantMD[:]) {
		t.Fatalf("Sums() = %s, %s", sh, md)
	}
}
