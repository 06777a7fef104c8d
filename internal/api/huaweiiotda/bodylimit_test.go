package huaweiiotda_test

import (
	"encoding/json"
	"io"
	"net/http"
	"strings"
	"testing"

	"github.com/updraft-ota/updraft/internal/api/huaweiiotda"
)

// TestBodyLimit: a body of exactly MaxBodyBytes is read (this one then fails
// its signature: it is unsigned), one byte more is refused before anything
// else with IOTDA.000006 in the Huawei envelope.
func TestBodyLimit(t *testing.T) {
	e := newEnv(t)
	post := func(n int) (int, map[string]string) {
		body := `{"app_id":"x"}` + strings.Repeat(" ", n-len(`{"app_id":"x"}`))
		resp, err := http.Post(e.srv.URL()+"/v5/iot/"+e.project+"/ota-upgrades/packages", "application/json", strings.NewReader(body))
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		raw, _ := io.ReadAll(resp.Body)
		var m map[string]string
		if err := json.Unmarshal(raw, &m); err != nil {
			t.Fatalf("not the Huawei envelope: %s", raw)
		}
		return resp.StatusCode, m
	}
	status, m := post(huaweiiotda.MaxBodyBytes)
	if status != 401 || m["error_code"] == "IOTDA.000006" {
		t.Errorf("a body of exactly the limit: %d %v, want it read (then 401 for the missing signature)", status, m)
	}
	status, m = post(huaweiiotda.MaxBodyBytes + 1)
	if status != 400 || m["error_code"] != "IOTDA.000006" || !strings.Contains(m["error_msg"], "8 MiB") {
		t.Errorf("one byte over: %d %v, want 400 IOTDA.000006", status, m)
	}
}
