package client

import (
	"context"
	"net/http"
	"net/url"
)

// DeviceFilter narrows ListDevices. Zero fields do not filter.
type DeviceFilter struct {
	Groups   []string // in any of these groups
	Module   string   // the module Versions applies to (default "default")
	Versions []string // reporting any of these versions
	Page
}

// CreateDevice registers a device; the answer carries its secret.
func (c *Client) CreateDevice(ctx context.Context, product string, in DeviceCreate) (Device, error) {
	var out Device
	err := c.do(ctx, http.MethodPost, "/api/v1/products/"+escape(product)+"/devices", nil, in, &out)
	return out, err
}

// ListDevices lists a product's devices by name.
func (c *Client) ListDevices(ctx context.Context, product string, f DeviceFilter) (List[Device], error) {
	q := url.Values{}
	f.Page.set(q)
	q["group"] = f.Groups
	q["version"] = f.Versions
	if f.Module != "" {
		q.Set("module", f.Module)
	}
	var out List[Device]
	err := c.do(ctx, http.MethodGet, "/api/v1/products/"+escape(product)+"/devices", q, nil, &out)
	return out, err
}

// GetDevice returns one device (without its secret).
func (c *Client) GetDevice(ctx context.Context, product, name string) (Device, error) {
	var out Device
	err := c.do(ctx, http.MethodGet, "/api/v1/products/"+escape(product)+"/devices/"+escape(name), nil, nil, &out)
	return out, err
}

// SetDeviceGroups replaces a device's groups (none: an empty list) and
// returns the device.
func (c *Client) SetDeviceGroups(ctx context.Context, product, name string, groups []string) (Device, error) {
	if groups == nil {
		groups = []string{}
	}
	var out Device
	err := c.do(ctx, http.MethodPatch, "/api/v1/products/"+escape(product)+"/devices/"+escape(name), nil, DeviceUpdate{Groups: &groups}, &out)
	return out, err
}

// SetDeviceLabels replaces a device's attributes and/or tags and returns the
// device: a nil map leaves that one as it is, an empty map clears it.
func (c *Client) SetDeviceLabels(ctx context.Context, product, name string, attributes, tags map[string]string) (Device, error) {
	var in DeviceUpdate
	if attributes != nil {
		in.Attributes = &attributes
	}
	if tags != nil {
		in.Tags = &tags
	}
	var out Device
	err := c.do(ctx, http.MethodPatch, "/api/v1/products/"+escape(product)+"/devices/"+escape(name), nil, in, &out)
	return out, err
}

// DeleteDevice deletes a device; its unfinished tasks are canceled first.
func (c *Client) DeleteDevice(ctx context.Context, product, name string) error {
	return c.do(ctx, http.MethodDelete, "/api/v1/products/"+escape(product)+"/devices/"+escape(name), nil, nil, nil)
}
