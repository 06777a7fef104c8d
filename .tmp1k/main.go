// Throwaway (not committed): one static job through the Alibaba API (legacy SDK), timed to 1 000 SUCCEEDED.
package main

import (
	"bytes"
	"crypto/md5"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"mime/multipart"
	"net/http"
	"net/url"
	"os"
	"time"

	"github.com/aliyun/alibaba-cloud-sdk-go/sdk/requests"
	"github.com/aliyun/alibaba-cloud-sdk-go/services/iot"
)

func main() {
	var creds struct {
		URL, AccessKeyID, SecretAccessKey string
	}
	b, _ := os.ReadFile(os.Args[1])
	json.Unmarshal(b, &creds)
	var raw map[string]any
	json.Unmarshal(b, &raw)
	srv := fmt.Sprint(raw["server"])
	if srv == "" || srv == "<nil>" {
		srv = fmt.Sprint(raw["url"])
	}
	u, _ := url.Parse(srv)
	ak, sk := fmt.Sprint(raw["access_key_id"]), fmt.Sprint(raw["secret_access_key"])
	c, err := iot.NewClientWithAccessKey("cn-shanghai", ak, sk)
	must(err)
	at := func(r interface{ SetScheme(string); SetDomain(string) }) { r.SetScheme("HTTP"); r.SetDomain(u.Host) }
	g := iot.CreateGenerateOTAUploadURLRequest(); at(g)
	gr, err := c.GenerateOTAUploadURL(g)
	must(err)
	file := bytes.Repeat([]byte("alink 1k fleet "), 64*1024/15)
	var buf bytes.Buffer
	mw := multipart.NewWriter(&buf)
	for _, f := range [][2]string{{"key", gr.Data.Key}, {"OSSAccessKeyId", gr.Data.OSSAccessKeyId}, {"policy", gr.Data.Policy}, {"Signature", gr.Data.Signature}, {"success_action_status", "204"}} {
		mw.WriteField(f[0], f[1])
	}
	fw, _ := mw.CreateFormFile("file", "fw.bin")
	fw.Write(file)
	mw.Close()
	resp, err := http.Post(gr.Data.Host, mw.FormDataContentType(), &buf)
	must(err)
	resp.Body.Close()
	sum := md5.Sum(file)
	cr := iot.CreateCreateOTAFirmwareRequest(); at(cr)
	cr.FirmwareName, cr.DestVersion, cr.ProductKey, cr.FirmwareUrl, cr.FirmwareSign, cr.NeedToVerify = "fw-1k", "2.0", os.Args[2], gr.Data.FirmwareUrl, hex.EncodeToString(sum[:]), requests.NewBoolean(false)
	crr, err := c.CreateOTAFirmware(cr)
	must(err)
	if !crr.Success {
		panic(crr.ErrorMessage)
	}
	start := time.Now()
	j := iot.CreateCreateOTAStaticUpgradeJobRequest(); at(j)
	j.FirmwareId, j.ProductKey, j.TargetSelection = crr.Data.FirmwareId, os.Args[2], "ALL"
	jr, err := c.CreateOTAStaticUpgradeJob(j)
	must(err)
	if !jr.Success {
		panic(jr.ErrorMessage)
	}
	fmt.Println("job", jr.Data.JobId, "created; firmware bytes", len(file))
	for {
		l := iot.CreateListOTATaskByJobRequest(); at(l)
		l.JobId, l.TaskStatus, l.PageSize = jr.Data.JobId, "SUCCEEDED", requests.NewInteger(1)
		lr, err := c.ListOTATaskByJob(l)
		must(err)
		if lr.Total >= 1000 {
			fmt.Printf("1000 SUCCEEDED %.1f s after CreateOTAStaticUpgradeJob\n", time.Since(start).Seconds())
			return
		}
		time.Sleep(200 * time.Millisecond)
	}
}

func must(err error) {
	if err != nil {
		panic(err)
	}
}
