package aliyuniot_test

import (
	"encoding/json"
	"io"
	"net/http"
	"strings"
	"testing"

	"github.com/updraft-ota/updraft/internal/api/aliyuniot"
)

// TestBodyLimit: a body of exactly MaxBodyBytes is read (and then fails its
// signature), one byte more is iot.check.ParameterTooLarge in the Alibaba
// envelope.
func TestBodyLimit(t *testing.T) {
	e := newEnv(t)
	post := func(n int) map[string]any {
		prefix := "Action=QueryOTAFirmware&Version=2018-01-20&pad="
		resp, err := http.Post("http://"+e.host+"/", "application/x-www-form-urlencoded", strings.NewReader(prefix+strings.Repeat("a", n-len(prefix))))
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		raw, _ := io.ReadAll(resp.Body)
		var m map[string]any
		if err := json.Unmarshal(raw, &m); err != nil || m["RequestId"] == nil {
			t.Fatalf("not the Alibaba envelope: %.300s", raw)
		}
		return m
	}
	if m := post(aliyuniot.MaxBodyBytes); m["Code"] == "iot.check.ParameterTooLarge" || m["Code"] == nil {
		t.Errorf("a body of exactly the limit: %v, want it read (then a signature error)", m)
	}
	if m := post(aliyuniot.MaxBodyBytes + 1); m["Code"] != "iot.check.ParameterTooLarge" {
		t.Errorf("one byte over: %v, want iot.check.ParameterTooLarge", m)
	}
}
