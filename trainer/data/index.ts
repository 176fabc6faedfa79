/**
 * The trainer's data pipeline, public surface: CSV parsing, schemas, built-in datasets, cleaning, splits and
 * prepareData (bytes + config data section → model-ready tensors and lineage facts). Pure Node, no server code.
 */
export { DatasetError, isDatasetError, type DatasetErrorCode } from "./errors";
export { parseCsv, DEFAULT_MAX_CSV_BYTES, type ParseCsvOptions } from "./csv";
export { inferSchema, validateForTask, featureColumnNames, LABEL_COLUMN_CANDIDATES, type InferSchemaOptions, type Task } from "./schema";
export { BUILTIN_DATASETS, loadBuiltin, isBuiltinName, builtinFilePath, type BuiltinName, type BuiltinDatasetMeta, type LoadedBuiltin } from "./builtin";
export { applyCleaning, type CleaningResult } from "./clean";
export { makeSplit, describePartition, PARTITIONS, type SplitIndices } from "./split";
export { fitNormalization, normalizeRow } from "./normalize";
export { tokenize, buildVocabulary, chooseSequenceLength, encodeTokens, PAD_ID, OOV_ID } from "./text";
export { prepareData, sortedClasses } from "./prepare";
export { tableSha256 } from "./digest";
export { mulberry32, shuffleInPlace } from "./prng";
