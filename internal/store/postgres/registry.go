package postgres

import (
	"context"
	"errors"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgtype"

	"github.com/updraft-ota/updraft/internal/ota"
	"github.com/updraft-ota/updraft/internal/store"
)

// Products and modules.

func (s *Store) CreateProduct(ctx context.Context, p ota.Product) error {
	_, err := s.exec(ctx, `INSERT INTO products (key, tenant_id, name, description, protocol, auth, created_at) VALUES ($1, $2, $3, $4, $5, $6, $7)`,
		p.Key, p.TenantID, p.Name, p.Description, string(p.Protocol), string(p.Auth), ts(p.CreatedAt))
	return conflictAs(translate(err, "create product"), "product key %q is already taken: product keys are unique across tenants", p.Key)
}

const productColumns = `key, tenant_id, name, description, protocol, auth, created_at`

func scanProduct(row pgx.Row) (ota.Product, error) {
	var p ota.Product
	var created pgtype.Timestamptz
	if err := row.Scan(&p.Key, &p.TenantID, &p.Name, &p.Description, &p.Protocol, &p.Auth, &created); err != nil {
		return ota.Product{}, err
	}
	p.CreatedAt = fromTS(created)
	return p, nil
}

func (s *Store) GetProduct(ctx context.Context, tenantID, key string) (ota.Product, error) {
	p, err := scanProduct(s.pool.QueryRow(ctx, `SELECT `+productColumns+` FROM products WHERE tenant_id = $1 AND key = $2`, tenantID, key))
	if err != nil {
		return ota.Product{}, notFoundAs(err, "get product", ota.NotFound("product", key))
	}
	return p, nil
}

func (s *Store) FindProduct(ctx context.Context, key string) (ota.Product, error) {
	p, err := scanProduct(s.pool.QueryRow(ctx, `SELECT `+productColumns+` FROM products WHERE key = $1`, key))
	if err != nil {
		return ota.Product{}, notFoundAs(err, "find product", ota.NotFound("product", key))
	}
	return p, nil
}

func (s *Store) ListProducts(ctx context.Context, tenantID string, page store.Page) ([]ota.Product, int64, error) {
	w := &where{}
	w.add("tenant_id = %s", tenantID)
	total, err := s.count(ctx, "products", w, "count products")
	if err != nil {
		return nil, 0, err
	}
	q := `SELECT ` + productColumns + ` FROM products` + w.String() +
		` ORDER BY name, key LIMIT ` + w.arg(limitOf(0, page)) + ` OFFSET ` + w.arg(page.Offset)
	list, err := queryAll(ctx, s, "list products", scanProduct, q, w.args...)
	return list, total, err
}

func (s *Store) CreateModule(ctx context.Context, m ota.Module) error {
	_, err := s.exec(ctx, `INSERT INTO modules (product_key, name, tenant_id, alias, description, created_at, id)
		VALUES ($1, $2, $3, $4, $5, $6, $7)`,
		m.ProductKey, m.Name, m.TenantID, m.Alias, m.Description, ts(m.CreatedAt), ota.ModuleID(m.ProductKey, m.Name))
	err = conflictAs(translate(err, "create module"), "product %q already has a module %q", m.ProductKey, m.Name)
	return notFoundRefAs(err, ota.NotFound("product", m.ProductKey))
}

const moduleColumns = `product_key, name, tenant_id, alias, description, created_at, id`

func scanModule(row pgx.Row) (ota.Module, error) {
	var m ota.Module
	var created pgtype.Timestamptz
	if err := row.Scan(&m.ProductKey, &m.Name, &m.TenantID, &m.Alias, &m.Description, &created, &m.ID); err != nil {
		return ota.Module{}, err
	}
	m.CreatedAt = fromTS(created)
	return m, nil
}

func (s *Store) GetModule(ctx context.Context, tenantID, productKey, name string) (ota.Module, error) {
	m, err := scanModule(s.pool.QueryRow(ctx, `SELECT `+moduleColumns+` FROM modules
		WHERE tenant_id = $1 AND product_key = $2 AND name = $3`, tenantID, productKey, name))
	if err != nil {
		return ota.Module{}, notFoundAs(err, "get module", ota.NotFound("module", name))
	}
	return m, nil
}

// FindModules lists modules by id, highest first.
func (s *Store) FindModules(ctx context.Context, f store.ModuleFilter, page store.Page) ([]ota.Module, int64, error) {
	w := &where{}
	w.add("tenant_id = %s", f.TenantID)
	if f.ProductKey != "" {
		w.add("product_key = %s", f.ProductKey)
	}
	if f.ID != "" {
		w.add("id = %s", f.ID)
	}
	total, err := s.count(ctx, "modules", w, "count modules")
	if err != nil {
		return nil, 0, err
	}
	if page.BeforeID != "" {
		w.add("id < %s", page.BeforeID)
	}
	q := `SELECT ` + moduleColumns + ` FROM modules` + w.String() +
		` ORDER BY id DESC LIMIT ` + w.arg(limitOf(0, page)) + ` OFFSET ` + w.arg(page.Offset)
	list, err := queryAll(ctx, s, "list modules", scanModule, q, w.args...)
	return list, total, err
}

func (s *Store) ListModules(ctx context.Context, tenantID, productKey string, page store.Page) ([]ota.Module, int64, error) {
	w := &where{}
	w.add("tenant_id = %s", tenantID)
	w.add("product_key = %s", productKey)
	total, err := s.count(ctx, "modules", w, "count modules")
	if err != nil {
		return nil, 0, err
	}
	q := `SELECT ` + moduleColumns + ` FROM modules` + w.String() +
		` ORDER BY name LIMIT ` + w.arg(limitOf(0, page)) + ` OFFSET ` + w.arg(page.Offset)
	list, err := queryAll(ctx, s, "list modules", scanModule, q, w.args...)
	return list, total, err
}

func (s *Store) UpdateModule(ctx context.Context, m ota.Module) error {
	return s.execOne(ctx, ota.NotFound("module", m.Name), "update module",
		`UPDATE modules SET alias = $4, description = $5 WHERE tenant_id = $1 AND product_key = $2 AND name = $3`,
		m.TenantID, m.ProductKey, m.Name, m.Alias, m.Description)
}

func (s *Store) DeleteModule(ctx context.Context, tenantID, productKey, name string) error {
	return s.execOne(ctx, ota.NotFound("module", name), "delete module",
		`DELETE FROM modules WHERE tenant_id = $1 AND product_key = $2 AND name = $3`, tenantID, productKey, name)
}

// queryAll runs a query and scans every row with scan.
func queryAll[T any](ctx context.Context, s *Store, what string, scan func(pgx.Row) (T, error), sql string, args ...any) ([]T, error) {
	rows, err := s.pool.Query(ctx, sql, args...)
	if err != nil {
		return nil, translate(err, what)
	}
	defer rows.Close()
	var out []T
	for rows.Next() {
		v, err := scan(rows)
		if err != nil {
			return nil, translate(err, what)
		}
		out = append(out, v)
	}
	if err := rows.Err(); err != nil {
		return nil, translate(err, what)
	}
	return out, nil
}

// conflictAs replaces the message of a conflict with one naming the thing.
func conflictAs(err error, format string, args ...any) error {
	if ota.ErrorCode(err) != ota.CodeConflict {
		return err
	}
	e := ota.Errorf(ota.CodeConflict, format, args...)
	e.Err = errors.Unwrap(err)
	return e
}

// notFoundRefAs replaces a foreign key's CodeNotFound with nf, which names
// the missing thing.
func notFoundRefAs(err error, nf *ota.Error) error {
	if ota.ErrorCode(err) != ota.CodeNotFound {
		return err
	}
	nf.Err = errors.Unwrap(err)
	return nf
}

// notFoundAs returns nf for "no rows" and the translated error otherwise.
func notFoundAs(err error, what string, nf *ota.Error) error {
	if errors.Is(err, pgx.ErrNoRows) {
		return nf
	}
	return translate(err, what)
}
