package management

import (
	"net/http"

	"github.com/updraft-ota/updraft/apiv1"
	"github.com/updraft-ota/updraft/internal/api/httpx"
	"github.com/updraft-ota/updraft/internal/ota"
	"github.com/updraft-ota/updraft/internal/service"
	"github.com/updraft-ota/updraft/internal/store"
)

func (a *API) registerDevices(mux *http.ServeMux) {
	a.route(mux, "POST /api/v1/products/{product}/devices", a.createDevice)
	a.route(mux, "GET /api/v1/products/{product}/devices", a.listDevices)
	a.route(mux, "GET /api/v1/products/{product}/devices/{device}", a.getDevice)
	a.route(mux, "PATCH /api/v1/products/{product}/devices/{device}", a.updateDevice)
	a.route(mux, "DELETE /api/v1/products/{product}/devices/{device}", a.deleteDevice)
}

// updateDevice changes what an operator may change of a device: its groups,
// attributes and tags.
func (a *API) updateDevice(w http.ResponseWriter, r *http.Request, p service.Principal) error {
	var in apiv1.DeviceUpdate
	if err := httpx.DecodeJSON(w, r, &in, a.opts.MaxJSONBody); err != nil {
		return err
	}
	if in.Groups == nil && in.Attributes == nil && in.Tags == nil {
		return ota.Invalid("groups", "give groups, attributes or tags: the device's new ones ([] or {} for none)")
	}
	product, name := r.PathValue("product"), r.PathValue("device")
	var attrs, tags map[string]string
	if in.Attributes != nil {
		attrs = emptyMapIfNil(*in.Attributes)
	}
	if in.Tags != nil {
		tags = emptyMapIfNil(*in.Tags)
	}
	// Check the labels before the groups change, so a bad label changes nothing.
	if err := ota.CheckLabels("attributes", attrs); err != nil {
		return err
	}
	if err := ota.CheckLabels("tags", tags); err != nil {
		return err
	}
	d, err := a.svc.GetDevice(r.Context(), p, product, name)
	if err != nil {
		return err
	}
	if in.Groups != nil {
		if d, err = a.svc.SetDeviceGroups(r.Context(), p, product, name, *in.Groups); err != nil {
			return err
		}
	}
	if attrs != nil || tags != nil {
		if d, err = a.svc.SetDeviceLabels(r.Context(), p, product, name, attrs, tags); err != nil {
			return err
		}
	}
	httpx.WriteJSON(w, http.StatusOK, deviceFromOTA(d))
	return nil
}

func (a *API) deleteDevice(w http.ResponseWriter, r *http.Request, p service.Principal) error {
	if err := a.svc.DeleteDevice(r.Context(), p, r.PathValue("product"), r.PathValue("device")); err != nil {
		return err
	}
	w.WriteHeader(http.StatusNoContent)
	return nil
}

func (a *API) createDevice(w http.ResponseWriter, r *http.Request, p service.Principal) error {
	var in apiv1.DeviceCreate
	if err := httpx.DecodeJSON(w, r, &in, a.opts.MaxJSONBody); err != nil {
		return err
	}
	d, err := a.svc.CreateDevice(r.Context(), p, ota.Device{
		ProductKey: r.PathValue("product"), Name: in.Name, Secret: in.Secret, Groups: in.Groups,
		Attributes: in.Attributes, Tags: in.Tags,
	})
	if err != nil {
		return err
	}
	out := deviceFromOTA(d)
	out.Secret = d.Secret // the one response that carries it
	httpx.WriteJSON(w, http.StatusCreated, out)
	return nil
}

// listDevices filters by ?group= (repeatable: any of them) and by
// ?module=&version= (repeatable version: any of them).
func (a *API) listDevices(w http.ResponseWriter, r *http.Request, p service.Principal) error {
	pg, err := page(r)
	if err != nil {
		return err
	}
	q := r.URL.Query()
	f := store.DeviceFilter{ProductKey: r.PathValue("product"), Groups: q["group"], Module: q.Get("module"), Versions: q["version"]}
	if len(f.Versions) > 0 && f.Module == "" {
		f.Module = ota.DefaultModule
	}
	items, total, err := a.svc.ListDevices(r.Context(), p, f, pg)
	if err != nil {
		return err
	}
	httpx.WriteJSON(w, http.StatusOK, newList(items, total, deviceFromOTA))
	return nil
}

func (a *API) getDevice(w http.ResponseWriter, r *http.Request, p service.Principal) error {
	d, err := a.svc.GetDevice(r.Context(), p, r.PathValue("product"), r.PathValue("device"))
	if err != nil {
		return err
	}
	httpx.WriteJSON(w, http.StatusOK, deviceFromOTA(d))
	return nil
}
