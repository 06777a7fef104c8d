package management

import (
	"embed"
	"encoding/json"
	"fmt"
	"io/fs"
	"net/http"
	"sort"
	"sync"
)

// The OpenAPI document is written by hand, one fragment per route file:
// openapi/base.json holds the info, security and shared components; every
// other openapi/*.json holds {"paths": …, "components": …} for its routes and
// is merged in. A new route file adds its own fragment (e.g. openapi/jobs.json).
//
//go:embed openapi/*.json
var openapiFS embed.FS

// openapiDoc is the merged document, built once.
var openapiDoc = sync.OnceValues(func() ([]byte, error) {
	doc, err := mergeOpenAPI(openapiFS)
	if err != nil {
		return nil, err
	}
	return json.MarshalIndent(doc, "", "  ")
})

// OpenAPIDocument is the management API's OpenAPI document, as served at
// /api/v1/openapi.json (`updraft openapi` prints it; CI lints it).
func OpenAPIDocument() ([]byte, error) { return openapiDoc() }

func (a *API) registerDocs(mux *http.ServeMux) {
	a.publicRoute(mux, "GET /api/v1/openapi.json", func(w http.ResponseWriter, r *http.Request) {
		body, err := openapiDoc()
		if err != nil {
			a.log.Error("management: building the OpenAPI document", "err", err)
			http.Error(w, "the OpenAPI document is broken", http.StatusInternalServerError)
			return
		}
		w.Header().Set("Content-Type", "application/json")
		_, _ = w.Write(body)
	})
}

type object = map[string]any

// mergeOpenAPI merges every fragment into base.json. A path or component
// defined twice is an error, so two route files cannot silently clash.
func mergeOpenAPI(fsys fs.FS) (object, error) {
	var doc object
	if err := readJSON(fsys, "openapi/base.json", &doc); err != nil {
		return nil, err
	}
	names, err := fs.Glob(fsys, "openapi/*.json")
	if err != nil {
		return nil, err
	}
	sort.Strings(names)
	for _, name := range names {
		if name == "openapi/base.json" {
			continue
		}
		var frag object
		if err := readJSON(fsys, name, &frag); err != nil {
			return nil, err
		}
		for key := range frag {
			if key != "paths" && key != "components" {
				return nil, fmt.Errorf("%s: only paths and components may be in a fragment, found %q", name, key)
			}
		}
		if err := mergeSection(doc, frag, "paths", name); err != nil {
			return nil, err
		}
		comps, _ := frag["components"].(object)
		for kind := range comps {
			if err := mergeSection(subObject(doc, "components"), comps, kind, name+": components"); err != nil {
				return nil, err
			}
		}
	}
	return doc, nil
}

func readJSON(fsys fs.FS, name string, v any) error {
	b, err := fs.ReadFile(fsys, name)
	if err != nil {
		return err
	}
	if err := json.Unmarshal(b, v); err != nil {
		return fmt.Errorf("%s: %w", name, err)
	}
	return nil
}

// mergeSection copies src[key]'s entries into dst[key].
func mergeSection(dst, src object, key, where string) error {
	from, ok := src[key].(object)
	if !ok {
		if _, present := src[key]; present {
			return fmt.Errorf("%s: %s must be an object", where, key)
		}
		return nil
	}
	into := subObject(dst, key)
	for name, v := range from {
		if _, dup := into[name]; dup {
			return fmt.Errorf("%s: %s %q is already defined", where, key, name)
		}
		into[name] = v
	}
	return nil
}

func subObject(o object, key string) object {
	sub, ok := o[key].(object)
	if !ok {
		sub = object{}
		o[key] = sub
	}
	return sub
}
