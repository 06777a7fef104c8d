package client

import (
	"context"
	"net/http"
	"net/url"
	"time"
)

// ProductCreate is a new product.
type ProductCreate struct {
	Key         string `json:"key"`
	Name        string `json:"name"`
	Description string `json:"description,omitempty"`
	// Protocol is the device protocol its devices speak: native (default),
	// huawei, alibaba or enos. Auth is secret (default) or x509.
	Protocol string `json:"protocol,omitempty"`
	Auth     string `json:"auth,omitempty"`
}

// Product is a device model.
type Product struct {
	Key         string    `json:"key"`
	Name        string    `json:"name"`
	Description string    `json:"description"`
	Protocol    string    `json:"protocol"`
	Auth        string    `json:"auth"`
	CreatedAt   time.Time `json:"created_at"`
}

// ModuleCreate is a new custom module.
type ModuleCreate struct {
	Name        string `json:"module_name"`
	Alias       string `json:"alias_name,omitempty"`
	Description string `json:"description,omitempty"`
}

// ModuleUpdate changes the fields that are not nil.
type ModuleUpdate struct {
	Alias       *string `json:"alias_name,omitempty"`
	Description *string `json:"description,omitempty"`
}

// Module is an independently versioned part of a product's devices.
type Module struct {
	Product     string    `json:"product"`
	Name        string    `json:"module_name"`
	Alias       string    `json:"alias_name"`
	Description string    `json:"description"`
	CreatedAt   time.Time `json:"created_at"`
}

// CreateProduct registers a product.
func (c *Client) CreateProduct(ctx context.Context, in ProductCreate) (Product, error) {
	var out Product
	err := c.do(ctx, http.MethodPost, "/api/v1/products", nil, in, &out)
	return out, err
}

// ListProducts lists products by key.
func (c *Client) ListProducts(ctx context.Context, page Page) (List[Product], error) {
	q := url.Values{}
	page.set(q)
	var out List[Product]
	err := c.do(ctx, http.MethodGet, "/api/v1/products", q, nil, &out)
	return out, err
}

// GetProduct returns one product.
func (c *Client) GetProduct(ctx context.Context, key string) (Product, error) {
	var out Product
	err := c.do(ctx, http.MethodGet, "/api/v1/products/"+escape(key), nil, nil, &out)
	return out, err
}

// CreateModule adds a custom module to a product.
func (c *Client) CreateModule(ctx context.Context, product string, in ModuleCreate) (Module, error) {
	var out Module
	err := c.do(ctx, http.MethodPost, "/api/v1/products/"+escape(product)+"/modules", nil, in, &out)
	return out, err
}

// ListModules lists a product's custom modules.
func (c *Client) ListModules(ctx context.Context, product string, page Page) (List[Module], error) {
	q := url.Values{}
	page.set(q)
	var out List[Module]
	err := c.do(ctx, http.MethodGet, "/api/v1/products/"+escape(product)+"/modules", q, nil, &out)
	return out, err
}

// GetModule returns a module ("default" always exists).
func (c *Client) GetModule(ctx context.Context, product, name string) (Module, error) {
	var out Module
	err := c.do(ctx, http.MethodGet, "/api/v1/products/"+escape(product)+"/modules/"+escape(name), nil, nil, &out)
	return out, err
}

// UpdateModule changes a module's alias or description.
func (c *Client) UpdateModule(ctx context.Context, product, name string, in ModuleUpdate) (Module, error) {
	var out Module
	err := c.do(ctx, http.MethodPatch, "/api/v1/products/"+escape(product)+"/modules/"+escape(name), nil, in, &out)
	return out, err
}

// DeleteModule removes a custom module no package uses.
func (c *Client) DeleteModule(ctx context.Context, product, name string) error {
	return c.do(ctx, http.MethodDelete, "/api/v1/products/"+escape(product)+"/modules/"+escape(name), nil, nil, nil)
}

// DeleteProduct deletes a product with its modules, devices, packages and
// finished jobs; refused (conflict) while one of its jobs is unfinished.
func (c *Client) DeleteProduct(ctx context.Context, key string) error {
	return c.do(ctx, http.MethodDelete, "/api/v1/products/"+escape(key), nil, nil, nil)
}
