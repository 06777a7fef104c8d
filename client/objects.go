package client

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"strings"
	"time"
)

// Object is a file stored by bucket and key (PutObject), ready to be
// registered as a package by reference, e.g. with Huawei IoTDA's
// CreateOtaPackage (file_location.obs_location).
type Object struct {
	Bucket  string    `json:"bucket"`
	Key     string    `json:"key"`
	Size    int64     `json:"size"`
	SHA256  string    `json:"sha256"`
	MD5     string    `json:"md5"`
	ETag    string    `json:"etag,omitempty"`
	ModTime time.Time `json:"mod_time"`
}

// PutObject streams body into bucket/key (PUT /api/v1/objects/{bucket}/{key}).
// size is the body's length, or -1 if unknown (the body is then sent
// chunked). The key may contain "/" (folders). OnProgress reports bytes sent.
func (c *Client) PutObject(ctx context.Context, bucket, key string, body io.Reader, size int64, opts ...UploadOption) (Object, error) {
	var cfg uploadConfig
	for _, o := range opts {
		o(&cfg)
	}
	if cfg.progress != nil {
		body = &progressReader{r: body, fn: cfg.progress}
	}
	if strings.HasPrefix(key, "/") {
		return Object{}, fmt.Errorf("client: object key %q must not start with \"/\"", key)
	}
	req, err := c.newRequest(ctx, http.MethodPut, "/api/v1/objects/"+escape(bucket)+"/"+escapeKey(key), nil, io.NopCloser(body))
	if err != nil {
		return Object{}, err
	}
	req.Header.Set("Content-Type", "application/octet-stream")
	if size >= 0 {
		req.ContentLength = size
	}
	resp, err := c.http.Do(req)
	if err != nil {
		return Object{}, err
	}
	defer resp.Body.Close()
	var out Object
	err = decodeResponse(resp, &out)
	return out, err
}
