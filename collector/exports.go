package collector

import (
	"github.com/peakacom/peaka_exporter/peaka"
)

var (
	exportLabels = []string{"project_id", "export_id"}

	exportUpFamily      = gauge("export_up", "1 if this scrape read the export job from the Peaka API, 0 if the call failed (see peaka_target_failures_total). With peaka.min_interval set, an answer younger than it may be reused.", exportLabels)
	exportInfoFamily    = gauge("export_info", "What an export job exports and who started it (by client and API key prefix); always 1.", exportLabels, "format", "compression", "source", "query_id", "catalog_id", "schema_name", "table_name", "client_source", "api_key_prefix")
	exportStatusFamily  = gauge("export_status", "The export job's status as a state set over PENDING, RUNNING, SUCCEEDED, FAILED, CANCELLED, EXPIRED (and any undocumented value seen).", exportLabels, "status")
	exportRowsFamily    = gauge("export_rows", "Rows the export job wrote (rowCount).", exportLabels)
	exportBytesFamily   = gauge("export_size_bytes", "Total size of the export job's output.", exportLabels)
	exportDurFamily     = gauge("export_duration_seconds", "The export job's execution time (durationMs / 1000).", exportLabels)
	exportFilesFamily   = gauge("export_files", "Files the export job offers for download; only known from a read of the single export (configured export IDs), not from the list call.", exportLabels)
	exportCreatedFamily = gauge("export_created_timestamp_seconds", "When the export job was submitted (Unix time).", exportLabels)
	exportExpiresFamily = gauge("export_expires_timestamp_seconds", "When the export job's download links expire (Unix time).", exportLabels)
	exportDlFamily      = gauge("export_downloadable", "1 if the exporter's API key may download the export job's files.", exportLabels)
	exportErrorFamily   = gauge("export_error", "1 if the export job carries an error message (the message itself is not exported).", exportLabels)
)

// exportWriters write, family after family, the series of each export job
// that was read. User id, user name (an e-mail address), file names and
// presigned URLs are left out on purpose.
var exportWriters = []struct {
	family
	write func(x *expositionWriter, project, id escaped, r *exportResult)
}{
	{exportInfoFamily, func(x *expositionWriter, project, id escaped, r *exportResult) {
		ex := r.export
		x.sample(1, project, id,
			exposed(ex.Format), exposed(ex.Compression), exposed(ex.Source), exposed(ex.QueryID),
			exposed(ex.CatalogID), exposed(ex.SchemaName), exposed(ex.TableName),
			exposed(ex.ClientSource), exposed(ex.APIKeyPrefix))
	}},
	{exportStatusFamily, func(x *expositionWriter, project, id escaped, r *exportResult) {
		x.stateSet(peaka.ExportStatuses, r.export.Status, project, id)
	}},
	{exportRowsFamily, func(x *expositionWriter, project, id escaped, r *exportResult) {
		if v := r.export.RowCount; v != nil {
			x.sample(float64(*v), project, id)
		}
	}},
	{exportBytesFamily, func(x *expositionWriter, project, id escaped, r *exportResult) {
		if v := r.export.Bytes; v != nil {
			x.sample(float64(*v), project, id)
		}
	}},
	{exportDurFamily, func(x *expositionWriter, project, id escaped, r *exportResult) {
		if v := r.export.DurationMs; v != nil {
			x.sample(float64(*v)/1000, project, id)
		}
	}},
	{exportFilesFamily, func(x *expositionWriter, project, id escaped, r *exportResult) {
		if !r.fromList {
			x.sample(float64(len(r.export.Files)), project, id)
		}
	}},
	{exportCreatedFamily, func(x *expositionWriter, project, id escaped, r *exportResult) {
		if t := r.export.CreatedAt; !t.IsZero() {
			x.sample(t.Seconds(), project, id)
		}
	}},
	{exportExpiresFamily, func(x *expositionWriter, project, id escaped, r *exportResult) {
		if t := r.export.ExpiresAt; !t.IsZero() {
			x.sample(t.Seconds(), project, id)
		}
	}},
	{exportDlFamily, func(x *expositionWriter, project, id escaped, r *exportResult) {
		if v := r.export.Downloadable; v != nil {
			x.sample(boolValue(*v), project, id)
		}
	}},
	{exportErrorFamily, func(x *expositionWriter, project, id escaped, r *exportResult) {
		x.sample(boolValue(r.export.Error != ""), project, id)
	}},
}

// writeExports writes the gauges of every export target of a scrape.
func (r *Result) writeExports(x *expositionWriter) {
	x.begin(exportUpFamily)
	for _, pr := range r.projects {
		for _, ex := range pr.exports {
			ex.label = exposed(ex.id) // once, for every family below
			x.sample(boolValue(ex.err == nil && ex.export != nil), pr.label, ex.label)
		}
	}
	for _, ew := range exportWriters {
		x.begin(ew.family)
		for _, pr := range r.projects {
			for _, ex := range pr.exports {
				if ex.err == nil && ex.export != nil {
					ew.write(x, pr.label, ex.label, ex)
				}
			}
		}
	}
}
