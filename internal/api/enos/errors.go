package enos

import (
	"errors"

	"github.com/updraft-ota/updraft/internal/ota"
)

// Operations whose failures EnOS reports with their own codes (spec §3.7,
// seed 002). An error raised while serving one of them is looked up with the
// operation first, then without.
const (
	opAny            = ""
	opFirmware       = "firmware"        // get/search/create of a firmware
	opFirmwareDelete = "firmware.delete" // 24604
	opJob            = "job"             // anything naming a job or its firmware
	opJobStart       = "job.start"       // 24615
	opJobCreate      = "job.create"      // 24610, 24612
	opTaskCancel     = "task.cancel"     // 24617, 24620
	opTaskRetry      = "task.retry"      // 24617, 24621
	opToken          = "token"           // the apim token service (1001–1204)
)

// EnOS codes used by the dialect itself.
const (
	codeOK              = 0
	codeInvalid         = 99400
	codeDenied          = 99403
	codeNotFound        = 99404
	codeInternal        = 99500
	codeOTAInternal     = 24500
	codeOTANotFound     = 24404
	codeCannotDelete    = 24604
	codeNotVerified     = 24610
	codeVerifyTotal     = 24611
	codeVerifyTooMany   = 24612
	codeJobStarted      = 24615
	codeJobNotRunning   = 24617
	codeTaskNotCancel   = 24620
	codeTaskNotRetry    = 24621
	codeTokenReplay     = 1001
	codeTokenUnknownKey = 1002
	codeTokenBadProof   = 1003
	codeTokenInvalid    = 1004
	codeTokenInternal   = 1005
	codeTokenEmpty      = 1202
	codeTokenExpired    = 1203
	codeTokenRefresh    = 1204
)

type errorKey struct {
	code ota.Code
	op   string
}

// errorTable is the one mapping from ota codes to EnOS codes.
var errorTable = map[errorKey]int{
	{ota.CodeInvalid, opAny}:             codeInvalid,
	{ota.CodeTooLarge, opAny}:            codeInvalid,
	{ota.CodeSignMismatch, opAny}:        codeInvalid,
	{ota.CodeUnsupported, opAny}:         codeInvalid,
	{ota.CodeUnauthenticated, opAny}:     codeDenied,
	{ota.CodeForbidden, opAny}:           codeDenied,
	{ota.CodeRateLimited, opAny}:         codeDenied,
	{ota.CodeNotFound, opAny}:            codeNotFound,
	{ota.CodeNotFound, opFirmware}:       codeOTANotFound,
	{ota.CodeNotFound, opFirmwareDelete}: codeOTANotFound,
	{ota.CodeNotFound, opJob}:            codeOTANotFound,
	{ota.CodeNotFound, opJobStart}:       codeOTANotFound,
	{ota.CodeNotFound, opJobCreate}:      codeOTANotFound,
	{ota.CodeNotFound, opTaskCancel}:     codeOTANotFound,
	{ota.CodeNotFound, opTaskRetry}:      codeOTANotFound,
	{ota.CodeConflict, opAny}:            codeInvalid,
	{ota.CodeConflict, opFirmwareDelete}: codeCannotDelete,
	{ota.CodeConflict, opJobStart}:       codeJobStarted,
	{ota.CodeConflict, opTaskCancel}:     codeTaskNotCancel,
	{ota.CodeConflict, opTaskRetry}:      codeTaskNotRetry,
	{ota.CodeNotVerified, opAny}:         codeNotVerified,
	{ota.CodeUnavailable, opAny}:         codeOTAInternal,
	{ota.CodeInternal, opAny}:            codeInternal,
	{ota.CodeUnauthenticated, opToken}:   codeTokenBadProof,
	{ota.CodeInvalid, opToken}:           codeTokenInvalid,
	{ota.CodeConflict, opToken}:          codeTokenReplay,
	{ota.CodeInternal, opToken}:          codeTokenInternal,
	{ota.CodeUnavailable, opToken}:       codeTokenInternal,
}

// wireError is an error that already carries its EnOS code (token-service
// and signature failures, whose codes depend on which check failed).
type wireError struct {
	code int
	msg  string
}

func (e *wireError) Error() string { return e.msg }

func wireErr(code int, msg string) error { return &wireError{code, msg} }

// toWire maps err to an EnOS code and message for op.
func toWire(err error, op string) (int, string) {
	var we *wireError
	if errors.As(err, &we) {
		return we.code, we.msg
	}
	code := ota.ErrorCode(err)
	c, ok := errorTable[errorKey{code, op}]
	if !ok {
		c, ok = errorTable[errorKey{code, opAny}]
	}
	if !ok {
		c = codeInternal
	}
	msg := ota.ErrorMessage(err)
	var oe *ota.Error
	if code == ota.CodeInternal || code == ota.CodeUnavailable || !errors.As(err, &oe) {
		msg = "Internal error: retry later"
	}
	return c, msg
}
