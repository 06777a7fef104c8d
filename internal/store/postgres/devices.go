package postgres

import (
	"context"
	"errors"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgtype"

	"github.com/updraft-ota/updraft/internal/ota"
	"github.com/updraft-ota/updraft/internal/store"
	"github.com/updraft-ota/updraft/internal/store/secrets"
	"github.com/updraft-ota/updraft/internal/store/sqlcommon"
)

func (s *Store) CreateDevice(ctx context.Context, d ota.Device) error {
	_, err := s.exec(ctx, `INSERT INTO devices (product_key, name, tenant_id, secret, groups, versions, online, last_seen, created_at, protocol_id, attributes, tags)
		VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, NULLIF($10, ''), $11, $12)`,
		d.ProductKey, d.Name, d.TenantID, s.box.Seal(secrets.DeviceID(d.ProductKey, d.Name), d.Secret), strs(d.Groups), sqlcommon.EncodeVersions(d.Versions), d.Online, ts(d.LastSeen), ts(d.CreatedAt), d.ProtocolID,
		sqlcommon.EncodeVersions(d.Attributes), sqlcommon.EncodeVersions(d.Tags))
	err = conflictAs(translate(err, "create device"), "product %q already has a device %q, or its device id %q is taken", d.ProductKey, d.Name, d.ProtocolID)
	return notFoundRefAs(err, ota.NotFound("product", d.ProductKey))
}

const deviceColumns = `product_key, name, tenant_id, secret, groups, versions, online, last_seen, created_at, COALESCE(protocol_id, ''), attributes, tags`

// briefDeviceColumns are what store.DeviceFilter.Brief fills (scanBriefDevice).
const briefDeviceColumns = `product_key, name, tenant_id, versions, online, created_at`

func scanBriefDevice(row pgx.Row) (ota.Device, error) {
	var d ota.Device
	var versions string
	var created pgtype.Timestamptz
	if err := row.Scan(&d.ProductKey, &d.Name, &d.TenantID, &versions, &d.Online, &created); err != nil {
		return ota.Device{}, err
	}
	var err error
	if d.Versions, err = sqlcommon.DecodeVersions(versions); err != nil {
		return ota.Device{}, err
	}
	d.CreatedAt = fromTS(created)
	return d, nil
}

func (s *Store) scanDevice(row pgx.Row) (ota.Device, error) {
	var d ota.Device
	var versions, attrs, tags string
	var lastSeen, created pgtype.Timestamptz
	if err := row.Scan(&d.ProductKey, &d.Name, &d.TenantID, &d.Secret, &d.Groups, &versions, &d.Online, &lastSeen, &created, &d.ProtocolID, &attrs, &tags); err != nil {
		return ota.Device{}, err
	}
	var err error
	if d.Attributes, err = sqlcommon.DecodeLabels(attrs); err != nil {
		return ota.Device{}, err
	}
	if d.Tags, err = sqlcommon.DecodeLabels(tags); err != nil {
		return ota.Device{}, err
	}
	if d.Versions, err = sqlcommon.DecodeVersions(versions); err != nil {
		return ota.Device{}, err
	}
	if d.Secret, err = s.box.Open(secrets.DeviceID(d.ProductKey, d.Name), d.Secret); err != nil {
		return ota.Device{}, err
	}
	d.Groups = nilIfEmpty(d.Groups)
	d.LastSeen, d.CreatedAt = fromTS(lastSeen), fromTS(created)
	return d, nil
}

func (s *Store) GetDevice(ctx context.Context, productKey, name string) (ota.Device, error) {
	d, err := s.scanDevice(s.pool.QueryRow(ctx, `SELECT `+deviceColumns+` FROM devices WHERE product_key = $1 AND name = $2`, productKey, name))
	if err != nil {
		return ota.Device{}, notFoundAs(err, "get device", ota.NotFound("device", name))
	}
	return d, nil
}

// deviceWhere turns a filter into conditions. Keyset paging (AfterName) is
// left to the caller so the total counts every match.
func deviceWhere(f store.DeviceFilter) *where {
	w := &where{}
	if f.TenantID != "" {
		w.add("tenant_id = %s", f.TenantID)
	}
	if f.ProductKey != "" {
		w.add("product_key = %s", f.ProductKey)
	}
	if len(f.Names) > 0 {
		w.add("name = ANY(%s)", f.Names)
	}
	if len(f.Groups) > 0 {
		w.add("groups && %s", f.Groups)
	}
	// Every pair of the filter is on the device: jsonb containment.
	if len(f.Attributes) > 0 {
		w.add("attributes @> %s::jsonb", sqlcommon.EncodeVersions(f.Attributes))
	}
	if len(f.Tags) > 0 {
		w.add("tags @> %s::jsonb", sqlcommon.EncodeVersions(f.Tags))
	}
	module := f.Module
	if module == "" {
		module = ota.DefaultModule // as ota.Device.Version reads it
	}
	switch {
	case len(f.Versions) > 0 && module == ota.SoftwareModule:
		// As ota.Device.Version reads it: the firmware's version stands in
		// for a software version never reported.
		w.add("COALESCE(versions->>%s, versions->>%s) = ANY(%s)", module, ota.DefaultModule, f.Versions)
	case len(f.Versions) > 0:
		w.add("versions->>%s = ANY(%s)", module, f.Versions)
	}
	switch {
	case f.HasVersion && module == ota.SoftwareModule:
		w.add("(versions ? %s OR versions ? %s)", module, ota.DefaultModule)
	case f.HasVersion:
		w.add("versions ? %s", module)
	}
	if f.Online != nil {
		w.add("online = %s", *f.Online)
	}
	if f.NamePrefix != "" {
		w.add("starts_with(name, %s)", f.NamePrefix)
	}
	return w
}

func (s *Store) ListDevices(ctx context.Context, f store.DeviceFilter, page store.Page, count bool) ([]ota.Device, int64, error) {
	w := deviceWhere(f)
	total := int64(-1)
	if count {
		n, err := s.count(ctx, "devices", w, "count devices")
		if err != nil {
			return nil, 0, err
		}
		total = n
	}
	if f.AfterName != "" {
		w.add("name > %s", f.AfterName)
	}
	columns, scan := deviceColumns, s.scanDevice
	if f.Brief {
		columns, scan = briefDeviceColumns, scanBriefDevice
	}
	q := `SELECT ` + columns + ` FROM devices` + w.String() +
		` ORDER BY name, product_key LIMIT ` + w.arg(limitOf(f.Limit, page)) + ` OFFSET ` + w.arg(page.Offset)
	list, err := queryAll(ctx, s, "list devices", scan, q, w.args...)
	return list, total, err
}

// SetDeviceVersion records the version of one module (the default module
// when module is empty); the report also counts as the device being seen.
func (s *Store) SetDeviceVersion(ctx context.Context, productKey, name, module, version string, at time.Time) error {
	if module == "" {
		module = ota.DefaultModule
	}
	return s.execOne(ctx, ota.NotFound("device", name), "record device version",
		`UPDATE devices SET versions = versions || jsonb_build_object($3::text, $4::text), last_seen = $5
		WHERE product_key = $1 AND name = $2`, productKey, name, module, version, ts(at))
}

func (s *Store) SetDeviceOnline(ctx context.Context, productKey, name string, online bool, at time.Time, stamp int64) (bool, error) {
	tag, err := s.exec(ctx, `UPDATE devices SET online = $3, last_seen = $4,
			presence_stamp = CASE WHEN $5::bigint = 0 THEN presence_stamp ELSE $5::bigint END
		WHERE product_key = $1 AND name = $2 AND ($5::bigint = 0 OR presence_stamp < $5::bigint)`,
		productKey, name, online, ts(at), stamp)
	if err != nil {
		return false, translate(err, "record device connection")
	}
	if tag.RowsAffected() == 1 {
		return true, nil
	}
	// Nothing changed: an older change than the last one applied, or no
	// such device.
	var found bool
	err = s.pool.QueryRow(ctx, `SELECT true FROM devices WHERE product_key = $1 AND name = $2`, productKey, name).Scan(&found)
	if errors.Is(err, pgx.ErrNoRows) {
		return false, ota.NotFound("device", name)
	}
	return false, translate(err, "record device connection")
}

// SetDeviceSeen records a sighting at at when the last one is older than staleBefore.
func (s *Store) SetDeviceSeen(ctx context.Context, productKey, name string, at, staleBefore time.Time) error {
	_, err := s.exec(ctx, `UPDATE devices SET last_seen = $3, polled_at = $3
		WHERE product_key = $1 AND name = $2 AND (polled_at IS NULL OR polled_at < $4)`,
		productKey, name, ts(at), ts(staleBefore))
	return translate(err, "record a sighting of device "+name)
}

// CountPresent counts present devices per protocol and transport.
func (s *Store) CountPresent(ctx context.Context, polledSince time.Time) ([]store.Presence, error) {
	rows, err := s.pool.Query(ctx, `SELECT p.protocol, 'mqtt', count(*) FROM devices d JOIN products p ON p.key = d.product_key
		WHERE d.online GROUP BY p.protocol
		UNION ALL
		SELECT p.protocol, 'http', count(*) FROM devices d JOIN products p ON p.key = d.product_key
		WHERE d.polled_at >= $1 GROUP BY p.protocol`, ts(polledSince))
	if err != nil {
		return nil, translate(err, "count present devices")
	}
	out, err := pgx.CollectRows(rows, func(row pgx.CollectableRow) (store.Presence, error) {
		var p store.Presence
		err := row.Scan(&p.Protocol, &p.Transport, &p.Devices)
		return p, err
	})
	return out, translate(err, "count present devices")
}

func (s *Store) DeleteDevice(ctx context.Context, productKey, name string) error {
	return s.execOne(ctx, ota.NotFound("device", name), "delete device",
		`DELETE FROM devices WHERE product_key = $1 AND name = $2`, productKey, name)
}

func (s *Store) SetDeviceLabels(ctx context.Context, productKey, name string, attributes, tags map[string]string) error {
	return s.execOne(ctx, ota.NotFound("device", name), "set device labels",
		`UPDATE devices SET attributes = $3, tags = $4 WHERE product_key = $1 AND name = $2`,
		productKey, name, sqlcommon.EncodeVersions(attributes), sqlcommon.EncodeVersions(tags))
}

func (s *Store) SetDeviceGroups(ctx context.Context, productKey, name string, groups []string) error {
	return s.execOne(ctx, ota.NotFound("device", name), "set device groups",
		`UPDATE devices SET groups = $3 WHERE product_key = $1 AND name = $2`, productKey, name, strs(groups))
}

// DeleteProduct removes the product and everything of it (see store.Products).
func (s *Store) DeleteProduct(ctx context.Context, tenantID, key string) error {
	return translate(s.inTx(ctx, func(tx pgx.Tx) error {
		var running string
		err := tx.QueryRow(ctx, `SELECT id FROM jobs WHERE tenant_id = $1 AND product_key = $2 AND state NOT IN ($3, $4) LIMIT 1`,
			tenantID, key, string(ota.JobCompleted), string(ota.JobCanceled)).Scan(&running)
		if err == nil {
			return ota.Errorf(ota.CodeConflict, "product %q has an unfinished job %s: cancel it first (updraft job cancel %s)", key, running, running)
		}
		if !errors.Is(err, pgx.ErrNoRows) {
			return err
		}
		tag, err := tx.Exec(ctx, `DELETE FROM products WHERE tenant_id = $1 AND key = $2`, tenantID, key)
		if err != nil {
			return err
		}
		if tag.RowsAffected() == 0 {
			return ota.NotFound("product", key)
		}
		// Modules and devices go with the product (ON DELETE CASCADE).
		for _, q := range []string{`DELETE FROM tasks WHERE job_id IN (SELECT id FROM jobs WHERE tenant_id = $1 AND product_key = $2)`,
			`DELETE FROM task_counts WHERE job_id IN (SELECT id FROM jobs WHERE tenant_id = $1 AND product_key = $2)`, `DELETE FROM jobs WHERE tenant_id = $1 AND product_key = $2`, `DELETE FROM packages WHERE tenant_id = $1 AND product_key = $2`} {
			if _, err := tx.Exec(ctx, q, tenantID, key); err != nil {
				return err
			}
		}
		return nil
	}), "delete product "+key)
}

func (s *Store) CountDeviceVersions(ctx context.Context, tenantID, productKey, module string, limit int) ([]store.VersionCount, error) {
	if module == "" {
		module = ota.DefaultModule
	}
	return queryAll(ctx, s, "count device versions", func(r pgx.Row) (store.VersionCount, error) {
		var vc store.VersionCount
		err := r.Scan(&vc.Version, &vc.Devices)
		return vc, err
	}, `SELECT COALESCE(versions->>$3, ''), count(*) FROM devices
		WHERE tenant_id = $1 AND product_key = $2 GROUP BY 1 ORDER BY 2 DESC, 1 LIMIT $4`,
		tenantID, productKey, module, limitOf(limit, store.Page{}))
}
