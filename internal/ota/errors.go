// Package ota is Updraft's domain: tenants, products, devices, packages, jobs and
// tasks, their states and transitions, and every validation rule. It uses the
// standard library only and knows nothing of HTTP, SQL or MQTT; every front-end
// and store translates to and from these types.
package ota

import (
	"errors"
	"fmt"
	"time"
)

// Code classifies an Error. Each front-end has exactly one table mapping codes
// to its wire form (HTTP status and vendor envelope).
type Code string

const (
	CodeInvalid         Code = "invalid"         // the request breaks a documented rule
	CodeNotFound        Code = "not_found"       // the named thing does not exist (for this tenant)
	CodeConflict        Code = "conflict"        // it exists already, or its state forbids the change
	CodeUnauthenticated Code = "unauthenticated" // no or bad credentials / signature
	CodeForbidden       Code = "forbidden"       // authenticated, but not allowed
	CodeTooLarge        Code = "too_large"       // body or file over its limit
	CodeUnsupported     Code = "unsupported"     // valid, but not something Updraft does
	CodeNotVerified     Code = "not_verified"    // upgrade refused: the package must pass verification first
	CodeSignMismatch    Code = "sign_mismatch"   // the declared sign does not match the content
	CodeRateLimited     Code = "rate_limited"    // too many requests
	CodeUnavailable     Code = "unavailable"     // a dependency (store, blob, broker) is down
	CodeInternal        Code = "internal"        // a bug or unexpected failure
)

// Error is the one error type the domain and service return. Message is meant
// for the caller: it says what was wrong and, where possible, what to do.
// Field names the offending input in the native API's terms when there is one.
type Error struct {
	Code    Code
	Field   string
	Message string
	Err     error // underlying cause, never shown to callers
	// RetryAfter, when set on a rate_limited or unavailable error, is when
	// trying again makes sense; front-ends send it as Retry-After.
	RetryAfter time.Duration
}

func (e *Error) Error() string {
	if e.Err != nil {
		return fmt.Sprintf("%s: %s: %v", e.Code, e.Message, e.Err)
	}
	return fmt.Sprintf("%s: %s", e.Code, e.Message)
}

func (e *Error) Unwrap() error { return e.Err }

// Errorf builds an *Error with a formatted message.
func Errorf(code Code, format string, args ...any) *Error {
	return &Error{Code: code, Message: fmt.Sprintf(format, args...)}
}

// Invalid reports a rule broken by one input field.
func Invalid(field, format string, args ...any) *Error {
	return &Error{Code: CodeInvalid, Field: field, Message: fmt.Sprintf(format, args...)}
}

// NotFound reports a missing thing of the given kind ("product", "package", …).
func NotFound(kind, id string) *Error {
	return &Error{Code: CodeNotFound, Message: fmt.Sprintf("%s %q not found", kind, id)}
}

// Internal wraps an unexpected failure; the cause is logged, not shown.
func Internal(err error, what string) *Error {
	return &Error{Code: CodeInternal, Message: what, Err: err}
}

// ErrorCode returns the code of err, CodeInternal for a non-ota error and ""
// for nil.
func ErrorCode(err error) Code {
	if err == nil {
		return ""
	}
	var e *Error
	if errors.As(err, &e) {
		return e.Code
	}
	return CodeInternal
}

// ErrorMessage returns the caller-facing message of err.
func ErrorMessage(err error) string {
	var e *Error
	if errors.As(err, &e) {
		return e.Message
	}
	return "internal error"
}

// ErrorField returns the offending field of err, if any.
func ErrorField(err error) string {
	var e *Error
	if errors.As(err, &e) {
		return e.Field
	}
	return ""
}
