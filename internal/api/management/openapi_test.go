package management

import (
	"slices"
	"sort"
	"strings"
	"testing"
	"testing/fstest"

	"github.com/updraft-ota/updraft/internal/api/device"
)

// TestOpenAPICoversRoutes walks the route table: every route must be in the
// OpenAPI document, and every operation in the document must be a route.
func TestOpenAPICoversRoutes(t *testing.T) {
	a := newAPI(nil, Options{})
	a.handler()
	if len(a.routes) == 0 {
		t.Fatal("no routes registered")
	}
	doc, err := mergeOpenAPI(openapiFS)
	if err != nil {
		t.Fatal(err)
	}
	paths, _ := doc["paths"].(object)

	routes := map[string]bool{}
	for _, pattern := range append(slices.Clone(a.routes), device.Routes...) {
		method, path, ok := strings.Cut(pattern, " ")
		if !ok {
			t.Errorf("route %q has no method", pattern)
			continue
		}
		path = strings.ReplaceAll(path, "...}", "}") // Go's {key...} is OpenAPI's {key}
		routes[method+" "+path] = true
		item, _ := paths[path].(object)
		if _, ok := item[strings.ToLower(method)].(object); !ok {
			t.Errorf("route %s is not in the OpenAPI document: add it to openapi/<its file>.json", pattern)
		}
	}
	var documented []string
	for path, v := range paths {
		item, _ := v.(object)
		for method := range item {
			switch method {
			case "get", "put", "post", "delete", "patch", "head", "options":
				documented = append(documented, strings.ToUpper(method)+" "+path)
			}
		}
	}
	sort.Strings(documented)
	for _, op := range documented {
		if !routes[op] {
			t.Errorf("the OpenAPI document describes %s, which is not a route", op)
		}
	}
}

// TestOpenAPIRefsResolve: every $ref points at a defined component.
func TestOpenAPIRefsResolve(t *testing.T) {
	doc, err := mergeOpenAPI(openapiFS)
	if err != nil {
		t.Fatal(err)
	}
	var walk func(v any)
	walk = func(v any) {
		switch v := v.(type) {
		case object:
			if ref, ok := v["$ref"].(string); ok {
				var cur any = doc
				for _, seg := range strings.Split(strings.TrimPrefix(ref, "#/"), "/") {
					m, _ := cur.(object)
					cur = m[seg]
				}
				if cur == nil {
					t.Errorf("unresolved $ref %s", ref)
				}
			}
			for _, x := range v {
				walk(x)
			}
		case []any:
			for _, x := range v {
				walk(x)
			}
		}
	}
	walk(doc)
}

// TestOpenAPIMergeRefusesClashes: two fragments may not define the same path
// or component.
func TestOpenAPIMergeRefusesClashes(t *testing.T) {
	base := `{"openapi":"3.0.3","paths":{},"components":{"schemas":{"Error":{}}}}`
	for name, frag := range map[string]string{
		"path":   `{"paths":{"/x":{}}}`,
		"schema": `{"components":{"schemas":{"Error":{}}}}`,
		"extra":  `{"info":{}}`,
	} {
		fsys := fstest.MapFS{
			"openapi/base.json": {Data: []byte(base)},
			"openapi/a.json":    {Data: []byte(`{"paths":{"/x":{}}}`)},
			"openapi/b.json":    {Data: []byte(frag)},
		}
		if name == "schema" || name == "extra" {
			delete(fsys, "openapi/a.json")
		}
		if _, err := mergeOpenAPI(fsys); err == nil {
			t.Errorf("%s clash: merged without error", name)
		}
	}
}
