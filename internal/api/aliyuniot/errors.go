package aliyuniot

import (
	"encoding/json"
	"errors"
	"net/http"

	"github.com/updraft-ota/updraft/internal/api/httpx"
	"github.com/updraft-ota/updraft/internal/ota"
)

// Fields the dialect reports on. They refine how an ota error looks on the
// wire (see errorTable): a request the gateway would reject never reaches
// IoT Platform, so Alibaba answers it with a 4xx POP error, while IoT's own
// business errors are HTTP 200 with Success:false.
const (
	fieldMissing    = "@missing"   // a required parameter is absent
	fieldParam      = "@param"     // a parameter is not of its type (number, boolean, list index)
	fieldPage       = "@page"      // CurrentPage / PageSize out of range
	fieldSignature  = "@signature" // signature does not match
	fieldIncomplete = "@incomplete"
	fieldAccessKey  = "@accesskey" // AccessKeyId not known
	fieldNonce      = "@nonce"     // SignatureNonce used before
	fieldTimestamp  = "@timestamp" // Timestamp outside the window
	fieldAction     = "@action"    // Action not served
)

// wireError is how one kind of failure looks on Alibaba's wire. status 200
// means a business error in the IoT envelope; anything else is a POP gateway
// error.
type wireError struct {
	status int
	code   string
}

type errorKey struct {
	code  ota.Code
	field string // "" matches any field
}

// errorTable is the one mapping from ota error codes to Alibaba codes.
// Gateway codes are Alibaba POP's standard ones; IoT business codes follow
// the documented prefixes (iot.common.*, iot.check.*, iot.system.*); the
// OTA-specific codes Alibaba uses were not captured, so Updraft names its
// own under iot.ota.* (README.md, "Errors").
var errorTable = map[errorKey]wireError{
	{ota.CodeInvalid, fieldMissing}:            {http.StatusBadRequest, "MissingParameter"},
	{ota.CodeInvalid, fieldParam}:              {http.StatusBadRequest, "InvalidParameter"},
	{ota.CodeInvalid, fieldAction}:             {http.StatusNotFound, "InvalidAction.NotFound"},
	{ota.CodeInvalid, fieldPage}:               {http.StatusOK, "iot.common.InvalidPageParams"},
	{ota.CodeInvalid, ""}:                      {http.StatusOK, "iot.check.InvalidFormattedParameter"},
	{ota.CodeUnauthenticated, fieldSignature}:  {http.StatusBadRequest, "SignatureDoesNotMatch"},
	{ota.CodeUnauthenticated, fieldIncomplete}: {http.StatusBadRequest, "IncompleteSignature"},
	{ota.CodeUnauthenticated, fieldAccessKey}:  {http.StatusNotFound, "InvalidAccessKeyId.NotFound"},
	{ota.CodeUnauthenticated, fieldNonce}:      {http.StatusBadRequest, "SignatureNonceUsed"},
	{ota.CodeUnauthenticated, fieldTimestamp}:  {http.StatusBadRequest, "InvalidTimeStamp.Expired"},
	{ota.CodeUnauthenticated, ""}:              {http.StatusBadRequest, "IncompleteSignature"},
	{ota.CodeForbidden, ""}:                    {http.StatusForbidden, "Forbidden"},
	{ota.CodeRateLimited, ""}:                  {http.StatusBadRequest, "Throttling"},
	{ota.CodeTooLarge, ""}:                     {http.StatusOK, "iot.check.ParameterTooLarge"},
	{ota.CodeUnsupported, ""}:                  {http.StatusOK, "iot.common.NotSupported"},
	{ota.CodeNotFound, ""}:                     {http.StatusOK, "iot.common.ResourceNotFound"},
	{ota.CodeConflict, ""}:                     {http.StatusOK, "iot.common.ResourceConflict"},
	{ota.CodeNotVerified, ""}:                  {http.StatusOK, "iot.ota.FirmwareNotVerified"},
	{ota.CodeSignMismatch, ""}:                 {http.StatusOK, "iot.ota.FirmwareSignNotMatch"},
	{ota.CodeUnavailable, ""}:                  {http.StatusServiceUnavailable, "ServiceUnavailable"},
	{ota.CodeInternal, ""}:                     {http.StatusOK, "iot.system.SystemException"},
}

func lookup(err error) wireError {
	code := ota.ErrorCode(err)
	if w, ok := errorTable[errorKey{code, ota.ErrorField(err)}]; ok {
		return w
	}
	if w, ok := errorTable[errorKey{code, ""}]; ok {
		return w
	}
	return errorTable[errorKey{ota.CodeInternal, ""}]
}

// gatewayBody is POP's error envelope (the SDKs raise it as an error).
type gatewayBody struct {
	RequestID string `json:"RequestId"`
	HostID    string `json:"HostId"`
	Code      string `json:"Code"`
	Message   string `json:"Message"`
	Recommend string `json:"Recommend"`
}

// envelope is the IoT result envelope every business answer carries.
type envelope struct {
	RequestID    string `json:"RequestId"`
	Success      bool   `json:"Success"`
	Code         string `json:"Code,omitempty"`
	ErrorMessage string `json:"ErrorMessage,omitempty"`
}

func message(err error) string {
	var oe *ota.Error
	switch c := ota.ErrorCode(err); {
	case c == ota.CodeInternal || !errors.As(err, &oe):
		return "An internal error occurred; try again later."
	case c == ota.CodeUnavailable:
		return "The service is temporarily unavailable: " + ota.ErrorMessage(err)
	}
	return ota.ErrorMessage(err)
}

// writeError answers err in Alibaba's shape for its kind.
func writeError(w http.ResponseWriter, requestID, host string, err error) {
	we := lookup(err)
	httpx.SetRetryAfter(w, err)
	w.Header().Set("Content-Type", "application/json;charset=utf-8")
	w.WriteHeader(we.status)
	var body any
	if we.status == http.StatusOK {
		body = envelope{RequestID: requestID, Success: false, Code: we.code, ErrorMessage: message(err)}
	} else {
		body = gatewayBody{RequestID: requestID, HostID: host, Code: we.code, Message: message(err),
			Recommend: "See internal/api/aliyuniot/README.md in Updraft for the supported operations and limits."}
	}
	_ = json.NewEncoder(w).Encode(body)
}
