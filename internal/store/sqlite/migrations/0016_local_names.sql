-- 0016: a package's and a job's name in other languages (locale → name JSON
-- object, ota.Package.LocalNames / ota.Job.LocalNames; EnOS StringI18n
-- i18nValue), searchable by locale (store.PackageFilter.NameLocale).
ALTER TABLE packages ADD COLUMN local_names TEXT NOT NULL DEFAULT '{}';
ALTER TABLE jobs ADD COLUMN local_names TEXT NOT NULL DEFAULT '{}';
