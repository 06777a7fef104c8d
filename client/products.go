package client

import (
	"context"
	"net/http"
	"net/url"
)

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
