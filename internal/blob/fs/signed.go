package fs

import (
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/updraft-ota/updraft/internal/ota"
)

// URLPrefix is the path under which Handler serves signed downloads; the
// server mounts Handler there without stripping it.
const URLPrefix = "/blob/"

// signature is hex HMAC-SHA256(signingKey, "bucket/key/expires"). Bucket names
// have no '/' and expires is the last segment, so the string is unambiguous.
func (s *Store) signature(bucket, key string, expires int64) []byte {
	mac := hmac.New(sha256.New, s.signingKey)
	mac.Write([]byte(bucket + "/" + key + "/" + strconv.FormatInt(expires, 10)))
	return mac.Sum(nil)
}

// SignedURL returns <public URL>/blob/<bucket>/<key>?expires=<unix>&sig=<hex>.
func (s *Store) SignedURL(ctx context.Context, bucket, key string, ttl time.Duration) (string, error) {
	if err := checkName(bucket, key); err != nil {
		return "", err
	}
	if ttl <= 0 {
		return "", ota.Invalid("ttl", "URL lifetime %v must be positive", ttl)
	}
	// Round up so a URL never lives shorter than asked.
	expires := s.now().Add(ttl + time.Second - 1).Unix()
	segs := strings.Split(key, "/")
	for i, seg := range segs {
		segs[i] = url.PathEscape(seg)
	}
	q := url.Values{}
	q.Set("expires", strconv.FormatInt(expires, 10))
	q.Set("sig", hex.EncodeToString(s.signature(bucket, key, expires)))
	return s.publicBase + URLPrefix + bucket + "/" + strings.Join(segs, "/") + "?" + q.Encode(), nil
}

// Handler serves GET and HEAD of signed URLs with http.ServeContent, so Range,
// If-Range, If-None-Match and If-Modified-Since work; the ETag is the quoted
// SHA-256 of the content. A bad or expired signature is 403 whether or not the
// object exists.
func (s *Store) Handler() http.Handler {
	return http.HandlerFunc(s.serve)
}

func (s *Store) serve(w http.ResponseWriter, r *http.Request) {
	if r.Method != http.MethodGet && r.Method != http.MethodHead {
		w.Header().Set("Allow", "GET, HEAD")
		http.Error(w, "only GET and HEAD are allowed on download links", http.StatusMethodNotAllowed)
		return
	}
	rest, ok := strings.CutPrefix(r.URL.Path, URLPrefix)
	bucket, key, ok2 := strings.Cut(rest, "/")
	if !ok || !ok2 || checkName(bucket, key) != nil {
		http.Error(w, "not a download link", http.StatusNotFound)
		return
	}
	q := r.URL.Query()
	expires, err := strconv.ParseInt(q.Get("expires"), 10, 64)
	sig, err2 := hex.DecodeString(q.Get("sig"))
	if err != nil || err2 != nil || !hmac.Equal(sig, s.signature(bucket, key, expires)) {
		http.Error(w, "the download link's signature is not valid", http.StatusForbidden)
		return
	}
	if s.now().Unix() > expires {
		http.Error(w, "the download link has expired; request a new one", http.StatusForbidden)
		return
	}
	obj, err := s.Open(r.Context(), bucket, key)
	if err != nil {
		if ota.ErrorCode(err) == ota.CodeNotFound {
			http.Error(w, "the object no longer exists", http.StatusNotFound)
		} else {
			http.Error(w, "the object cannot be read right now", http.StatusServiceUnavailable)
		}
		return
	}
	defer obj.Close()
	info := obj.Info()
	h := w.Header()
	h.Set("ETag", info.ETag)
	// Set explicitly so ServeContent does not sniff (and seek) the content.
	h.Set("Content-Type", "application/octet-stream")
	h.Set("Cache-Control", "private, max-age="+strconv.FormatInt(max(0, expires-s.now().Unix()), 10))
	http.ServeContent(w, r, "", info.ModTime, obj)
}
