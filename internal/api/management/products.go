package management

import (
	"net/http"

	"github.com/updraft-ota/updraft/apiv1"
	"github.com/updraft-ota/updraft/internal/api/httpx"
	"github.com/updraft-ota/updraft/internal/ota"
	"github.com/updraft-ota/updraft/internal/service"
)

func (a *API) registerProducts(mux *http.ServeMux) {
	a.route(mux, "POST /api/v1/products", a.createProduct)
	a.route(mux, "GET /api/v1/products", a.listProducts)
	a.route(mux, "GET /api/v1/products/{product}", a.getProduct)
	a.route(mux, "DELETE /api/v1/products/{product}", a.deleteProduct)

	a.route(mux, "POST /api/v1/products/{product}/modules", a.createModule)
	a.route(mux, "GET /api/v1/products/{product}/modules", a.listModules)
	a.route(mux, "GET /api/v1/products/{product}/modules/{module}", a.getModule)
	a.route(mux, "PATCH /api/v1/products/{product}/modules/{module}", a.updateModule)
	a.route(mux, "DELETE /api/v1/products/{product}/modules/{module}", a.deleteModule)
}

func (a *API) createProduct(w http.ResponseWriter, r *http.Request, p service.Principal) error {
	var in apiv1.ProductCreate
	if err := httpx.DecodeJSON(w, r, &in, a.opts.MaxJSONBody); err != nil {
		return err
	}
	prod, err := a.svc.CreateProduct(r.Context(), p, ota.Product{Key: in.Key, Name: in.Name, Description: in.Description,
		Protocol: ota.Protocol(in.Protocol), Auth: ota.AuthMode(in.Auth)})
	if err != nil {
		return err
	}
	httpx.WriteJSON(w, http.StatusCreated, productFromOTA(prod))
	return nil
}

func (a *API) listProducts(w http.ResponseWriter, r *http.Request, p service.Principal) error {
	pg, err := page(r)
	if err != nil {
		return err
	}
	items, total, err := a.svc.ListProducts(r.Context(), p, pg)
	if err != nil {
		return err
	}
	httpx.WriteJSON(w, http.StatusOK, newList(items, total, productFromOTA))
	return nil
}

func (a *API) getProduct(w http.ResponseWriter, r *http.Request, p service.Principal) error {
	prod, err := a.svc.GetProduct(r.Context(), p, r.PathValue("product"))
	if err != nil {
		return err
	}
	httpx.WriteJSON(w, http.StatusOK, productFromOTA(prod))
	return nil
}

func (a *API) createModule(w http.ResponseWriter, r *http.Request, p service.Principal) error {
	var in apiv1.ModuleCreate
	if err := httpx.DecodeJSON(w, r, &in, a.opts.MaxJSONBody); err != nil {
		return err
	}
	m, err := a.svc.CreateModule(r.Context(), p, ota.Module{
		ProductKey: r.PathValue("product"), Name: in.Name, Alias: in.Alias, Description: in.Description,
	})
	if err != nil {
		return err
	}
	httpx.WriteJSON(w, http.StatusCreated, moduleFromOTA(m))
	return nil
}

func (a *API) listModules(w http.ResponseWriter, r *http.Request, p service.Principal) error {
	pg, err := page(r)
	if err != nil {
		return err
	}
	items, total, err := a.svc.ListModules(r.Context(), p, r.PathValue("product"), pg)
	if err != nil {
		return err
	}
	httpx.WriteJSON(w, http.StatusOK, newList(items, total, moduleFromOTA))
	return nil
}

func (a *API) getModule(w http.ResponseWriter, r *http.Request, p service.Principal) error {
	m, err := a.svc.GetModule(r.Context(), p, r.PathValue("product"), r.PathValue("module"))
	if err != nil {
		return err
	}
	httpx.WriteJSON(w, http.StatusOK, moduleFromOTA(m))
	return nil
}

func (a *API) updateModule(w http.ResponseWriter, r *http.Request, p service.Principal) error {
	var in apiv1.ModuleUpdate
	if err := httpx.DecodeJSON(w, r, &in, a.opts.MaxJSONBody); err != nil {
		return err
	}
	m, err := a.svc.GetModule(r.Context(), p, r.PathValue("product"), r.PathValue("module"))
	if err != nil {
		return err
	}
	if in.Alias != nil {
		m.Alias = *in.Alias
	}
	if in.Description != nil {
		m.Description = *in.Description
	}
	if m, err = a.svc.UpdateModule(r.Context(), p, m); err != nil {
		return err
	}
	httpx.WriteJSON(w, http.StatusOK, moduleFromOTA(m))
	return nil
}

// deleteProduct removes the product and all of it; refused (409) while one
// of its jobs is unfinished.
func (a *API) deleteProduct(w http.ResponseWriter, r *http.Request, p service.Principal) error {
	if err := a.svc.DeleteProduct(r.Context(), p, r.PathValue("product")); err != nil {
		return err
	}
	w.WriteHeader(http.StatusNoContent)
	return nil
}

func (a *API) deleteModule(w http.ResponseWriter, r *http.Request, p service.Principal) error {
	if err := a.svc.DeleteModule(r.Context(), p, r.PathValue("product"), r.PathValue("module")); err != nil {
		return err
	}
	w.WriteHeader(http.StatusNoContent)
	return nil
}
