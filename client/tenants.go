package client

import (
	"context"
	"net/http"
	"net/url"

	"github.com/updraft-ota/updraft/apiv1"
)

// CreateTenant adds a tenant (operator admin keys only).
func (c *Client) CreateTenant(ctx context.Context, in TenantCreate) (Tenant, error) {
	var out Tenant
	err := c.do(ctx, http.MethodPost, "/api/v1/tenants", nil, in, &out)
	return out, err
}

// ListTenants lists every tenant (operator admin keys only).
func (c *Client) ListTenants(ctx context.Context, page Page) (List[Tenant], error) {
	q := url.Values{}
	page.set(q)
	var out List[Tenant]
	err := c.do(ctx, http.MethodGet, "/api/v1/tenants", q, nil, &out)
	return out, err
}

// GetTenant returns a tenant ("" is not allowed: name it).
func (c *Client) GetTenant(ctx context.Context, id string) (Tenant, error) {
	var out Tenant
	err := c.do(ctx, http.MethodGet, "/api/v1/tenants/"+escape(id), nil, nil, &out)
	return out, err
}

// SetQuota replaces a tenant's quota.
func (c *Client) SetQuota(ctx context.Context, tenant string, q Quota) (Tenant, error) {
	var out Tenant
	err := c.do(ctx, http.MethodPut, "/api/v1/tenants/"+escape(tenant)+"/quota", nil, q, &out)
	return out, err
}

// DeleteTenant removes a tenant that owns nothing, with its keys.
func (c *Client) DeleteTenant(ctx context.Context, id string) error {
	return c.do(ctx, http.MethodDelete, "/api/v1/tenants/"+escape(id), nil, nil, nil)
}

func tenantQuery(tenant string) url.Values {
	if tenant == "" {
		return nil
	}
	return url.Values{"tenant": {tenant}}
}

// CreateKey makes an access key for tenant ("" = the caller's) with role
// (admin, operator or readonly; "" = operator). The answer holds the secret:
// the only time it is shown.
func (c *Client) CreateKey(ctx context.Context, tenant, role string) (AccessKey, error) {
	var out AccessKey
	err := c.do(ctx, http.MethodPost, "/api/v1/keys", tenantQuery(tenant), apiv1.AccessKeyCreate{Role: role}, &out)
	return out, err
}

// ListKeys lists a tenant's keys, without secrets.
func (c *Client) ListKeys(ctx context.Context, tenant string) ([]AccessKey, error) {
	var out List[AccessKey]
	err := c.do(ctx, http.MethodGet, "/api/v1/keys", tenantQuery(tenant), nil, &out)
	return out.Items, err
}

// RevokeKey deletes an access key; it stops working at once.
func (c *Client) RevokeKey(ctx context.Context, tenant, id string) error {
	return c.do(ctx, http.MethodDelete, "/api/v1/keys/"+escape(id), tenantQuery(tenant), nil, nil)
}
