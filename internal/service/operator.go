package service

import (
	"context"

	"github.com/updraft-ota/updraft/internal/ota"
	"github.com/updraft-ota/updraft/internal/store"
)

// DeleteDevice removes a device. Its unfinished tasks are canceled first, so
// that no job keeps waiting for a device that no longer exists; finished
// tasks stay in their jobs' history.
func (s *Service) DeleteDevice(ctx context.Context, p Principal, productKey, name string) error {
	if _, err := s.GetDevice(ctx, p, productKey, name); err != nil {
		return err
	}
	if _, err := s.updateTasks(ctx, store.TaskFilter{TenantID: p.TenantID, ProductKey: productKey,
		Devices: []string{name}, States: ota.ActiveTaskStates},
		store.TaskUpdate{State: ota.TaskCanceled, Reason: ota.ReasonCanceled, Detail: "the device was deleted", Now: s.clock.Now()}); err != nil {
		return err
	}
	if err := s.store.DeleteDevice(s.audited(ctx, p, p.TenantID, "device.delete", "device", productKey+"/"+name, ""), productKey, name); err != nil {
		return notFoundAs(err, "device", name)
	}
	return nil
}

// SetDeviceGroups replaces a device's groups (none: groups empty). Jobs
// created afterwards see the new groups; existing tasks are not moved.
func (s *Service) SetDeviceGroups(ctx context.Context, p Principal, productKey, name string, groups []string) (ota.Device, error) {
	d, err := s.GetDevice(ctx, p, productKey, name)
	if err != nil {
		return ota.Device{}, err
	}
	d.Groups = groups
	if err := d.Validate(); err != nil {
		return ota.Device{}, err
	}
	if err := s.store.SetDeviceGroups(s.audited(ctx, p, p.TenantID, "device.update", "device", productKey+"/"+name, "groups"), productKey, name, groups); err != nil {
		return ota.Device{}, notFoundAs(err, "device", name)
	}
	return s.GetDevice(ctx, p, productKey, name)
}

// SetDeviceLabels replaces a device's attributes, its tags, or both (a nil
// map leaves that one as it is; an empty map clears it). Jobs targeting
// labels see the new ones from then on: a dynamic job takes the device when
// it next reports its version; existing tasks are not moved.
func (s *Service) SetDeviceLabels(ctx context.Context, p Principal, productKey, name string, attributes, tags map[string]string) (ota.Device, error) {
	d, err := s.GetDevice(ctx, p, productKey, name)
	if err != nil {
		return ota.Device{}, err
	}
	if attributes != nil {
		d.Attributes = attributes
	}
	if tags != nil {
		d.Tags = tags
	}
	if err := d.Validate(); err != nil {
		return ota.Device{}, err
	}
	if err := s.store.SetDeviceLabels(s.audited(ctx, p, p.TenantID, "device.update", "device", productKey+"/"+name, "labels"), productKey, name, d.Attributes, d.Tags); err != nil {
		return ota.Device{}, notFoundAs(err, "device", name)
	}
	return s.GetDevice(ctx, p, productKey, name)
}

// DeleteProduct removes a product with its modules, devices, packages (and
// their files, unless another package shares them) and finished jobs. It is
// refused while one of its jobs is unfinished: cancel the job first.
func (s *Service) DeleteProduct(ctx context.Context, p Principal, key string) error {
	if _, err := s.GetProduct(ctx, p, key); err != nil {
		return err
	}
	var pkgs []ota.Package
	for page := (store.Page{Limit: 1000}); ; page.Offset += page.Limit {
		batch, _, err := s.store.ListPackages(ctx, store.PackageFilter{TenantID: p.TenantID, ProductKey: key}, page)
		if err != nil {
			return err
		}
		pkgs = append(pkgs, batch...)
		if len(batch) < page.Limit {
			break
		}
	}
	if err := s.store.DeleteProduct(s.audited(ctx, p, p.TenantID, "product.delete", "product", key, ""), p.TenantID, key); err != nil {
		return notFoundAs(err, "product", key)
	}
	for _, pkg := range pkgs {
		if pkg.External {
			continue
		}
		refs, err := s.store.CountPackageRefs(ctx, pkg.Bucket, pkg.Key)
		if err != nil {
			s.log.Error("product deleted but a package file's reference count failed; the file was kept",
				"product", key, "package", pkg.ID, "bucket", pkg.Bucket, "key", pkg.Key, "err", err)
			continue
		}
		if refs == 0 {
			s.removeBlob(ctx, pkg.Bucket, pkg.Key)
		}
	}
	return nil
}
