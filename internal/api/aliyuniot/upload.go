package aliyuniot

import (
	"crypto/hmac"
	"crypto/sha1"
	"crypto/subtle"
	"encoding/base64"
	"encoding/json"
	"encoding/xml"
	"errors"
	"io"
	"net/http"
	"time"

	"github.com/updraft-ota/updraft/internal/api/httpx"
	"github.com/updraft-ota/updraft/internal/ota"
	"github.com/updraft-ota/updraft/internal/service"
)

// The OSS PostObject-style upload endpoint GenerateOTAUploadURL names as
// Host: a multipart form with key, OSSAccessKeyId, policy, Signature and,
// last, file (OSS's order).
const (
	UploadPath = "/aliyuniot-oss"
	// UploadPolicyTTL is how long GenerateOTAUploadURL's form stays valid.
	UploadPolicyTTL = time.Minute
	// MaxUploadBytes is the policy's size condition (1 000 MB).
	MaxUploadBytes = 1000 << 20
	// UnclaimedUploadTTL: an uploaded file that no CreateOTAFirmware names
	// within this long is removed (Alibaba's documented 60 minutes).
	UnclaimedUploadTTL = 60 * time.Minute
)

// ossError is OSS's XML error body.
type ossError struct {
	XMLName   xml.Name `xml:"Error"`
	Code      string   `xml:"Code"`
	Message   string   `xml:"Message"`
	RequestID string   `xml:"RequestId"`
}

func writeOSSError(w http.ResponseWriter, r *http.Request, status int, code, msg string) {
	w.Header().Set("Content-Type", "application/xml")
	w.WriteHeader(status)
	_ = xml.NewEncoder(w).Encode(ossError{Code: code, Message: msg, RequestID: httpx.RequestIDFrom(r.Context())})
}

// upload stores the form's file under its key once the policy's signature,
// expiry and conditions hold; the bytes stream into the blob store, which
// hashes them on the way.
func (a *API) upload(w http.ResponseWriter, r *http.Request) {
	mr, err := r.MultipartReader()
	if err != nil {
		writeOSSError(w, r, http.StatusBadRequest, "InvalidArgument", "the upload must be a multipart/form-data POST: "+err.Error())
		return
	}
	fields := map[string]string{}
	for {
		part, err := mr.NextPart()
		if err == io.EOF {
			writeOSSError(w, r, http.StatusBadRequest, "InvalidArgument", "the form has no file field (it must come last)")
			return
		}
		if err != nil {
			writeOSSError(w, r, http.StatusBadRequest, "InvalidArgument", "the multipart form could not be read: "+err.Error())
			return
		}
		if part.FormName() != "file" {
			v, err := io.ReadAll(io.LimitReader(part, 64<<10))
			if err != nil {
				writeOSSError(w, r, http.StatusBadRequest, "InvalidArgument", "the form could not be read: "+err.Error())
				return
			}
			fields[part.FormName()] = string(v)
			continue
		}
		p, status, code, msg := a.checkPolicy(r, fields)
		if code != "" {
			writeOSSError(w, r, status, code, msg)
			return
		}
		limited := &sizeLimit{r: httpx.Upload(r, part), left: MaxUploadBytes}
		if _, err := a.svc.PutUpload(r.Context(), p, tenantBucket(p.TenantID), fields["key"], limited, UnclaimedUploadTTL); err != nil {
			if limited.over {
				writeOSSError(w, r, http.StatusBadRequest, "EntityTooLarge", "the file is larger than the policy allows (1000 MB)")
				return
			}
			if ota.ErrorCode(err) == ota.CodeRateLimited {
				// OSS's answer to too many requests at once.
				httpx.SetRetryAfter(w, err)
				writeOSSError(w, r, http.StatusServiceUnavailable, "ActiveRequestLimitExceeded", ota.ErrorMessage(err))
				return
			}
			writeOSSError(w, r, http.StatusBadRequest, "InvalidArgument", ota.ErrorMessage(err))
			return
		}
		w.WriteHeader(http.StatusNoContent)
		return
	}
}

// checkPolicy verifies the form fields against the signed policy.
func (a *API) checkPolicy(r *http.Request, f map[string]string) (service.Principal, int, string, string) {
	for _, name := range []string{"key", "OSSAccessKeyId", "policy", "Signature"} {
		if f[name] == "" {
			return service.Principal{}, http.StatusBadRequest, "InvalidArgument", "the form field " + name + " is required and must come before file"
		}
	}
	key, err := a.svc.AccessKey(r.Context(), f["OSSAccessKeyId"])
	if err != nil {
		return service.Principal{}, http.StatusForbidden, "InvalidAccessKeyId", "the OSSAccessKeyId is not known"
	}
	m := hmac.New(sha1.New, []byte(key.Secret))
	m.Write([]byte(f["policy"]))
	if subtle.ConstantTimeCompare([]byte(base64.StdEncoding.EncodeToString(m.Sum(nil))), []byte(f["Signature"])) != 1 {
		return service.Principal{}, http.StatusForbidden, "SignatureDoesNotMatch", "the policy signature does not match"
	}
	raw, err := base64.StdEncoding.DecodeString(f["policy"])
	var pol uploadPolicy
	if err == nil {
		err = json.Unmarshal(raw, &pol)
	}
	if err != nil {
		return service.Principal{}, http.StatusBadRequest, "InvalidPolicyDocument", "the policy is not base64 JSON"
	}
	exp, err := time.Parse("2006-01-02T15:04:05.000Z", pol.Expiration)
	if err != nil || !a.opts.Now().Before(exp) {
		return service.Principal{}, http.StatusForbidden, "AccessDenied", "Invalid according to Policy: Policy expired. Ask GenerateOTAUploadURL for a new one"
	}
	keyOK := false
	for _, c := range pol.Conditions {
		if m, ok := c.(map[string]any); ok && m["key"] == f["key"] {
			keyOK = true
		}
	}
	if !keyOK {
		return service.Principal{}, http.StatusForbidden, "AccessDenied", "Invalid according to Policy: the key is not the one the policy names"
	}
	p := service.PrincipalOf(key)
	if err := p.Allow(service.ActionWrite); err != nil {
		return service.Principal{}, http.StatusForbidden, "AccessDenied", ota.ErrorMessage(err)
	}
	return p, 0, "", ""
}

// sizeLimit fails a read past the policy's size condition.
type sizeLimit struct {
	r    io.Reader
	left int64
	over bool
}

var errTooLarge = errors.New("the file is larger than the upload policy allows")

func (s *sizeLimit) Read(p []byte) (int, error) {
	if int64(len(p)) > s.left+1 {
		p = p[:s.left+1]
	}
	n, err := s.r.Read(p)
	s.left -= int64(n)
	if s.left < 0 {
		s.over = true
		return 0, errTooLarge
	}
	return n, err
}

// baseURL is the scheme and host the caller reached Updraft at.
func baseURL(r *http.Request) string {
	scheme := "http"
	if r.TLS != nil {
		scheme = "https"
	}
	return scheme + "://" + r.Host
}
