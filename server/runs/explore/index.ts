/** The runs query core: filter language, search/sort/page, grouping, comparison and series downsampling. */
export { parseFilter, parseIsoInstant, type FilterNode, type Literal, type CompareOp } from "./filter-parser";
export { FilterSyntaxError, RunsQueryError, renderCaret } from "./errors";
export { filterToSql } from "./filter-sql";
export { PARAM_ALIASES, PARAM_ALIAS_NAMES, PLAIN_FIELDS, resolveFieldName, fieldLabel, type FieldRef } from "./fields";
export { searchRuns, DEFAULT_PARAM_COLUMNS, type SearchRunsInput, type RunRow, type SortSpec, type ParamValue } from "./runs-search";
export { listColumns, type ColumnInfo } from "./columns";
export { groupRuns, type GroupRunsInput, type RunGroup } from "./group-runs";
export { compareRuns, MIN_COMPARE, MAX_COMPARE, type RunComparison, type ComparedRun, type ComparedDecision } from "./compare";
export { compareInterventions, type ComparedIntervention } from "./compare-interventions";
export { fetchSeries, fetchSeriesOfRuns, type FetchSeriesInput, type Series, type SeriesPoint, type XAxis } from "./downsample";
export { exportRuns, csvField, EXPORT_MAX_ROWS, type ExportRunsInput, type ExportedRuns } from "./export";
