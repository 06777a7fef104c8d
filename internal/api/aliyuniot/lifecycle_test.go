package aliyuniot_test

import (
	"net/http"
	"strings"
	"testing"

	"github.com/aliyun/alibaba-cloud-sdk-go/sdk/requests"
	"github.com/aliyun/alibaba-cloud-sdk-go/services/iot"
)

// TestFirmwareLegacySDK: upload URL → upload → create → query → list →
// delete through alibaba-cloud-sdk-go, signed with RPC v1.
func TestFirmwareLegacySDK(t *testing.T) {
	e := newEnv(t)
	e.product("pkLegacy")
	c := e.legacy(e.ak, e.sk)
	file := []byte(strings.Repeat("legacy firmware ", 1000))

	gen := at(e, iot.CreateGenerateOTAUploadURLRequest())
	up, err := c.GenerateOTAUploadURL(gen)
	if err != nil || !up.Success {
		t.Fatalf("GenerateOTAUploadURL: %v %+v", err, up)
	}
	d := up.Data
	if status, body := upload(t, d.Host, d.Key, d.OSSAccessKeyId, d.Policy, d.Signature, file); status != http.StatusNoContent {
		t.Fatalf("upload: %d %s", status, body)
	}

	cr := at(e, iot.CreateCreateOTAFirmwareRequest())
	cr.FirmwareName, cr.DestVersion, cr.ProductKey = "fw-legacy", "2.0.0", "pkLegacy"
	cr.FirmwareUrl, cr.FirmwareSign, cr.FirmwareSize = d.FirmwareUrl, md5hex(file), requests.NewInteger(len(file))
	cr.NeedToVerify, cr.Udi, cr.FirmwareDesc = requests.NewBoolean(false), `{"k":"v"}`, "first"
	created, err := c.CreateOTAFirmware(cr)
	if err != nil || !created.Success || created.Data.FirmwareId == "" {
		t.Fatalf("CreateOTAFirmware: %v %+v", err, created)
	}
	id := created.Data.FirmwareId

	q := at(e, iot.CreateQueryOTAFirmwareRequest())
	q.FirmwareId = id
	got, err := c.QueryOTAFirmware(q)
	if err != nil || !got.Success {
		t.Fatalf("QueryOTAFirmware: %v %+v", err, got)
	}
	fi := got.FirmwareInfo
	if fi.FirmwareName != "fw-legacy" || fi.DestVersion != "2.0.0" || fi.FirmwareSize != len(file) || fi.FirmwareSign != md5hex(file) ||
		fi.SignMethod != "MD5" || fi.Status != -1 || fi.Udi != `{"k":"v"}` || fi.FirmwareDesc != "first" || fi.FirmwareUrl != d.FirmwareUrl {
		t.Fatalf("QueryOTAFirmware = %+v", fi)
	}

	l := at(e, iot.CreateListOTAFirmwareRequest())
	l.CurrentPage, l.PageSize = requests.NewInteger(1), requests.NewInteger(10)
	list, err := c.ListOTAFirmware(l)
	if err != nil || !list.Success || list.Total != 1 || len(list.FirmwareInfo.SimpleFirmwareInfo) != 1 ||
		list.FirmwareInfo.SimpleFirmwareInfo[0].FirmwareId != id {
		t.Fatalf("ListOTAFirmware: %v %+v", err, list)
	}

	del := at(e, iot.CreateDeleteOTAFirmwareRequest())
	del.FirmwareId = id
	if r, err := c.DeleteOTAFirmware(del); err != nil || !r.Success {
		t.Fatalf("DeleteOTAFirmware: %v %+v", err, r)
	}
	if r, err := c.QueryOTAFirmware(q); err != nil || r.Success || r.Code != "iot.common.ResourceNotFound" {
		t.Fatalf("QueryOTAFirmware after delete: %v %+v", err, r)
	}
}

// TestFirmwareTeaSDK runs the same through the Tea SDK in both signing modes.
func TestFirmwareTeaSDK(t *testing.T) {
	for _, alg := range []string{"", "v2"} {
		t.Run("alg="+alg, func(t *testing.T) {
			e := newEnv(t)
			e.product("pkTea")
			c := e.tea(alg, e.ak, e.sk)
			file := []byte("tea firmware " + alg)
			up := c.mustCall("GenerateOTAUploadURL", map[string]string{"FileSuffix": "zip"})
			d := up["Data"].(map[string]any)
			if status, body := upload(t, str(d["Host"]), str(d["Key"]), str(d["OSSAccessKeyId"]), str(d["Policy"]), str(d["Signature"]), file); status != http.StatusNoContent {
				t.Fatalf("upload: %d %s", status, body)
			}
			created := c.mustCall("CreateOTAFirmware", map[string]string{"FirmwareName": "fw(tea)_1", "DestVersion": "1.1",
				"ProductKey": "pkTea", "FirmwareUrl": str(d["FirmwareUrl"]), "Type": "1", "SrcVersion": "1.0",
				"SignMethod": "SHA256", "ModuleName": "default"})
			id := str(dig(created, "Data", "FirmwareId"))
			got := c.mustCall("QueryOTAFirmware", map[string]string{"FirmwareId": id})
			if str(dig(got, "FirmwareInfo", "Type")) != "1" || str(dig(got, "FirmwareInfo", "SrcVersion")) != "1.0" ||
				str(dig(got, "FirmwareInfo", "Status")) != "0" || str(dig(got, "FirmwareInfo", "SignMethod")) != "SHA256" {
				t.Fatalf("QueryOTAFirmware = %v", got)
			}
			list := c.mustCall("ListOTAFirmware", map[string]string{"CurrentPage": "1", "PageSize": "100", "ProductKey": "pkTea"})
			if str(list["Total"]) != "1" || str(list["PageCount"]) != "1" {
				t.Fatalf("ListOTAFirmware = %v", list)
			}
			c.mustCall("DeleteOTAFirmware", map[string]string{"FirmwareId": id})
		})
	}
}
