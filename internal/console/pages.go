package console

import (
	"errors"
	"io"
	"mime/multipart"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"strings"

	"github.com/updraft-ota/updraft/internal/api/httpx"
	"github.com/updraft-ota/updraft/internal/ota"
	"github.com/updraft-ota/updraft/internal/service"
	"github.com/updraft-ota/updraft/internal/store"
)

func urlQueryEscape(s string) string { return url.QueryEscape(s) }

// pageSize is how many rows a listing shows per page.
const pageSize = 50

// pager reads ?page= (1-based).
func pager(r *http.Request) (store.Page, int) {
	n, err := strconv.Atoi(r.URL.Query().Get("page"))
	if err != nil || n < 1 {
		n = 1
	}
	return store.Page{Limit: pageSize, Offset: (n - 1) * pageSize}, n
}

// pages is the paging links of a listing.
type pages struct {
	Page, Last int
	Total      int64
	Prev, Next string
}

func pagesOf(r *http.Request, n int, total int64) pages {
	last := int((total + pageSize - 1) / pageSize)
	if last < 1 {
		last = 1
	}
	link := func(p int) string {
		q := r.URL.Query()
		q.Set("page", strconv.Itoa(p))
		return r.URL.Path + "?" + q.Encode()
	}
	pg := pages{Page: n, Last: last, Total: total}
	if n > 1 {
		pg.Prev = link(n - 1)
	}
	if n < last {
		pg.Next = link(n + 1)
	}
	return pg
}

// overview: the fleet at a glance.
func (c *Console) overview(w http.ResponseWriter, r *http.Request, s *session) error {
	ctx := r.Context()
	yes, no := true, false
	_, online, err := c.svc.ListDevices(ctx, s.p, store.DeviceFilter{Online: &yes}, store.Page{Limit: 1})
	if err != nil {
		return err
	}
	_, offline, err := c.svc.ListDevices(ctx, s.p, store.DeviceFilter{Online: &no}, store.Page{Limit: 1})
	if err != nil {
		return err
	}
	running, nRunning, err := c.svc.ListJobs(ctx, s.p, store.JobFilter{States: []ota.JobState{ota.JobRunning}}, store.Page{Limit: 10})
	if err != nil {
		return err
	}
	failures, err := c.recentFailures(r, s, store.TaskFilter{}, 10)
	if err != nil {
		return err
	}
	products, nProducts, err := c.svc.ListProducts(ctx, s.p, store.Page{Limit: 20})
	if err != nil {
		return err
	}
	type dist struct {
		Product ota.Product
		Chart   barChart
	}
	var dists []dist
	for _, p := range products {
		counts, err := c.svc.DeviceVersionCounts(ctx, s.p, p.Key, "", 12)
		if err != nil {
			return err
		}
		dists = append(dists, dist{Product: p, Chart: versionChart(counts)})
	}
	c.render(w, r, s, http.StatusOK, "overview", "Overview", map[string]any{
		"Online": online, "Offline": offline, "Running": running, "RunningTotal": nRunning,
		"Failures": failures, "Dists": dists, "MoreProducts": nProducts > int64(len(products)),
	})
	return nil
}

// recentFailures returns the newest failed tasks matching f, newest first.
// Tasks list in id order, so the newest are the last page.
func (c *Console) recentFailures(r *http.Request, s *session, f store.TaskFilter, n int) ([]ota.Task, error) {
	f.States = []ota.TaskState{ota.TaskFailed}
	_, total, err := c.svc.ListTasks(r.Context(), s.p, f, store.Page{Limit: 1})
	if err != nil {
		return nil, err
	}
	off := int(total) - n
	if off < 0 {
		off = 0
	}
	tasks, _, err := c.svc.ListTasks(r.Context(), s.p, f, store.Page{Limit: n, Offset: off})
	if err != nil {
		return nil, err
	}
	slices.Reverse(tasks)
	return tasks, nil
}

// products lists products and their modules.
func (c *Console) products(w http.ResponseWriter, r *http.Request, s *session) error {
	pg, n := pager(r)
	products, total, err := c.svc.ListProducts(r.Context(), s.p, pg)
	if err != nil {
		return err
	}
	type row struct {
		Product ota.Product
		Modules []ota.Module
	}
	rows := make([]row, 0, len(products))
	for _, p := range products {
		mods, _, err := c.svc.ListModules(r.Context(), s.p, p.Key, store.Page{Limit: ota.MaxCustomModules + 1})
		if err != nil {
			return err
		}
		rows = append(rows, row{Product: p, Modules: mods})
	}
	c.render(w, r, s, http.StatusOK, "products", "Products", map[string]any{"Rows": rows, "Pages": pagesOf(r, n, total)})
	return nil
}

// devices lists devices, filtered in the store.
func (c *Console) devices(w http.ResponseWriter, r *http.Request, s *session) error {
	q := r.URL.Query()
	f := store.DeviceFilter{ProductKey: q.Get("product"), NamePrefix: strings.TrimSpace(q.Get("q")), Module: q.Get("module")}
	if g := strings.TrimSpace(q.Get("group")); g != "" {
		f.Groups = []string{g}
	}
	if v := strings.TrimSpace(q.Get("version")); v != "" {
		f.Versions = []string{v}
	}
	switch q.Get("online") {
	case "yes":
		t := true
		f.Online = &t
	case "no":
		t := false
		f.Online = &t
	}
	pg, n := pager(r)
	devs, total, err := c.svc.ListDevices(r.Context(), s.p, f, pg)
	if err != nil {
		return err
	}
	products, _, err := c.svc.ListProducts(r.Context(), s.p, store.Page{Limit: 100})
	if err != nil {
		return err
	}
	c.render(w, r, s, http.StatusOK, "devices", "Devices", map[string]any{
		"Devices": devs, "Products": products, "Q": q, "Pages": pagesOf(r, n, total),
	})
	return nil
}

// device shows one device: its versions per module and its task history.
func (c *Console) device(w http.ResponseWriter, r *http.Request, s *session) error {
	product, name := r.PathValue("product"), r.PathValue("name")
	d, err := c.svc.GetDevice(r.Context(), s.p, product, name)
	if err != nil {
		return err
	}
	pg, n := pager(r)
	tasks, total, err := c.svc.ListTasks(r.Context(), s.p, store.TaskFilter{ProductKey: product, Devices: []string{name}}, pg)
	if err != nil {
		return err
	}
	modules := make([]string, 0, len(d.Versions))
	for m := range d.Versions {
		modules = append(modules, m)
	}
	slices.Sort(modules)
	c.render(w, r, s, http.StatusOK, "device", "Device "+name, map[string]any{
		"Device": d, "Modules": modules, "Tasks": tasks, "Pages": pagesOf(r, n, total),
	})
	return nil
}

// packages lists packages and offers the upload form.
func (c *Console) packages(w http.ResponseWriter, r *http.Request, s *session) error {
	pg, n := pager(r)
	q := r.URL.Query()
	pkgs, total, err := c.svc.ListPackages(r.Context(), s.p, store.PackageFilter{ProductKey: q.Get("product")}, pg)
	if err != nil {
		return err
	}
	products, _, err := c.svc.ListProducts(r.Context(), s.p, store.Page{Limit: 100})
	if err != nil {
		return err
	}
	c.render(w, r, s, http.StatusOK, "packages", "Packages", map[string]any{
		"Packages": pkgs, "Products": products, "Pages": pagesOf(r, n, total), "MaxSize": int64(ota.MaxPackageSize),
	})
	return nil
}

// uploadPackage streams a multipart form (metadata fields first, the file
// last, as the form lays them out) into the service: the file is never
// buffered. Answers a redirect to the new package (the script follows it).
func (c *Console) uploadPackage(w http.ResponseWriter, r *http.Request, s *session, headerToken bool) error {
	r.Body = http.MaxBytesReader(w, r.Body, ota.MaxPackageSize+64<<10)
	mr, err := r.MultipartReader()
	if err != nil {
		return ota.Invalid("file", "send the package as multipart/form-data")
	}
	fields := map[string]string{}
	var file *multipart.Part
	for file == nil {
		part, err := mr.NextPart()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			return ota.Invalid("file", "malformed upload: %v", err)
		}
		name := part.FormName()
		if !headerToken && len(fields) == 0 && name != CSRFField {
			return errCSRF
		}
		if name == "file" {
			file = part
			break
		}
		v, err := io.ReadAll(io.LimitReader(part, 8<<10))
		if err != nil {
			return ota.Invalid(name, "malformed upload: %v", err)
		}
		fields[name] = string(v)
		if name == CSRFField && !headerToken && fields[CSRFField] != s.csrf {
			return errCSRF
		}
	}
	if file == nil || file.FileName() == "" {
		return ota.Invalid("file", "choose the package file to upload")
	}
	method, err := ota.ParseSignMethod(fields["sign_method"])
	if err != nil {
		return err
	}
	in := ota.Package{
		ProductKey: fields["product"], Module: strings.TrimSpace(fields["module"]), Kind: ota.PackageKind(fields["kind"]),
		Name: strings.TrimSpace(fields["name"]), Version: strings.TrimSpace(fields["version"]),
		SourceVersions: splitList(fields["source_versions"]), Differential: fields["differential"] == "on",
		Description: fields["description"], SignMethod: method, Sign: strings.TrimSpace(fields["sign"]),
		NeedVerify: fields["need_verify"] == "on",
	}
	pkg, err := c.svc.CreatePackage(r.Context(), s.p, in, file.FileName(), httpx.Upload(r, file))
	if err != nil {
		return err
	}
	http.Redirect(w, r, "/packages/"+url.PathEscape(pkg.ID), http.StatusSeeOther)
	return nil
}

func (c *Console) packageDetail(w http.ResponseWriter, r *http.Request, s *session) error {
	pkg, err := c.svc.GetPackage(r.Context(), s.p, r.PathValue("id"))
	if err != nil {
		return err
	}
	jobs, _, err := c.svc.ListJobs(r.Context(), s.p, store.JobFilter{PackageID: pkg.ID}, store.Page{Limit: 20})
	if err != nil {
		return err
	}
	c.render(w, r, s, http.StatusOK, "package", "Package "+pkg.Name, map[string]any{"Package": pkg, "Jobs": jobs})
	return nil
}

func (c *Console) deletePackage(w http.ResponseWriter, r *http.Request, s *session) error {
	if err := c.svc.DeletePackage(r.Context(), s.p, r.PathValue("id")); err != nil {
		return err
	}
	http.Redirect(w, r, "/packages", http.StatusSeeOther)
	return nil
}

// jobs lists jobs, newest first.
func (c *Console) jobs(w http.ResponseWriter, r *http.Request, s *session) error {
	pg, n := pager(r)
	var f store.JobFilter
	if st := r.URL.Query().Get("state"); st != "" {
		if err := ota.CheckJobState("state", ota.JobState(st)); err != nil {
			return err
		}
		f.States = []ota.JobState{ota.JobState(st)}
	}
	jobs, total, err := c.svc.ListJobs(r.Context(), s.p, f, pg)
	if err != nil {
		return err
	}
	c.render(w, r, s, http.StatusOK, "jobs", "Jobs", map[string]any{"Jobs": jobs, "Pages": pagesOf(r, n, total), "State": r.URL.Query().Get("state")})
	return nil
}

// job is the live job page; events.go streams its updates.
func (c *Console) job(w http.ResponseWriter, r *http.Request, s *session) error {
	snap, err := c.snapshot(r, s, r.PathValue("id"))
	if err != nil {
		return err
	}
	c.render(w, r, s, http.StatusOK, "job", "Job "+snap.Job.Name, map[string]any{"S": snap, "Job": snap.Job, "States": ota.TaskStates})
	return nil
}

// jobAction runs pause, resume, cancel or retry-failed.
func (c *Console) jobAction(w http.ResponseWriter, r *http.Request, s *session) error {
	id := r.PathValue("id")
	var err error
	switch r.PathValue("action") {
	case "pause":
		_, err = c.svc.PauseJob(r.Context(), s.p, id)
	case "resume":
		_, err = c.svc.ResumeJob(r.Context(), s.p, id)
	case "cancel":
		_, err = c.svc.CancelJob(r.Context(), s.p, id)
	case "retry-failed", "confirm":
		act := c.svc.RetryTasks
		if r.PathValue("action") == "confirm" {
			act = c.svc.ConfirmTasks
		}
		var res []service.TaskResult
		res, err = act(r.Context(), s.p, id, nil)
		if err == nil {
			for _, t := range res {
				if !t.OK && t.Err != nil {
					err = t.Err
					break
				}
			}
		}
	default:
		return ota.NotFound("job action", r.PathValue("action"))
	}
	if err != nil {
		return err
	}
	http.Redirect(w, r, "/jobs/"+url.PathEscape(id), http.StatusSeeOther)
	return nil
}

// splitList reads a comma- or newline-separated list.
func splitList(s string) []string {
	return strings.FieldsFunc(s, func(r rune) bool { return r == ',' || r == '\n' || r == '\r' || r == ' ' || r == '\t' })
}
