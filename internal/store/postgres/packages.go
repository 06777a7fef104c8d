package postgres

import (
	"context"
	"errors"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgtype"

	"github.com/updraft-ota/updraft/internal/ota"
	"github.com/updraft-ota/updraft/internal/store"
	"github.com/updraft-ota/updraft/internal/store/sqlcommon"
)

func (s *Store) CreatePackage(ctx context.Context, p ota.Package) error {
	_, err := s.exec(ctx, `INSERT INTO packages (`+packageColumns+`)
		VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16, $17, $18, $19, $20, $21, $22, $23, $24, $25, $26, $27, $28)`,
		p.ID, p.TenantID, p.ProductKey, p.Module, p.Kind, p.Name, p.Version, p.Differential, strs(p.SourceVersions),
		p.Description, p.CustomInfo, p.SignMethod, p.Sign, p.NeedVerify, p.VerifyStatus, sqlcommon.EncodeTags(p.Tags), p.Space,
		p.Region, p.Bucket, p.Key, p.External, p.FileName, p.Size, p.SHA256, p.MD5, ts(p.CreatedAt), ts(p.ModifiedAt),
		sqlcommon.EncodeLocalNames(p.LocalNames))
	return conflictAs(translate(err, "create package"), "a package named %q (or with id %q) already exists", p.Name, p.ID)
}

const packageColumns = `id, tenant_id, product_key, module, kind, name, version, differential, source_versions,
	description, custom_info, sign_method, sign, need_verify, verify_status, tags, space,
	region, bucket, key, external, file_name, size, sha256, md5, created_at, modified_at, local_names`

func scanPackage(row pgx.Row) (ota.Package, error) {
	var p ota.Package
	var tags, localNames string
	var created, modified pgtype.Timestamptz
	err := row.Scan(&p.ID, &p.TenantID, &p.ProductKey, &p.Module, &p.Kind, &p.Name, &p.Version, &p.Differential, &p.SourceVersions,
		&p.Description, &p.CustomInfo, &p.SignMethod, &p.Sign, &p.NeedVerify, &p.VerifyStatus, &tags, &p.Space,
		&p.Region, &p.Bucket, &p.Key, &p.External, &p.FileName, &p.Size, &p.SHA256, &p.MD5, &created, &modified, &localNames)
	if err != nil {
		return ota.Package{}, err
	}
	if p.Tags, err = sqlcommon.DecodeTags(tags); err != nil {
		return ota.Package{}, err
	}
	if p.LocalNames, err = sqlcommon.DecodeLocalNames(localNames); err != nil {
		return ota.Package{}, err
	}
	p.SourceVersions = nilIfEmpty(p.SourceVersions)
	p.CreatedAt, p.ModifiedAt = fromTS(created), fromTS(modified)
	return p, nil
}

func (s *Store) GetPackage(ctx context.Context, tenantID, id string) (ota.Package, error) {
	p, err := scanPackage(s.pool.QueryRow(ctx, `SELECT `+packageColumns+` FROM packages WHERE tenant_id = $1 AND id = $2`, tenantID, id))
	if err != nil {
		return ota.Package{}, notFoundAs(err, "get package", ota.NotFound("package", id))
	}
	return p, nil
}

func (s *Store) ListPackages(ctx context.Context, f store.PackageFilter, page store.Page) ([]ota.Package, int64, error) {
	w := &where{}
	if f.TenantID != "" {
		w.add("tenant_id = %s", f.TenantID)
	}
	if f.ProductKey != "" {
		w.add("product_key = %s", f.ProductKey)
	}
	if f.Module != "" {
		w.add("module = %s", f.Module)
	}
	if f.Kind != "" {
		w.add("kind = %s", f.Kind)
	}
	if f.Version != "" {
		w.add("version = %s", f.Version)
	}
	if f.Name != "" {
		w.add(nameColumn(w, f.NameLocale)+" = %s", f.Name)
	}
	if f.NameContains != "" {
		w.add("strpos("+nameColumn(w, f.NameLocale)+", %s) > 0", f.NameContains)
	}
	if f.Space != "" {
		w.add("space = %s", f.Space)
	}
	if len(f.VerifyStatuses) > 0 {
		statuses := make([]string, len(f.VerifyStatuses))
		for i, v := range f.VerifyStatuses {
			statuses[i] = string(v)
		}
		w.add("verify_status = ANY(%s)", statuses)
	}
	total, err := s.count(ctx, "packages", w, "count packages")
	if err != nil {
		return nil, 0, err
	}
	if page.BeforeID != "" {
		w.add("id < %s", page.BeforeID)
	}
	q := `SELECT ` + packageColumns + ` FROM packages` + w.String() +
		` ORDER BY id DESC LIMIT ` + w.arg(limitOf(0, page)) + ` OFFSET ` + w.arg(page.Offset)
	list, err := queryAll(ctx, s, "list packages", scanPackage, q, w.args...)
	return list, total, err
}

func (s *Store) UpdatePackage(ctx context.Context, p ota.Package) error {
	err := s.execOne(ctx, ota.NotFound("package", p.ID), "update package",
		`UPDATE packages SET name = $3, description = $4, custom_info = $5, tags = $6, need_verify = $7,
			verify_status = $8, modified_at = $9, local_names = $10
		WHERE tenant_id = $1 AND id = $2`,
		p.TenantID, p.ID, p.Name, p.Description, p.CustomInfo, sqlcommon.EncodeTags(p.Tags), p.NeedVerify, p.VerifyStatus, ts(p.ModifiedAt),
		sqlcommon.EncodeLocalNames(p.LocalNames))
	return conflictAs(err, "a package named %q already exists", p.Name)
}

// UpdatePackageInfo writes the operator-editable fields only.
func (s *Store) UpdatePackageInfo(ctx context.Context, p ota.Package) error {
	err := s.execOne(ctx, ota.NotFound("package", p.ID), "update package",
		`UPDATE packages SET name = $3, description = $4, custom_info = $5, tags = $6, modified_at = $7, local_names = $8
		WHERE tenant_id = $1 AND id = $2`,
		p.TenantID, p.ID, p.Name, p.Description, p.CustomInfo, sqlcommon.EncodeTags(p.Tags), ts(p.ModifiedAt),
		sqlcommon.EncodeLocalNames(p.LocalNames))
	return conflictAs(err, "a package named %q already exists", p.Name)
}

// DeletePackage removes a package no unfinished job uses. The package row
// is locked first (FOR UPDATE), which waits for a job creation holding it
// (CreateJobWithTasks, FOR SHARE) to commit; the count of unfinished jobs
// that follows, a new statement, sees that job.
func (s *Store) DeletePackage(ctx context.Context, tenantID, id string) error {
	return translate(s.inTx(ctx, func(tx pgx.Tx) error {
		var one int
		err := tx.QueryRow(ctx, `SELECT 1 FROM packages WHERE tenant_id = $1 AND id = $2 FOR UPDATE`, tenantID, id).Scan(&one)
		if errors.Is(err, pgx.ErrNoRows) {
			return ota.NotFound("package", id)
		}
		if err != nil {
			return err
		}
		var live int64
		if err := tx.QueryRow(ctx, `SELECT count(*) FROM jobs WHERE tenant_id = $1 AND package_id = $2
			AND state NOT IN ('completed', 'canceled')`, tenantID, id).Scan(&live); err != nil {
			return err
		}
		if live > 0 {
			return ota.Errorf(ota.CodeConflict, "package %q is used by %d unfinished job(s): cancel them or wait until they finish", id, live)
		}
		_, err = tx.Exec(ctx, `DELETE FROM packages WHERE tenant_id = $1 AND id = $2`, tenantID, id)
		return err
	}), "delete package")
}

func (s *Store) CountPackageRefs(ctx context.Context, bucket, key string) (int64, error) {
	w := &where{}
	w.add("bucket = %s", bucket)
	w.add("key = %s", key)
	return s.count(ctx, "packages", w, "count package references")
}

// nameColumn is the SQL expression of the name a filter's Name and
// NameContains match: the default name, or with a locale the name in that
// locale (the key bound as a parameter of w), NULL when the row has none,
// which then matches nothing.
func nameColumn(w *where, locale string) string {
	if locale == "" {
		return "name"
	}
	return "(local_names ->> " + w.arg(locale) + "::text)"
}
