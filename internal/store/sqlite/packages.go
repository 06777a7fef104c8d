package sqlite

import (
	"context"
	"database/sql"

	"github.com/updraft-ota/updraft/internal/ota"
	"github.com/updraft-ota/updraft/internal/store"
	"github.com/updraft-ota/updraft/internal/store/sqlcommon"
)

const packageCols = `id, tenant_id, product_key, module, kind, name, version, differential, source_versions,
	description, custom_info, sign_method, sign, need_verify, verify_status, tags, space,
	region, bucket, object_key, external, file_name, size, sha256, md5, created_at, modified_at, local_names`

// CreatePackage adds a package; CodeConflict if the tenant has a package of
// that name (or the id exists).
func (s *Store) CreatePackage(ctx context.Context, p ota.Package) error {
	_, err := s.exec(ctx, "INSERT INTO packages ("+packageCols+`)
		VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`,
		p.ID, p.TenantID, p.ProductKey, p.Module, string(p.Kind), p.Name, p.Version, dbBool(p.Differential),
		sqlcommon.EncodeStrings(p.SourceVersions), p.Description, p.CustomInfo, string(p.SignMethod), p.Sign,
		dbBool(p.NeedVerify), string(p.VerifyStatus), sqlcommon.EncodeTags(p.Tags), p.Space,
		p.Region, p.Bucket, p.Key, dbBool(p.External), p.FileName, p.Size, p.SHA256, p.MD5,
		dbTime(p.CreatedAt), dbTime(p.ModifiedAt), sqlcommon.EncodeLocalNames(p.LocalNames))
	if ota.ErrorCode(dbError(err, "")) == ota.CodeConflict {
		return ota.Errorf(ota.CodeConflict, "a package named %q already exists: choose another name", p.Name)
	}
	return dbError(err, "create package "+p.Name)
}

func scanPackage(r rowScanner) (ota.Package, error) {
	var p ota.Package
	var kind, signMethod, verify, sources, tags, localNames string
	var diff, needVerify, external int
	var created, modified sql.NullInt64
	err := r.Scan(&p.ID, &p.TenantID, &p.ProductKey, &p.Module, &kind, &p.Name, &p.Version, &diff, &sources,
		&p.Description, &p.CustomInfo, &signMethod, &p.Sign, &needVerify, &verify, &tags, &p.Space,
		&p.Region, &p.Bucket, &p.Key, &external, &p.FileName, &p.Size, &p.SHA256, &p.MD5, &created, &modified, &localNames)
	if err != nil {
		return ota.Package{}, err
	}
	p.Kind = ota.PackageKind(kind)
	p.SignMethod = ota.SignMethod(signMethod)
	p.VerifyStatus = ota.VerifyStatus(verify)
	p.Differential = diff != 0
	p.NeedVerify = needVerify != 0
	p.External = external != 0
	p.CreatedAt = goTime(created)
	p.ModifiedAt = goTime(modified)
	if p.SourceVersions, err = sqlcommon.DecodeStrings(sources); err != nil {
		return ota.Package{}, err
	}
	if p.Tags, err = sqlcommon.DecodeTags(tags); err != nil {
		return ota.Package{}, err
	}
	if p.LocalNames, err = sqlcommon.DecodeLocalNames(localNames); err != nil {
		return ota.Package{}, err
	}
	return p, nil
}

func (s *Store) GetPackage(ctx context.Context, tenantID, id string) (ota.Package, error) {
	p, err := scanPackage(s.read.QueryRowContext(ctx, "SELECT "+packageCols+" FROM packages WHERE id = ? AND tenant_id = ?", id, tenantID))
	if err == sql.ErrNoRows {
		return ota.Package{}, ota.NotFound("package", id)
	}
	return p, dbError(err, "get package "+id)
}

// ListPackages returns matching packages newest first (id descending). The
// total ignores BeforeID, Offset and Limit.
func (s *Store) ListPackages(ctx context.Context, f store.PackageFilter, page store.Page) ([]ota.Package, int64, error) {
	var w where
	if f.TenantID != "" {
		w.add("tenant_id = ?", f.TenantID)
	}
	if f.ProductKey != "" {
		w.add("product_key = ?", f.ProductKey)
	}
	if f.Module != "" {
		w.add("module = ?", f.Module)
	}
	if f.Kind != "" {
		w.add("kind = ?", string(f.Kind))
	}
	if f.Version != "" {
		w.add("version = ?", f.Version)
	}
	name, nameArgs := nameColumn("packages", f.NameLocale)
	if f.Name != "" {
		w.add(name+" = ?", append(nameArgs, f.Name)...)
	}
	if f.NameContains != "" {
		w.add("instr("+name+", ?) > 0", append(nameArgs, f.NameContains)...)
	}
	if f.Space != "" {
		w.add("space = ?", f.Space)
	}
	if len(f.VerifyStatuses) > 0 {
		w.in("verify_status", stateStrings(f.VerifyStatuses))
	}
	var total int64
	if err := s.read.QueryRowContext(ctx, "SELECT count(*) FROM packages"+w.String(), w.args...).Scan(&total); err != nil {
		return nil, 0, dbError(err, "count packages")
	}
	if page.BeforeID != "" {
		w.add("id < ?", page.BeforeID)
	}
	rows, err := s.read.QueryContext(ctx, "SELECT "+packageCols+" FROM packages"+w.String()+" ORDER BY id DESC LIMIT ? OFFSET ?",
		append(w.args, sqlcommon.Limit(page.Limit, 0), page.Offset)...)
	if err != nil {
		return nil, 0, dbError(err, "list packages")
	}
	out, err := collect(rows, scanPackage)
	if err != nil {
		return nil, 0, dbError(err, "list packages")
	}
	return out, total, nil
}

// UpdatePackage writes the mutable fields: name, local names, description,
// custom info, tags, need-verify, verify status, modified time.
func (s *Store) UpdatePackage(ctx context.Context, p ota.Package) error {
	res, err := s.exec(ctx, `UPDATE packages SET name = ?, local_names = ?, description = ?, custom_info = ?, tags = ?,
		need_verify = ?, verify_status = ?, modified_at = ? WHERE id = ? AND tenant_id = ?`,
		p.Name, sqlcommon.EncodeLocalNames(p.LocalNames), p.Description, p.CustomInfo, sqlcommon.EncodeTags(p.Tags), dbBool(p.NeedVerify), string(p.VerifyStatus),
		dbTime(p.ModifiedAt), p.ID, p.TenantID)
	if ota.ErrorCode(dbError(err, "")) == ota.CodeConflict {
		return ota.Errorf(ota.CodeConflict, "a package named %q already exists: choose another name", p.Name)
	}
	return affectedOne(res, err, "update package "+p.ID, ota.NotFound("package", p.ID))
}

// UpdatePackageInfo writes the operator-editable fields only.
func (s *Store) UpdatePackageInfo(ctx context.Context, p ota.Package) error {
	res, err := s.exec(ctx, `UPDATE packages SET name = ?, local_names = ?, description = ?, custom_info = ?, tags = ?,
		modified_at = ? WHERE id = ? AND tenant_id = ?`,
		p.Name, sqlcommon.EncodeLocalNames(p.LocalNames), p.Description, p.CustomInfo, sqlcommon.EncodeTags(p.Tags), dbTime(p.ModifiedAt), p.ID, p.TenantID)
	if ota.ErrorCode(dbError(err, "")) == ota.CodeConflict {
		return ota.Errorf(ota.CodeConflict, "a package named %q already exists: choose another name", p.Name)
	}
	return affectedOne(res, err, "update package "+p.ID, ota.NotFound("package", p.ID))
}

// DeletePackage removes a package no unfinished job uses. The check and the
// delete are one transaction on the single writer, so a job created at the
// same moment (CreateJobWithTasks, which needs the package) comes strictly
// before or after.
func (s *Store) DeletePackage(ctx context.Context, tenantID, id string) error {
	err := s.inTx(ctx, func(tx *sql.Tx) error {
		var live int64
		if err := tx.QueryRowContext(ctx, `SELECT count(*) FROM jobs WHERE package_id = ? AND tenant_id = ?
			AND state NOT IN ('completed', 'canceled')`, id, tenantID).Scan(&live); err != nil {
			return err
		}
		if live > 0 {
			return ota.Errorf(ota.CodeConflict, "package %q is used by %d unfinished job(s): cancel them or wait until they finish", id, live)
		}
		res, err := tx.ExecContext(ctx, "DELETE FROM packages WHERE id = ? AND tenant_id = ?", id, tenantID)
		return affectedOne(res, err, "delete package "+id, ota.NotFound("package", id))
	})
	return dbError(err, "delete package "+id)
}

// CountPackageRefs counts packages (of any tenant) stored in bucket/key.
func (s *Store) CountPackageRefs(ctx context.Context, bucket, key string) (int64, error) {
	var n int64
	err := s.read.QueryRowContext(ctx, "SELECT count(*) FROM packages WHERE bucket = ? AND object_key = ?", bucket, key).Scan(&n)
	return n, dbError(err, "count package references")
}

// nameColumn is the SQL expression, and its arguments, of the name a
// filter's Name and NameContains match in table: the default name, or with
// a locale the name in that locale, looked up by key (json_each, so that no
// locale text is ever parsed as a JSON path) and NULL when the row has none,
// which then matches nothing.
func nameColumn(table, locale string) (string, []any) {
	if locale == "" {
		return "name", nil
	}
	return "(SELECT value FROM json_each(" + table + ".local_names) WHERE key = ?)", []any{locale}
}
