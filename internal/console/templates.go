package console

import (
	"fmt"
	"html/template"
	"strings"
	"time"

	"github.com/updraft-ota/updraft/internal/ota"
)

var funcs = template.FuncMap{
	"when": func(t time.Time) string {
		if t.IsZero() {
			return "—"
		}
		return t.UTC().Format("2006-01-02 15:04:05") + " UTC"
	},
	"add":    func(a, b float64) float64 { return a + b },
	"mulf":   func(a float64, b int) float64 { return a * float64(b) },
	"bytes":  humanBytes,
	"active": func(s ota.JobState) bool { return !s.Terminal() },
	"str":    func(v any) string { return fmt.Sprint(v) },
	"split":  strings.Fields,
	"args":   func(v ...any) []any { return v },
	"short": func(s string, n int) string {
		if len(s) <= n {
			return s
		}
		return s[:n] + "…"
	},
	// ferr is the error message of a form field ("" when none).
	"ferr": func(errs map[string]string, field string) string { return errs[field] },
}

func humanBytes(n int64) string {
	const unit = 1024
	if n < unit {
		return fmt.Sprintf("%d B", n)
	}
	div, exp := int64(unit), 0
	for m := n / unit; m >= unit; m /= unit {
		div *= unit
		exp++
	}
	return fmt.Sprintf("%.1f %ciB", float64(n)/float64(div), "KMGTPE"[exp])
}

// pageNames are the templates/<name>.html files; each is parsed with the
// layout.
var pageNames = []string{"signin", "error", "overview", "products", "devices", "device", "packages", "package", "jobs", "jobform", "job"}

func parsePages() map[string]*template.Template {
	out := map[string]*template.Template{}
	for _, name := range pageNames {
		out[name] = template.Must(template.New(name).Funcs(funcs).ParseFS(templateFS, "templates/layout.html", "templates/"+name+".html"))
	}
	return out
}
