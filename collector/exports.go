package collector

import (
	"github.com/peakacom/peaka_exporter/peaka"
)

var (
	exportLabels     = []string{"project_id", "export_id"}
	exportUpDesc     = desc("export_up", "1 if this scrape read the export job from the Peaka API, 0 if the call failed (see peaka_target_failures_total). With peaka.min_interval set, an answer younger than it may be reused.", exportLabels)
	exportInfoDesc   = desc("export_info", "What an export job exports and who started it (by client and API key prefix); always 1.", exportLabels, "format", "compression", "source", "query_id", "catalog_id", "schema_name", "table_name", "client_source", "api_key_prefix")
	exportStatusDesc = desc("export_status", "The export job's status as a state set over PENDING, RUNNING, SUCCEEDED, FAILED, CANCELLED, EXPIRED (and any undocumented value seen).", exportLabels, "status")
	exportRowsDesc   = desc("export_rows", "Rows the export job wrote (rowCount).", exportLabels)
	exportBytesDesc  = desc("export_size_bytes", "Total size of the export job's output.", exportLabels)
	exportDurDesc    = desc("export_duration_seconds", "The export job's execution time (durationMs / 1000).", exportLabels)
	exportFilesDesc  = desc("export_files", "Files the export job offers for download; only known from a read of the single export (configured export IDs), not from the list call.", exportLabels)
	exportCreatedDes = desc("export_created_timestamp_seconds", "When the export job was submitted (Unix time).", exportLabels)
	exportExpiresDes = desc("export_expires_timestamp_seconds", "When the export job's download links expire (Unix time).", exportLabels)
	exportDlDesc     = desc("export_downloadable", "1 if the exporter's API key may download the export job's files.", exportLabels)
	exportErrorDesc  = desc("export_error", "1 if the export job carries an error message (the message itself is not exported).", exportLabels)
)

// emitExport writes the gauges of one export target. User id, user name
// (an e-mail address), file names and presigned URLs are left out on
// purpose.
func emitExport(e emitter, project string, x *exportResult) {
	id := labelValue(x.id)
	if x.err != nil || x.export == nil {
		e.gauge(exportUpDesc, 0, project, id)
		return
	}
	ex := x.export
	e.gauge(exportUpDesc, 1, project, id)
	e.gauge(exportInfoDesc, 1, project, id,
		labelValue(ex.Format), labelValue(ex.Compression), labelValue(ex.Source), labelValue(ex.QueryID),
		labelValue(ex.CatalogID), labelValue(ex.SchemaName), labelValue(ex.TableName),
		labelValue(ex.ClientSource), labelValue(ex.APIKeyPrefix))
	e.stateSet(exportStatusDesc, peaka.ExportStatuses, ex.Status, project, id)
	if ex.RowCount != nil {
		e.gauge(exportRowsDesc, float64(*ex.RowCount), project, id)
	}
	if ex.Bytes != nil {
		e.gauge(exportBytesDesc, float64(*ex.Bytes), project, id)
	}
	if ex.DurationMs != nil {
		e.gauge(exportDurDesc, float64(*ex.DurationMs)/1000, project, id)
	}
	if !x.fromList {
		e.gauge(exportFilesDesc, float64(len(ex.Files)), project, id)
	}
	if !ex.CreatedAt.IsZero() {
		e.gauge(exportCreatedDes, ex.CreatedAt.Seconds(), project, id)
	}
	if !ex.ExpiresAt.IsZero() {
		e.gauge(exportExpiresDes, ex.ExpiresAt.Seconds(), project, id)
	}
	if ex.Downloadable != nil {
		e.gauge(exportDlDesc, boolValue(*ex.Downloadable), project, id)
	}
	e.gauge(exportErrorDesc, boolValue(ex.Error != ""), project, id)
}
