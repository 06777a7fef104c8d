package sqlite

import (
	"context"
	"database/sql"
	"errors"
	"time"

	"github.com/updraft-ota/updraft/internal/ota"
	"github.com/updraft-ota/updraft/internal/store"
	"github.com/updraft-ota/updraft/internal/store/secrets"
	"github.com/updraft-ota/updraft/internal/store/sqlcommon"
)

// CreateDevice adds a device with its groups and any versions it already
// has; CodeConflict if (product, name) exists, CodeNotFound if the product
// does not.
func (s *Store) CreateDevice(ctx context.Context, d ota.Device) error {
	err := s.inTx(ctx, func(tx *sql.Tx) error {
		_, err := tx.ExecContext(ctx, `INSERT INTO devices (product_key, name, tenant_id, secret, groups, online, last_seen, created_at, protocol_id, attributes, tags)
			VALUES (?, ?, ?, ?, ?, ?, ?, ?, NULLIF(?, ''), ?, ?)`,
			d.ProductKey, d.Name, d.TenantID, s.box.Seal(secrets.DeviceID(d.ProductKey, d.Name), d.Secret), sqlcommon.EncodeStrings(d.Groups), dbBool(d.Online),
			dbTime(d.LastSeen), dbTime(d.CreatedAt), d.ProtocolID, sqlcommon.EncodeVersions(d.Attributes), sqlcommon.EncodeVersions(d.Tags))
		if err != nil {
			return err
		}
		for module, version := range d.Versions {
			if _, err := tx.ExecContext(ctx, `INSERT INTO device_versions (product_key, device_name, module, version, reported_at)
				VALUES (?, ?, ?, ?, ?)`, d.ProductKey, d.Name, module, version, dbTime(d.LastSeen)); err != nil {
				return err
			}
		}
		return nil
	})
	switch ota.ErrorCode(dbError(err, "")) {
	case ota.CodeConflict:
		return ota.Errorf(ota.CodeConflict, "device %q of product %q already exists", d.Name, d.ProductKey)
	case ota.CodeNotFound:
		return ota.NotFound("product", d.ProductKey)
	}
	return dbError(err, "create device "+d.Name)
}

// deviceSelect reads a device with its versions folded into a JSON object.
const deviceSelect = `SELECT d.tenant_id, d.product_key, d.name, d.secret, d.groups, d.online, d.last_seen, d.created_at,
	(SELECT json_group_object(v.module, v.version) FROM device_versions v
	 WHERE v.product_key = d.product_key AND v.device_name = d.name), COALESCE(d.protocol_id, ''), d.attributes, d.tags
	FROM devices d`

// briefDeviceSelect reads what store.DeviceFilter.Brief fills (scanBriefDevice).
const briefDeviceSelect = `SELECT d.tenant_id, d.product_key, d.name, d.online, d.created_at,
	(SELECT json_group_object(v.module, v.version) FROM device_versions v
	 WHERE v.product_key = d.product_key AND v.device_name = d.name)
	FROM devices d`

func scanBriefDevice(r rowScanner) (ota.Device, error) {
	var d ota.Device
	var versions string
	var online int
	var created sql.NullInt64
	if err := r.Scan(&d.TenantID, &d.ProductKey, &d.Name, &online, &created, &versions); err != nil {
		return ota.Device{}, err
	}
	var err error
	if d.Versions, err = sqlcommon.DecodeVersions(versions); err != nil {
		return ota.Device{}, err
	}
	d.Online = online != 0
	d.CreatedAt = goTime(created)
	return d, nil
}

func (s *Store) scanDevice(r rowScanner) (ota.Device, error) {
	var d ota.Device
	var groups, versions, attrs, tags string
	var online int
	var lastSeen, created sql.NullInt64
	if err := r.Scan(&d.TenantID, &d.ProductKey, &d.Name, &d.Secret, &groups, &online, &lastSeen, &created, &versions, &d.ProtocolID, &attrs, &tags); err != nil {
		return ota.Device{}, err
	}
	var err error
	if d.Attributes, err = sqlcommon.DecodeLabels(attrs); err != nil {
		return ota.Device{}, err
	}
	if d.Tags, err = sqlcommon.DecodeLabels(tags); err != nil {
		return ota.Device{}, err
	}
	if d.Groups, err = sqlcommon.DecodeStrings(groups); err != nil {
		return ota.Device{}, err
	}
	if d.Versions, err = sqlcommon.DecodeVersions(versions); err != nil {
		return ota.Device{}, err
	}
	if d.Secret, err = s.box.Open(secrets.DeviceID(d.ProductKey, d.Name), d.Secret); err != nil {
		return ota.Device{}, err
	}
	d.Online = online != 0
	d.LastSeen = goTime(lastSeen)
	d.CreatedAt = goTime(created)
	return d, nil
}

func (s *Store) GetDevice(ctx context.Context, productKey, name string) (ota.Device, error) {
	d, err := s.scanDevice(s.read.QueryRowContext(ctx, deviceSelect+" WHERE d.product_key = ? AND d.name = ?", productKey, name))
	if err == sql.ErrNoRows {
		return ota.Device{}, ota.NotFound("device", name)
	}
	return d, dbError(err, "get device "+name)
}

// ListDevices returns matching devices in name order. The count ignores
// AfterName and the limits.
func (s *Store) ListDevices(ctx context.Context, f store.DeviceFilter, page store.Page, count bool) ([]ota.Device, int64, error) {
	var w where
	if f.TenantID != "" {
		w.add("d.tenant_id = ?", f.TenantID)
	}
	if f.ProductKey != "" {
		w.add("d.product_key = ?", f.ProductKey)
	}
	if len(f.Names) > 0 {
		w.in("d.name", f.Names)
	}
	if len(f.Groups) > 0 {
		w.add("EXISTS (SELECT 1 FROM json_each(d.groups) g WHERE g.value IN (SELECT value FROM json_each(?)))", jsonList(f.Groups))
	}
	// Every pair of the filter is on the device.
	for col, m := range map[string]map[string]string{"d.attributes": f.Attributes, "d.tags": f.Tags} {
		if len(m) > 0 {
			w.add(`NOT EXISTS (SELECT 1 FROM json_each(?) f WHERE NOT EXISTS (
				SELECT 1 FROM json_each(`+col+`) l WHERE l.key = f.key AND l.value = f.value))`, sqlcommon.EncodeVersions(m))
		}
	}
	module := f.Module
	if module == "" {
		module = ota.DefaultModule
	}
	switch {
	case len(f.Versions) > 0 && module == ota.SoftwareModule:
		// As ota.Device.Version reads it: the firmware's version stands in
		// for a software version never reported.
		w.add(`EXISTS (SELECT 1 FROM device_versions v WHERE v.product_key = d.product_key AND v.device_name = d.name
			AND v.module = COALESCE((SELECT s.module FROM device_versions s WHERE s.product_key = d.product_key AND s.device_name = d.name AND s.module = ?), ?)
			AND v.version IN (SELECT value FROM json_each(?)))`, module, ota.DefaultModule, jsonList(f.Versions))
	case len(f.Versions) > 0:
		w.add(`EXISTS (SELECT 1 FROM device_versions v WHERE v.product_key = d.product_key AND v.device_name = d.name
			AND v.module = ? AND v.version IN (SELECT value FROM json_each(?)))`, module, jsonList(f.Versions))
	case f.HasVersion && module == ota.SoftwareModule:
		w.add("EXISTS (SELECT 1 FROM device_versions v WHERE v.product_key = d.product_key AND v.device_name = d.name AND v.module IN (?, ?))", module, ota.DefaultModule)
	case f.HasVersion:
		w.add("EXISTS (SELECT 1 FROM device_versions v WHERE v.product_key = d.product_key AND v.device_name = d.name AND v.module = ?)", module)
	}
	if f.Online != nil {
		w.add("d.online = ?", dbBool(*f.Online))
	}
	if f.NamePrefix != "" {
		w.add("substr(d.name, 1, length(?)) = ?", f.NamePrefix, f.NamePrefix)
	}

	total := int64(-1)
	if count {
		if err := s.read.QueryRowContext(ctx, "SELECT count(*) FROM devices d"+w.String(), w.args...).Scan(&total); err != nil {
			return nil, 0, dbError(err, "count devices")
		}
	}
	if f.AfterName != "" {
		w.add("d.name > ?", f.AfterName)
	}
	sel, scan := deviceSelect, s.scanDevice
	if f.Brief {
		sel, scan = briefDeviceSelect, scanBriefDevice
	}
	q := sel + w.String() + " ORDER BY d.name, d.product_key LIMIT ? OFFSET ?"
	rows, err := s.read.QueryContext(ctx, q, append(w.args, sqlcommon.Limit(page.Limit, f.Limit), page.Offset)...)
	if err != nil {
		return nil, 0, dbError(err, "list devices")
	}
	out, err := collect(rows, scan)
	if err != nil {
		return nil, 0, dbError(err, "list devices")
	}
	return out, total, nil
}

// SetDeviceVersion records the reported version of one module; the report
// also counts as the device being seen at at.
func (s *Store) SetDeviceVersion(ctx context.Context, productKey, name, module, version string, at time.Time) error {
	err := s.inTx(ctx, func(tx *sql.Tx) error { return setDeviceVersion(ctx, tx, productKey, name, module, version, at) })
	return dbError(err, "set version of device "+name)
}

// setDeviceVersion is SetDeviceVersion in tx.
func setDeviceVersion(ctx context.Context, tx *sql.Tx, productKey, name, module, version string, at time.Time) error {
	if module == "" {
		module = ota.DefaultModule
	}
	res, err := tx.ExecContext(ctx, "UPDATE devices SET last_seen = ? WHERE product_key = ? AND name = ?",
		dbTime(at), productKey, name)
	if err := affectedOne(res, err, "set device version", ota.NotFound("device", name)); err != nil {
		return err
	}
	_, err = tx.ExecContext(ctx, `INSERT INTO device_versions (product_key, device_name, module, version, reported_at)
		VALUES (?, ?, ?, ?, ?)
		ON CONFLICT (product_key, device_name, module) DO UPDATE SET version = excluded.version, reported_at = excluded.reported_at`,
		productKey, name, module, version, dbTime(at))
	return err
}

// SetDeviceOnline records a connect or disconnect at at, in stamp order.
func (s *Store) SetDeviceOnline(ctx context.Context, productKey, name string, online bool, at time.Time, stamp int64) (bool, error) {
	res, err := s.exec(ctx, `UPDATE devices SET online = ?1, last_seen = ?2,
			presence_stamp = CASE WHEN ?5 = 0 THEN presence_stamp ELSE ?5 END
		WHERE product_key = ?3 AND name = ?4 AND (?5 = 0 OR presence_stamp < ?5)`,
		dbBool(online), dbTime(at), productKey, name, stamp)
	if err != nil {
		return false, dbError(err, "set device online")
	}
	if n, err := res.RowsAffected(); err != nil || n == 1 {
		return n == 1, dbError(err, "set device online")
	}
	// Nothing changed: an older change than the last one applied, or no
	// such device.
	var found int
	err = s.read.QueryRowContext(ctx, "SELECT 1 FROM devices WHERE product_key = ? AND name = ?", productKey, name).Scan(&found)
	if errors.Is(err, sql.ErrNoRows) {
		return false, ota.NotFound("device", name)
	}
	return false, dbError(err, "set device online")
}

// SetDeviceSeen records a sighting at at when the last one is older than staleBefore.
func (s *Store) SetDeviceSeen(ctx context.Context, productKey, name string, at, staleBefore time.Time) error {
	_, err := s.exec(ctx, `UPDATE devices SET last_seen = ?1, polled_at = ?1
		WHERE product_key = ?2 AND name = ?3 AND (polled_at IS NULL OR polled_at < ?4)`,
		dbTime(at), productKey, name, dbTime(staleBefore))
	return dbError(err, "record a sighting of device "+name)
}

// CountPresent counts present devices per protocol and transport.
func (s *Store) CountPresent(ctx context.Context, polledSince time.Time) ([]store.Presence, error) {
	rows, err := s.read.QueryContext(ctx, `SELECT p.protocol, 'mqtt', count(*) FROM devices d JOIN products p ON p.key = d.product_key
		WHERE d.online = 1 GROUP BY p.protocol
		UNION ALL
		SELECT p.protocol, 'http', count(*) FROM devices d JOIN products p ON p.key = d.product_key
		WHERE d.polled_at >= ? GROUP BY p.protocol`, dbTime(polledSince))
	if err != nil {
		return nil, dbError(err, "count present devices")
	}
	defer rows.Close()
	var out []store.Presence
	for rows.Next() {
		var p store.Presence
		if err := rows.Scan(&p.Protocol, &p.Transport, &p.Devices); err != nil {
			return nil, dbError(err, "count present devices")
		}
		out = append(out, p)
	}
	return out, dbError(rows.Err(), "count present devices")
}

// DeleteDevice removes a device and its versions (ON DELETE CASCADE).
func (s *Store) DeleteDevice(ctx context.Context, productKey, name string) error {
	res, err := s.exec(ctx, "DELETE FROM devices WHERE product_key = ? AND name = ?", productKey, name)
	return affectedOne(res, err, "delete device "+name, ota.NotFound("device", name))
}

// SetDeviceLabels replaces a device's attributes and tags.
func (s *Store) SetDeviceLabels(ctx context.Context, productKey, name string, attributes, tags map[string]string) error {
	res, err := s.exec(ctx, "UPDATE devices SET attributes = ?, tags = ? WHERE product_key = ? AND name = ?",
		sqlcommon.EncodeVersions(attributes), sqlcommon.EncodeVersions(tags), productKey, name)
	return affectedOne(res, err, "set labels of device "+name, ota.NotFound("device", name))
}

// SetDeviceGroups replaces a device's groups.
func (s *Store) SetDeviceGroups(ctx context.Context, productKey, name string, groups []string) error {
	res, err := s.exec(ctx, "UPDATE devices SET groups = ? WHERE product_key = ? AND name = ?",
		sqlcommon.EncodeStrings(groups), productKey, name)
	return affectedOne(res, err, "set groups of device "+name, ota.NotFound("device", name))
}

// DeleteProduct removes the product and everything of it (see store.Products).
func (s *Store) DeleteProduct(ctx context.Context, tenantID, key string) error {
	err := s.inTx(ctx, func(tx *sql.Tx) error {
		var running string
		err := tx.QueryRowContext(ctx, "SELECT id FROM jobs WHERE tenant_id = ? AND product_key = ? AND state NOT IN (?, ?) LIMIT 1",
			tenantID, key, string(ota.JobCompleted), string(ota.JobCanceled)).Scan(&running)
		if err == nil {
			return ota.Errorf(ota.CodeConflict, "product %q has an unfinished job %s: cancel it first (updraft job cancel %s)", key, running, running)
		}
		if !errors.Is(err, sql.ErrNoRows) {
			return err
		}
		res, err := tx.ExecContext(ctx, "DELETE FROM products WHERE tenant_id = ? AND key = ?", tenantID, key)
		if err := affectedOne(res, err, "delete product "+key, ota.NotFound("product", key)); err != nil {
			return err
		}
		// Modules and devices go with the product (ON DELETE CASCADE); tasks
		// with their jobs.
		for _, q := range []string{"DELETE FROM jobs WHERE tenant_id = ? AND product_key = ?", "DELETE FROM packages WHERE tenant_id = ? AND product_key = ?"} {
			if _, err := tx.ExecContext(ctx, q, tenantID, key); err != nil {
				return err
			}
		}
		return nil
	})
	return dbError(err, "delete product "+key)
}

func (s *Store) CountDeviceVersions(ctx context.Context, tenantID, productKey, module string, limit int) ([]store.VersionCount, error) {
	if module == "" {
		module = ota.DefaultModule
	}
	rows, err := s.read.QueryContext(ctx, `SELECT COALESCE(v.version, ''), count(*) FROM devices d
		LEFT JOIN device_versions v ON v.product_key = d.product_key AND v.device_name = d.name AND v.module = ?
		WHERE d.tenant_id = ? AND d.product_key = ? GROUP BY 1 ORDER BY 2 DESC, 1 LIMIT ?`,
		module, tenantID, productKey, sqlcommon.Limit(limit, 0))
	if err != nil {
		return nil, dbError(err, "count device versions")
	}
	defer rows.Close()
	var out []store.VersionCount
	for rows.Next() {
		var vc store.VersionCount
		if err := rows.Scan(&vc.Version, &vc.Devices); err != nil {
			return nil, dbError(err, "count device versions")
		}
		out = append(out, vc)
	}
	if err := rows.Err(); err != nil {
		return nil, dbError(err, "count device versions")
	}
	return out, nil
}
