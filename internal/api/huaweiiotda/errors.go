package huaweiiotda

import (
	"errors"
	"net/http"

	"github.com/updraft-ota/updraft/internal/ota"
)

// Fields the dialect itself reports on; they refine the wire code of an
// invalid-input error (see errorTable).
const (
	fieldBody         = "body"                      // the JSON body could not be read or decoded
	fieldScheduleTime = "task_policy.schedule_time" // a yyyyMMdd'T'HHmmss'Z' time did not parse
	fieldLimit        = "limit"                     // paging limit out of 1–50
)

// wireError is how one kind of failure looks on Huawei's wire.
type wireError struct {
	status int
	code   string
}

type errorKey struct {
	code  ota.Code
	field string // "" matches any field
}

// errorTable is the one mapping from ota error codes to HTTP status and
// IoTDA error_code. Codes documented by Huawei (api-iothub ErrorCode page,
// iot_06_v5_0018) are used where one fits; Huawei's per-resource 404/409 codes
// (IOTDA.01xxxx) were not captured, so Updraft answers those with
// IOTDA.000404 / IOTDA.000409 (README.md, "Errors").
var errorTable = map[errorKey]wireError{
	{ota.CodeInvalid, ""}:                {http.StatusBadRequest, "IOTDA.000006"}, // Invalid input data.
	{ota.CodeInvalid, fieldBody}:         {http.StatusBadRequest, "IOTDA.000008"}, // Bad request (malformed JSON…)
	{ota.CodeInvalid, fieldScheduleTime}: {http.StatusBadRequest, "IOTDA.000009"}, // Invalid time format.
	{ota.CodeInvalid, fieldLimit}:        {http.StatusBadRequest, "IOTDA.000017"}, // 'limit' is out of range.
	{ota.CodeTooLarge, ""}:               {http.StatusBadRequest, "IOTDA.000006"},
	{ota.CodeSignMismatch, ""}:           {http.StatusBadRequest, "IOTDA.000006"},
	{ota.CodeUnsupported, ""}:            {http.StatusBadRequest, "IOTDA.000006"},
	{ota.CodeUnauthenticated, ""}:        {http.StatusUnauthorized, "IOTDA.000002"}, // Authentication failed.
	{ota.CodeForbidden, ""}:              {http.StatusForbidden, "IOTDA.000021"},    // Operation not allowed.
	{ota.CodeRateLimited, ""}:            {http.StatusForbidden, "IOTDA.021101"},    // Request reached the maximum rate limit.
	{ota.CodeNotFound, ""}:               {http.StatusNotFound, "IOTDA.000404"},
	{ota.CodeConflict, ""}:               {http.StatusConflict, "IOTDA.000409"},
	{ota.CodeNotVerified, ""}:            {http.StatusConflict, "IOTDA.000409"},
	{ota.CodeUnavailable, ""}:            {http.StatusServiceUnavailable, "IOTDA.000001"},
	{ota.CodeInternal, ""}:               {http.StatusInternalServerError, "IOTDA.000001"}, // Internal server error.
}

// errorBody is Huawei's error envelope.
type errorBody struct {
	ErrorCode string `json:"error_code"`
	ErrorMsg  string `json:"error_msg"`
}

// toWire maps any error to its status and envelope.
func toWire(err error) (int, errorBody) {
	code := ota.ErrorCode(err)
	w, ok := errorTable[errorKey{code, ota.ErrorField(err)}]
	if !ok {
		w, ok = errorTable[errorKey{code, ""}]
	}
	if !ok {
		w = errorTable[errorKey{ota.CodeInternal, ""}]
	}
	msg := ota.ErrorMessage(err)
	var oe *ota.Error
	if code == ota.CodeInternal || code == ota.CodeUnavailable || !errors.As(err, &oe) {
		msg = "Internal server error."
		if code == ota.CodeUnavailable {
			msg = "Service temporarily unavailable: " + ota.ErrorMessage(err)
		}
	}
	return w.status, errorBody{ErrorCode: w.code, ErrorMsg: msg}
}
