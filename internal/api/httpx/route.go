package httpx

import (
	"context"
	"net/http"
)

// The server's metrics and request log label each request by its route
// (the pattern that served it, never the raw path, so the label set stays
// bounded). The outer mux only knows the mount point (/api/v1/, /v5/iot/);
// the front-end that dispatches further records the route it chose here.

type routeKey struct{}

// WithRouteSlot returns r carrying an empty route slot, and the slot: what
// the handlers below record is read from it after they return.
func WithRouteSlot(r *http.Request) (*http.Request, *string) {
	slot := new(string)
	return r.WithContext(context.WithValue(r.Context(), routeKey{}, slot)), slot
}

// RecordRoute names the route that serves r: a pattern or an operation
// name from a fixed set (an unknown one must not be recorded). It does
// nothing when no slot is there (a handler used outside the server).
func RecordRoute(r *http.Request, route string) {
	if slot, ok := r.Context().Value(routeKey{}).(*string); ok {
		*slot = route
	}
}
