package sqlite

import (
	"context"
	"database/sql"

	"github.com/updraft-ota/updraft/internal/ota"
	"github.com/updraft-ota/updraft/internal/store"
	"github.com/updraft-ota/updraft/internal/store/sqlcommon"
)

// CreateProduct adds a product; CodeConflict if the key exists in any tenant.
func (s *Store) CreateProduct(ctx context.Context, p ota.Product) error {
	_, err := s.exec(ctx,
		"INSERT INTO products (key, tenant_id, name, description, protocol, auth, created_at) VALUES (?, ?, ?, ?, ?, ?, ?)",
		p.Key, p.TenantID, p.Name, p.Description, string(p.Protocol), string(p.Auth), dbTime(p.CreatedAt))
	if ota.ErrorCode(dbError(err, "")) == ota.CodeConflict {
		return ota.Errorf(ota.CodeConflict, "product key %q is already taken: choose another key", p.Key)
	}
	return dbError(err, "create product "+p.Key)
}

const productCols = "tenant_id, key, name, description, protocol, auth, created_at"

func scanProduct(r rowScanner) (ota.Product, error) {
	var p ota.Product
	var created sql.NullInt64
	if err := r.Scan(&p.TenantID, &p.Key, &p.Name, &p.Description, &p.Protocol, &p.Auth, &created); err != nil {
		return ota.Product{}, err
	}
	p.CreatedAt = goTime(created)
	return p, nil
}

func (s *Store) GetProduct(ctx context.Context, tenantID, key string) (ota.Product, error) {
	p, err := scanProduct(s.read.QueryRowContext(ctx,
		"SELECT "+productCols+" FROM products WHERE key = ? AND tenant_id = ?", key, tenantID))
	if err == sql.ErrNoRows {
		return ota.Product{}, ota.NotFound("product", key)
	}
	return p, dbError(err, "get product "+key)
}

func (s *Store) FindProduct(ctx context.Context, key string) (ota.Product, error) {
	p, err := scanProduct(s.read.QueryRowContext(ctx, "SELECT "+productCols+" FROM products WHERE key = ?", key))
	if err == sql.ErrNoRows {
		return ota.Product{}, ota.NotFound("product", key)
	}
	return p, dbError(err, "find product "+key)
}

func (s *Store) ListProducts(ctx context.Context, tenantID string, page store.Page) ([]ota.Product, int64, error) {
	var total int64
	if err := s.read.QueryRowContext(ctx, "SELECT count(*) FROM products WHERE tenant_id = ?", tenantID).Scan(&total); err != nil {
		return nil, 0, dbError(err, "count products")
	}
	rows, err := s.read.QueryContext(ctx, "SELECT "+productCols+" FROM products WHERE tenant_id = ? ORDER BY name, key LIMIT ? OFFSET ?",
		tenantID, sqlcommon.Limit(page.Limit, 0), page.Offset)
	if err != nil {
		return nil, 0, dbError(err, "list products")
	}
	out, err := collect(rows, scanProduct)
	return out, total, dbError(err, "list products")
}

// CreateModule adds a custom module; CodeConflict if (product, name) exists,
// CodeNotFound if the product does not.
func (s *Store) CreateModule(ctx context.Context, m ota.Module) error {
	_, err := s.exec(ctx,
		"INSERT INTO modules (product_key, name, tenant_id, alias, description, created_at, id) VALUES (?, ?, ?, ?, ?, ?, ?)",
		m.ProductKey, m.Name, m.TenantID, m.Alias, m.Description, dbTime(m.CreatedAt), ota.ModuleID(m.ProductKey, m.Name))
	switch ota.ErrorCode(dbError(err, "")) {
	case ota.CodeConflict:
		return ota.Errorf(ota.CodeConflict, "module %q of product %q already exists", m.Name, m.ProductKey)
	case ota.CodeNotFound:
		return ota.NotFound("product", m.ProductKey)
	}
	return dbError(err, "create module "+m.Name)
}

const moduleCols = "tenant_id, product_key, name, alias, description, created_at, id"

func scanModule(r rowScanner) (ota.Module, error) {
	var m ota.Module
	var created sql.NullInt64
	if err := r.Scan(&m.TenantID, &m.ProductKey, &m.Name, &m.Alias, &m.Description, &created, &m.ID); err != nil {
		return ota.Module{}, err
	}
	m.CreatedAt = goTime(created)
	return m, nil
}

func (s *Store) GetModule(ctx context.Context, tenantID, productKey, name string) (ota.Module, error) {
	m, err := scanModule(s.read.QueryRowContext(ctx,
		"SELECT "+moduleCols+" FROM modules WHERE product_key = ? AND name = ? AND tenant_id = ?", productKey, name, tenantID))
	if err == sql.ErrNoRows {
		return ota.Module{}, ota.NotFound("module", name)
	}
	return m, dbError(err, "get module "+name)
}

// FindModules lists modules by id, highest first.
func (s *Store) FindModules(ctx context.Context, f store.ModuleFilter, page store.Page) ([]ota.Module, int64, error) {
	var w where
	w.add("tenant_id = ?", f.TenantID)
	if f.ProductKey != "" {
		w.add("product_key = ?", f.ProductKey)
	}
	if f.ID != "" {
		w.add("id = ?", f.ID)
	}
	var total int64
	if err := s.read.QueryRowContext(ctx, "SELECT count(*) FROM modules"+w.String(), w.args...).Scan(&total); err != nil {
		return nil, 0, dbError(err, "count modules")
	}
	if page.BeforeID != "" {
		w.add("id < ?", page.BeforeID)
	}
	rows, err := s.read.QueryContext(ctx, "SELECT "+moduleCols+" FROM modules"+w.String()+" ORDER BY id DESC LIMIT ? OFFSET ?",
		append(w.args, sqlcommon.Limit(page.Limit, 0), page.Offset)...)
	if err != nil {
		return nil, 0, dbError(err, "list modules")
	}
	out, err := collect(rows, scanModule)
	return out, total, dbError(err, "list modules")
}

func (s *Store) ListModules(ctx context.Context, tenantID, productKey string, page store.Page) ([]ota.Module, int64, error) {
	var total int64
	if err := s.read.QueryRowContext(ctx, "SELECT count(*) FROM modules WHERE product_key = ? AND tenant_id = ?",
		productKey, tenantID).Scan(&total); err != nil {
		return nil, 0, dbError(err, "count modules")
	}
	rows, err := s.read.QueryContext(ctx, "SELECT "+moduleCols+
		" FROM modules WHERE product_key = ? AND tenant_id = ? ORDER BY name LIMIT ? OFFSET ?",
		productKey, tenantID, sqlcommon.Limit(page.Limit, 0), page.Offset)
	if err != nil {
		return nil, 0, dbError(err, "list modules")
	}
	out, err := collect(rows, scanModule)
	return out, total, dbError(err, "list modules")
}

// UpdateModule writes the alias and description.
func (s *Store) UpdateModule(ctx context.Context, m ota.Module) error {
	res, err := s.exec(ctx,
		"UPDATE modules SET alias = ?, description = ? WHERE product_key = ? AND name = ? AND tenant_id = ?",
		m.Alias, m.Description, m.ProductKey, m.Name, m.TenantID)
	return affectedOne(res, err, "update module "+m.Name, ota.NotFound("module", m.Name))
}

func (s *Store) DeleteModule(ctx context.Context, tenantID, productKey, name string) error {
	res, err := s.exec(ctx, "DELETE FROM modules WHERE product_key = ? AND name = ? AND tenant_id = ?",
		productKey, name, tenantID)
	return affectedOne(res, err, "delete module "+name, ota.NotFound("module", name))
}

// affectedOne turns an exec that changed no row into notFound.
func affectedOne(res sql.Result, err error, what string, notFound error) error {
	if err != nil {
		return dbError(err, what)
	}
	n, err := res.RowsAffected()
	if err != nil {
		return dbError(err, what)
	}
	if n == 0 {
		return notFound
	}
	return nil
}

// collect scans every row with scan and closes rows.
func collect[T any](rows *sql.Rows, scan func(rowScanner) (T, error)) ([]T, error) {
	defer rows.Close()
	var out []T
	for rows.Next() {
		v, err := scan(rows)
		if err != nil {
			return nil, err
		}
		out = append(out, v)
	}
	return out, rows.Err()
}
