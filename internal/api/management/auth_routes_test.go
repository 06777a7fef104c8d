package management

import (
	"net/http"
	"net/http/httptest"
	"regexp"
	"strings"
	"testing"
)

// TestEveryRouteNeedsCredentials walks the route table: every route but the
// OpenAPI document answers 401 without credentials, before its handler runs
// (the API here has no service, so a handler that ran would panic).
func TestEveryRouteNeedsCredentials(t *testing.T) {
	a := newAPI(nil, Options{})
	h := a.handler()
	if len(a.routes) == 0 {
		t.Fatal("no routes registered")
	}
	wildcard := regexp.MustCompile(`\{[^}]+\}`)
	public := 0
	for _, pattern := range a.routes {
		method, path, _ := strings.Cut(pattern, " ")
		path = wildcard.ReplaceAllString(path, "x1")
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, httptest.NewRequest(method, path, strings.NewReader("{}")))
		if pattern == "GET /api/v1/openapi.json" {
			public++
			if rec.Code != http.StatusOK {
				t.Errorf("%s: status %d, want 200 without credentials", pattern, rec.Code)
			}
			continue
		}
		if rec.Code != http.StatusUnauthorized || !strings.Contains(rec.Body.String(), `"code":"unauthenticated"`) {
			t.Errorf("%s (%s %s) without credentials: status %d, want 401: %s", pattern, method, path, rec.Code, rec.Body)
		}
	}
	if public != 1 {
		t.Errorf("the OpenAPI document route was seen %d times, want 1", public)
	}
}
