package aliyuniot

// The OTA module operations (spec §2.3 "Modules"): CreateOTAModule,
// UpdateOTAModule, DeleteOTAModule, ListOTAModuleByProduct, onto the
// service's module use cases.

import (
	"context"

	"github.com/updraft-ota/updraft/internal/ota"
	"github.com/updraft-ota/updraft/internal/store"
)

// Alibaba's module limits: ModuleName 1–64 of [A-Za-z0-9._-] (the service's
// own rule, ota.CheckModuleName, with the same bound), AliasName 1–64, Desc ≤100.
const (
	maxModuleNameLen  = 64
	maxModuleAliasLen = 64
	maxModuleDescLen  = ota.AlibabaMaxDescriptionLen
	modulePage        = 200 // store page while listing a product's modules
)

func (a *API) moduleOperations(m map[string]action) {
	m["CreateOTAModule"] = a.createOTAModule
	m["UpdateOTAModule"] = a.updateOTAModule
	m["DeleteOTAModule"] = a.deleteOTAModule
	m["ListOTAModuleByProduct"] = a.listOTAModuleByProduct
}

// moduleIn reads ProductKey, ModuleName and, for create and update,
// AliasName and Desc within Alibaba's limits.
func moduleIn(c *call, withAlias bool) (ota.Module, error) {
	var m ota.Module
	var err error
	if m.ProductKey, err = c.q.required("ProductKey"); err != nil {
		return m, err
	}
	if m.Name, err = c.q.required("ModuleName"); err != nil {
		return m, err
	}
	if len(m.Name) > maxModuleNameLen {
		return m, ota.Invalid("ModuleName", "ModuleName may have at most %d characters, got %d", maxModuleNameLen, len(m.Name))
	}
	if !withAlias {
		return m, nil
	}
	if m.Alias, err = c.q.required("AliasName"); err != nil {
		return m, err
	}
	if n := len([]rune(m.Alias)); n > maxModuleAliasLen {
		return m, ota.Invalid("AliasName", "AliasName may have at most %d characters, got %d", maxModuleAliasLen, n)
	}
	m.Description = c.q.str("Desc")
	if n := len([]rune(m.Description)); n > maxModuleDescLen {
		return m, ota.Invalid("Desc", "Desc may have at most %d characters, got %d", maxModuleDescLen, n)
	}
	return m, nil
}

func (a *API) createOTAModule(ctx context.Context, c *call) (any, error) {
	m, err := moduleIn(c, true)
	if err != nil {
		return nil, err
	}
	_, err = a.svc.CreateModule(ctx, c.p, m)
	return nil, err
}

func (a *API) updateOTAModule(ctx context.Context, c *call) (any, error) {
	m, err := moduleIn(c, true)
	if err != nil {
		return nil, err
	}
	_, err = a.svc.UpdateModule(ctx, c.p, m)
	return nil, err
}

func (a *API) deleteOTAModule(ctx context.Context, c *call) (any, error) {
	m, err := moduleIn(c, false)
	if err != nil {
		return nil, err
	}
	return nil, a.svc.DeleteModule(ctx, c.p, m.ProductKey, m.Name)
}

// ModuleDTO is ListOTAModuleByProduct's OtaModuleDTO.
type ModuleDTO struct {
	ProductKey  string `json:"ProductKey"`
	ModuleName  string `json:"ModuleName"`
	AliasName   string `json:"AliasName"`
	Desc        string `json:"Desc"`
	GmtCreate   string `json:"GmtCreate"`
	GmtModified string `json:"GmtModified"`
}

func moduleDTO(m ota.Module) ModuleDTO {
	return ModuleDTO{ProductKey: m.ProductKey, ModuleName: m.Name, AliasName: m.Alias, Desc: m.Description,
		GmtCreate: utc(m.CreatedAt), GmtModified: utc(m.CreatedAt)}
}

// listOTAModuleByProduct lists the default module and every custom one (the
// API has no paging; a product's modules are few).
func (a *API) listOTAModuleByProduct(ctx context.Context, c *call) (any, error) {
	pk, err := c.q.required("ProductKey")
	if err != nil {
		return nil, err
	}
	def, err := a.svc.GetModule(ctx, c.p, pk, ota.DefaultModule)
	if err != nil {
		return nil, err
	}
	out := []ModuleDTO{moduleDTO(def)}
	for offset := 0; ; {
		page, _, err := a.svc.ListModules(ctx, c.p, pk, store.Page{Limit: modulePage, Offset: offset})
		if err != nil {
			return nil, err
		}
		for _, m := range page {
			out = append(out, moduleDTO(m))
		}
		if len(page) < modulePage {
			break
		}
		offset += len(page)
	}
	return map[string]any{"Data": out}, nil
}
