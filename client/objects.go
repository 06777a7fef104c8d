package client

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"strings"
)

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
