package enos_test

import (
	"encoding/json"
	"io"
	"net/http"
	"strings"
	"testing"

	"github.com/updraft-ota/updraft/internal/api/enos"
)

// TestBodyLimit: a JSON body of exactly MaxBodyBytes is read (and then fails
// for its missing token), one byte more is 99400 in the EnOS envelope.
func TestBodyLimit(t *testing.T) {
	e := newEnv(t)
	post := func(n int) map[string]any {
		body := `{}` + strings.Repeat(" ", n-2)
		resp, err := http.Post(e.url+enos.APIPrefix+"ota-firmwares?action=search&orgId="+e.org, "application/json", strings.NewReader(body))
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		raw, _ := io.ReadAll(resp.Body)
		var m map[string]any
		if err := json.Unmarshal(raw, &m); err != nil || m["code"] == nil {
			t.Fatalf("not the EnOS envelope: %.300s", raw)
		}
		return m
	}
	if m := post(enos.MaxBodyBytes); m["code"] == float64(99400) {
		t.Errorf("a body of exactly the limit: %v, want it read (then a token error)", m)
	}
	if m := post(enos.MaxBodyBytes + 1); m["code"] != float64(99400) || !strings.Contains(m["msg"].(string), "1 MiB") {
		t.Errorf("one byte over: %v, want 99400 naming the limit", m)
	}
}
