package enos

// The device side on HTTP: EnOS devices fetch the enos-connect:// file an
// upgrade notice names from the HTTP broker (spec §3.5, the SDK's
// HttpConnection): POST /auth/{pk}/{dk} logs in and returns a sessionId,
// GET /multipart/sys/{pk}/{dk}/file/download?sessionId=…&fileUri=…&category=ota
// streams the file (Range supported).

import (
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/hex"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/updraft-ota/updraft/internal/api/httpx"
	"github.com/updraft-ota/updraft/internal/ota"
)

// Session lifetimes a device may ask for at login, in milliseconds. The
// SDK's default is 300 000 (5 min) and it logs in again when one lapses.
const (
	MinSessionLifetime = 1_000
	MaxSessionLifetime = 86_400_000
)

const maxLoginBody = 4 << 10

// DevicePaths are the HTTP-broker paths the device side mounts.
const (
	DeviceAuthPath     = "/auth/"
	DeviceDownloadPath = "/multipart/sys/"
)

// deviceAnswer is the HTTP broker's JSON answer (login, errors).
type deviceAnswer struct {
	Code    int    `json:"code"`
	Message string `json:"message"`
	Data    any    `json:"data,omitempty"`
}

func writeDevice(w http.ResponseWriter, status int, a deviceAnswer) {
	w.Header().Set("Content-Type", "application/json;charset=UTF-8")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(a)
}

func deviceFail(w http.ResponseWriter, status int, msg string) {
	writeDevice(w, status, deviceAnswer{Code: status, Message: msg})
}

// loginRequest is the SDK's AuthRequestBody. The current Java SDK sends the
// sign method in a field named secureMode; older ones name it signMethod.
type loginRequest struct {
	SignMethod string `json:"signMethod"`
	SecureMode string `json:"secureMode"`
	Lifetime   int64  `json:"lifetime"`
	Sign       string `json:"sign"`
}

// LoginSign is the login sign: sha256 of the sorted parameters
// (deviceKey, lifetime, productKey, signMethod) as name+value followed by the
// device secret, lower-case hex (the SDK's SignUtil with SHA256).
func LoginSign(productKey, deviceKey string, lifetime int64, secret string) string {
	s := sortedParams(map[string]string{"productKey": productKey, "deviceKey": deviceKey,
		"lifetime": strconv.FormatInt(lifetime, 10), "signMethod": "sha256"}) + secret
	sum := sha256.Sum256([]byte(s))
	return hex.EncodeToString(sum[:])
}

// sessionID is "{expiry ms}.{hex HMAC-SHA256(device secret, pk, dk, expiry)}":
// stateless, so every replica accepts it and a new device secret ends it.
func sessionID(productKey, deviceKey, secret string, expires time.Time) string {
	exp := strconv.FormatInt(expires.UnixMilli(), 10)
	return exp + "." + sessionMAC(productKey, deviceKey, secret, exp)
}

func sessionMAC(productKey, deviceKey, secret, exp string) string {
	m := hmac.New(sha256.New, []byte(secret))
	m.Write([]byte("enos-http-session\n" + productKey + "\n" + deviceKey + "\n" + exp))
	return hex.EncodeToString(m.Sum(nil))
}

// enosDevice looks up a device of an enos-protocol product; anything else
// is "unknown device", so the endpoint does not reveal other devices.
func (a *API) enosDevice(ctx context.Context, productKey, deviceKey string) (ota.Device, error) {
	ref := ota.DeviceRef{ProductKey: productKey, Name: deviceKey}
	proto, err := a.svc.ProductProtocol(ctx, productKey)
	if err != nil {
		return ota.Device{}, err
	}
	if proto != ota.ProtocolEnOS {
		return ota.Device{}, ota.NotFound("device", deviceKey)
	}
	return a.svc.DeviceForAuth(ctx, ref)
}

// failLookup answers a failed device lookup: unknown devices as 401, store
// trouble as 503 (the SDK retries).
func failLookup(w http.ResponseWriter, err error) {
	if ota.ErrorCode(err) == ota.CodeNotFound {
		deviceFail(w, http.StatusUnauthorized, "unknown device or bad sign")
		return
	}
	deviceFail(w, http.StatusServiceUnavailable, "the server cannot check the device now; try again")
}

// deviceRefusal is an HTTP-broker answer decided while checking a device's
// request (status and message of deviceFail).
type deviceRefusal struct {
	status int
	msg    string
}

func (e *deviceRefusal) Error() string { return e.msg }

func refuse(status int, msg string) error { return &deviceRefusal{status, msg} }

// admitDevice runs check (which names the device) under the server's rate
// limits (httpx.AdmitDevice) and answers a refusal itself: a device over its
// limit gets HTTP 429 with Retry-After and {"code":429,"message"}, the HTTP
// broker's error form. It reports whether the request may go on.
func admitDevice(w http.ResponseWriter, r *http.Request, check func() error) bool {
	pk, dk := r.PathValue("productKey"), r.PathValue("deviceKey")
	err := httpx.AdmitDevice(r, func() (string, error) {
		if err := check(); err != nil {
			return "", err
		}
		return pk + "/" + dk, nil
	})
	var refusal *deviceRefusal
	switch {
	case err == nil:
		return true
	case errors.As(err, &refusal):
		deviceFail(w, refusal.status, refusal.msg)
	case ota.ErrorCode(err) == ota.CodeRateLimited:
		deviceFail(w, http.StatusTooManyRequests, ota.ErrorMessage(err))
	default:
		failLookup(w, err)
	}
	return false
}

func (a *API) serveDeviceLogin(w http.ResponseWriter, r *http.Request) {
	pk, dk := r.PathValue("productKey"), r.PathValue("deviceKey")
	var req loginRequest
	var dev ota.Device
	ok := admitDevice(w, r, func() error {
		body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, maxLoginBody))
		if err != nil {
			return refuse(http.StatusBadRequest, "the login body could not be read (at most 4 KiB)")
		}
		if err := json.Unmarshal(body, &req); err != nil {
			return refuse(http.StatusBadRequest, "the login body is not JSON {signMethod, lifetime, sign}: "+err.Error())
		}
		method := req.SignMethod
		if method == "" {
			method = req.SecureMode
		}
		if !strings.EqualFold(method, "sha256") {
			return refuse(http.StatusBadRequest, "signMethod "+strconv.Quote(method)+" is not supported: use sha256")
		}
		if req.Lifetime < MinSessionLifetime || req.Lifetime > MaxSessionLifetime {
			return refuse(http.StatusBadRequest, "lifetime must be "+strconv.Itoa(MinSessionLifetime)+" to "+strconv.Itoa(MaxSessionLifetime)+" ms, got "+strconv.FormatInt(req.Lifetime, 10))
		}
		if dev, err = a.enosDevice(r.Context(), pk, dk); err != nil {
			return err
		}
		want := LoginSign(pk, dk, req.Lifetime, dev.Secret)
		if subtle.ConstantTimeCompare([]byte(want), []byte(strings.ToLower(req.Sign))) != 1 {
			return refuse(http.StatusUnauthorized, "unknown device or bad sign")
		}
		return nil
	})
	if !ok {
		return
	}
	exp := a.svc.Now().Add(time.Duration(req.Lifetime) * time.Millisecond)
	writeDevice(w, http.StatusOK, deviceAnswer{Code: 0, Message: "success",
		Data: map[string]string{"sessionId": sessionID(pk, dk, dev.Secret, exp)}})
}

// serveDeviceFile streams the package an enos-connect:// URI names to a
// device with a live session; http.ServeContent answers Range requests.
func (a *API) serveDeviceFile(w http.ResponseWriter, r *http.Request) {
	pk, dk := r.PathValue("productKey"), r.PathValue("deviceKey")
	q := r.URL.Query()
	var id string
	if !admitDevice(w, r, func() error {
		if c := q.Get("category"); c != "ota" {
			return refuse(http.StatusBadRequest, "category "+strconv.Quote(c)+" is not served here: use category=ota")
		}
		var ok bool
		if id, ok = packageOfURI(q.Get("fileUri")); !ok {
			return refuse(http.StatusBadRequest, "fileUri must be the enos-connect:// URI of an upgrade notice")
		}
		dev, err := a.enosDevice(r.Context(), pk, dk)
		if err != nil {
			return err
		}
		exp, mac, _ := strings.Cut(q.Get("sessionId"), ".")
		expMs, err := strconv.ParseInt(exp, 10, 64)
		if err != nil || subtle.ConstantTimeCompare([]byte(sessionMAC(pk, dk, dev.Secret, exp)), []byte(mac)) != 1 {
			return refuse(http.StatusUnauthorized, "sessionId is not valid: log in again (POST /auth/{productKey}/{deviceKey})")
		}
		if !a.svc.Now().Before(time.UnixMilli(expMs)) {
			return refuse(http.StatusUnauthorized, "the session has expired: log in again (POST /auth/{productKey}/{deviceKey})")
		}
		return nil
	}) {
		return
	}
	pkg, obj, err := a.svc.OpenPackageForDevice(r.Context(), ota.DeviceRef{ProductKey: pk, Name: dk}, id)
	switch ota.ErrorCode(err) {
	case "":
	case ota.CodeNotFound:
		deviceFail(w, http.StatusNotFound, "no OTA file "+q.Get("fileUri")+" for this device's product")
		return
	default:
		a.log.Warn("enos: opening a package for a device", "package", id, "device", pk+"/"+dk, "err", err)
		deviceFail(w, http.StatusServiceUnavailable, "the file cannot be read now; try again")
		return
	}
	defer obj.Close()
	info := obj.Info()
	w.Header().Set("Content-Type", "application/octet-stream")
	if info.ETag != "" {
		w.Header().Set("ETag", info.ETag)
	}
	if pkg.FileName != "" {
		w.Header().Set("Content-Disposition", `attachment; filename="`+strings.ReplaceAll(pkg.FileName, `"`, "")+`"`)
	}
	http.ServeContent(w, r, "", info.ModTime, obj)
}
