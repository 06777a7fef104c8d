package httpx

import (
	"errors"
	"log/slog"
	"math"
	"net/http"
	"strconv"

	"github.com/updraft-ota/updraft/apiv1"
	"github.com/updraft-ota/updraft/internal/ota"
)

// The native error envelope and its one table from ota codes to HTTP
// statuses, shared by the native management and device APIs. Vendor dialects
// keep their own tables and envelopes.

// Status is the HTTP status of an ota error code on the native APIs.
func Status(code ota.Code) int {
	switch code {
	case ota.CodeInvalid:
		return http.StatusBadRequest
	case ota.CodeNotFound:
		return http.StatusNotFound
	case ota.CodeConflict:
		return http.StatusConflict
	case ota.CodeUnauthenticated:
		return http.StatusUnauthorized
	case ota.CodeForbidden:
		return http.StatusForbidden
	case ota.CodeTooLarge:
		return http.StatusRequestEntityTooLarge
	case ota.CodeUnsupported:
		return http.StatusNotImplemented
	case ota.CodeNotVerified:
		// The request is well formed; the package's state forbids it for now.
		return http.StatusConflict
	case ota.CodeSignMismatch:
		// The request is well formed; its content contradicts its declared sign.
		return http.StatusUnprocessableEntity
	case ota.CodeRateLimited:
		return http.StatusTooManyRequests
	case ota.CodeUnavailable:
		return http.StatusServiceUnavailable
	}
	return http.StatusInternalServerError
}

// ErrorBody is the native error envelope (its one definition is apiv1.Error,
// which client/ reads).
type ErrorBody = apiv1.Error

// SetRetryAfter sends an error's retry hint (ota.Error.RetryAfter) as
// Retry-After, unless one is set already (the rate limiter sets its own).
// Every dialect's error writer calls it, whatever its envelope.
func SetRetryAfter(w http.ResponseWriter, err error) {
	var e *ota.Error
	if !errors.As(err, &e) || e.RetryAfter <= 0 || w.Header().Get("Retry-After") != "" {
		return
	}
	w.Header().Set("Retry-After", strconv.Itoa(int(math.Ceil(e.RetryAfter.Seconds()))))
}

// WriteError writes err in the native envelope. Internal and unavailable
// errors are logged with their cause and the request id; callers see a
// generic message they can quote back with the request id.
func WriteError(w http.ResponseWriter, r *http.Request, log *slog.Logger, err error) {
	code := ota.ErrorCode(err)
	body := ErrorBody{Code: string(code), Message: ota.ErrorMessage(err), Field: ota.ErrorField(err), RequestID: RequestIDFrom(r.Context())}
	switch code {
	case ota.CodeInternal:
		body.Message = "internal error: report the request id to the operator"
		body.Field = ""
		log.ErrorContext(r.Context(), "request failed", "request_id", body.RequestID, "method", r.Method, "path", r.URL.Path, "err", err)
	case ota.CodeUnavailable:
		log.WarnContext(r.Context(), "request failed: dependency unavailable", "request_id", body.RequestID, "method", r.Method, "path", r.URL.Path, "err", err)
	}
	SetRetryAfter(w, err)
	if code == ota.CodeUnauthenticated {
		w.Header().Set("WWW-Authenticate", `Bearer realm="updraft", Basic realm="updraft"`)
	}
	WriteJSON(w, Status(code), body)
}
