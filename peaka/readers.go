package peaka

// The streaming readers (stream.go) of the answer types: one switch per
// type over its JSON field names, in the order of the names below. A field
// added to a type in types.go needs its case here, or it stays empty: the
// differential tests (stream_test.go, the fuzz targets) fail then on any
// input that carries the field, as encoding/json fills it.

// The JSON names of each type's fields, in the order of its reader's switch.
var (
	cacheStatusFields = fieldSet{"id", "status", "catalogId", "schemaName", "tableName", "projectId",
		"lastIncrementalCacheExecution", "lastFullRefreshCacheExecution", "cacheActionLogs"}
	executionFields = fieldSet{"id", "executionMode", "status", "error", "progress", "createdAt", "updatedAt", "finishedAt"}
	progressFields  = fieldSet{"numberOfCachedRecords", "numberOfInsertedRecords", "numberOfUpdatedRecords",
		"numberOfDeletedRecords"}
	actionLogFields = fieldSet{"timestamp", "action", "cacheType", "isScheduled"}
	exportFields    = fieldSet{"id", "status", "format", "compression", "rowCount", "bytes", "durationMs", "files",
		"expiresAt", "downloadable", "error", "createdAt", "queryId", "catalogId", "schemaName", "tableName",
		"source", "apiKeyPrefix", "clientSource"}
	exportFileFields    = fieldSet{"bytes"}
	cacheSettingsFields = fieldSet{"id", "catalogId", "schemaName", "tableName", "projectId",
		"incrementalCacheSchedule", "fullRefreshCacheSchedule"}
	scheduleFields = fieldSet{"type", "expression"}
)

// Values seen in answers, which the readers keep without a copy of their
// own (any other value is kept as well, copied).
var (
	executionModes = []string{"INCREMENTAL", "FULL_REFRESH"}
	logActions     = []string{"CACHE_STARTED", "CACHE_COMPLETED", "CACHE_FAILED", "CACHE_CANCELLED"}
	logCacheTypes  = executionModes
)

func (s *CacheStatus) readJSON(d *decoder) {
	d.object(cacheStatusFields, func(field int) {
		switch field {
		case 0:
			d.str(&s.ID)
		case 1:
			d.str(&s.Status, CacheStatuses...)
		case 2:
			d.str(&s.CatalogID)
		case 3:
			d.str(&s.SchemaName)
		case 4:
			d.str(&s.TableName)
		case 5:
			d.str(&s.ProjectID)
		case 6:
			readPtr(d, &s.LastIncrementalCacheExecution)
		case 7:
			readPtr(d, &s.LastFullRefreshCacheExecution)
		case 8:
			readSliceExact(d, &s.CacheActionLogs, &d.actionLogs)
		default:
			d.skip()
		}
	})
}

func (e *Execution) readJSON(d *decoder) {
	d.object(executionFields, func(field int) {
		switch field {
		case 0:
			d.str(&e.ID)
		case 1:
			d.str(&e.ExecutionMode, executionModes...)
		case 2:
			d.str(&e.Status, ExecutionStatuses...)
		case 3:
			e.Error = d.raw()
		case 4:
			readPtr(d, &e.Progress)
		case 5:
			d.timestamp(&e.CreatedAt)
		case 6:
			d.timestamp(&e.UpdatedAt)
		case 7:
			d.timestamp(&e.FinishedAt)
		default:
			d.skip()
		}
	})
}

func (p *Progress) readJSON(d *decoder) {
	d.object(progressFields, func(field int) {
		switch field {
		case 0:
			d.int64Ptr(&p.NumberOfCachedRecords)
		case 1:
			d.int64Ptr(&p.NumberOfInsertedRecords)
		case 2:
			d.int64Ptr(&p.NumberOfUpdatedRecords)
		case 3:
			d.int64Ptr(&p.NumberOfDeletedRecords)
		default:
			d.skip()
		}
	})
}

func (l *ActionLog) readJSON(d *decoder) {
	d.object(actionLogFields, func(field int) {
		switch field {
		case 0:
			d.timestamp(&l.Timestamp)
		case 1:
			d.str(&l.Action, logActions...)
		case 2:
			d.str(&l.CacheType, logCacheTypes...)
		case 3:
			d.boolPtr(&l.IsScheduled)
		default:
			d.skip()
		}
	})
}

func (x *Export) readJSON(d *decoder) {
	d.object(exportFields, func(field int) {
		switch field {
		case 0:
			d.str(&x.ID)
		case 1:
			d.str(&x.Status, ExportStatuses...)
		case 2:
			d.str(&x.Format)
		case 3:
			d.str(&x.Compression)
		case 4:
			d.int64Ptr(&x.RowCount)
		case 5:
			d.int64Ptr(&x.Bytes)
		case 6:
			d.int64Ptr(&x.DurationMs)
		case 7:
			readSlice(d, &x.Files)
		case 8:
			d.timestamp(&x.ExpiresAt)
		case 9:
			d.boolPtr(&x.Downloadable)
		case 10:
			d.str(&x.Error)
		case 11:
			d.timestamp(&x.CreatedAt)
		case 12:
			d.str(&x.QueryID)
		case 13:
			d.str(&x.CatalogID)
		case 14:
			d.str(&x.SchemaName)
		case 15:
			d.str(&x.TableName)
		case 16:
			d.str(&x.Source)
		case 17:
			d.str(&x.APIKeyPrefix)
		case 18:
			d.str(&x.ClientSource)
		default:
			d.skip()
		}
	})
}

func (f *ExportFile) readJSON(d *decoder) {
	d.object(exportFileFields, func(field int) {
		if field == 0 {
			d.int64Ptr(&f.Bytes)
			return
		}
		d.skip()
	})
}

func (s *CacheSettings) readJSON(d *decoder) {
	d.object(cacheSettingsFields, func(field int) {
		switch field {
		case 0:
			d.str(&s.ID)
		case 1:
			d.str(&s.CatalogID)
		case 2:
			d.str(&s.SchemaName)
		case 3:
			d.str(&s.TableName)
		case 4:
			d.str(&s.ProjectID)
		case 5:
			readPtr(d, &s.IncrementalCacheSchedule)
		case 6:
			readPtr(d, &s.FullRefreshCacheSchedule)
		default:
			d.skip()
		}
	})
}

func (s *Schedule) readJSON(d *decoder) {
	d.object(scheduleFields, func(field int) {
		switch field {
		case 0:
			d.str(&s.Type, "BASIC", "NONE")
		case 1:
			d.str(&s.Expression)
		default:
			d.skip()
		}
	})
}
