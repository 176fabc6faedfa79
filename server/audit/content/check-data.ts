/**
 * Content check of the data lineage: datasets (name, source, licence, origin, schema, sizes; the stored bytes
 * re-hashed from the artifact store), dataset versions (recipe hash recomputed from the stored recipe, cleaned
 * rows sha256, row counts, cleaning report) and splits (manifest sha256 recomputed from the stored manifest,
 * partition counts and index digests, spec).
 *
 * Invariant: the cleaned rows' sha256 of a version is compared with the ledger, not re-derived from the dataset
 * bytes (that would re-run the cleaning pipeline): stated in notCovered.
 */
import { sha256Hex } from "./records";
import type { ContentChecker } from "./checker";
import { checkCreations, compareActor } from "./creations";
import { checkArtifact } from "./check-checkpoints";
import type { ArtifactHasher } from "./artifact-files";
import type { EventSource } from "./ledger-events";
import type { Tables } from "./tables";

function tryParse<T>(text: string): T | null {
  try {
    return JSON.parse(text) as T;
  } catch {
    return null;
  }
}

type Schema = { columns?: unknown[]; labelColumn?: unknown };
type Report = { rowsIn?: unknown; rowsOut?: unknown };
type Manifest = { partitions?: Record<string, { count?: unknown; indicesSha256?: unknown }> };
const PARTS = ["train", "validation", "test"] as const;

export function checkData(c: ContentChecker, events: EventSource, t: Tables, files: ArtifactHasher | null): void {
  checkCreations(c, events, {
    entityType: "dataset",
    action: "dataset.create",
    rows: t.datasets,
    complete: t.complete,
    check: (d, ev, p) => {
      const schema = tryParse<Schema>(d.schemaJson);
      c.compareFields("dataset", d.id, ev, p, [
        ["name", d.name, "dataset name"],
        ["source", d.source, "source"],
        ["builtinName", d.builtinName, "built-in dataset name"],
        ["sha256", d.sha256, "raw bytes sha256"],
        ["bytes", d.byteSize, "size in bytes"],
        ["rows", d.rowCount, "row count"],
        ["columns", schema?.columns?.length ?? null, "number of columns"],
        ["labelColumn", schema?.labelColumn ?? null, "label column"],
        ["licence", d.licence, "licence"],
        ["origin", d.origin, "dataset origin"],
        ["schemaSha256", sha256Hex(d.schemaJson), "column schema"],
        ["createdAt", d.createdAt, "dataset creation time"],
      ]);
      compareActor(c, "dataset", d.id, ev, d.createdBy);
      checkArtifact(c, files, "dataset", d.id, "stored bytes", p.sha256, p.bytes, ev.seq);
    },
  });

  checkCreations(c, events, {
    entityType: "datasetVersion",
    action: "datasetVersion.create",
    rows: t.datasetVersions,
    complete: t.complete,
    check: (v, ev, p) => {
      const report = tryParse<Report>(v.reportJson);
      c.compare("datasetVersion", v.id, "cleaning recipe (sha256 of the stored recipe)", p.recipeSha256, sha256Hex(v.recipeJson), ev.seq);
      c.compareFields("datasetVersion", v.id, ev, p, [
        ["datasetId", v.datasetId, "dataset"],
        ["recipeSha256", v.recipeSha256, "recipe_sha256 column"],
        ["sha256", v.sha256, "cleaned rows sha256"],
        ["rowsIn", report?.rowsIn ?? null, "rows in (cleaning report)"],
        ["rowsOut", report?.rowsOut ?? null, "rows out (cleaning report)"],
        ["rowCount", v.rowCount, "row count"],
        ["reportSha256", sha256Hex(v.reportJson), "cleaning report steps"],
        ["createdAt", v.createdAt, "version creation time"],
      ]);
    },
  });

  checkCreations(c, events, {
    entityType: "split",
    action: "split.create",
    rows: t.splits,
    complete: t.complete,
    check: (s, ev, p) => {
      const parts = tryParse<Manifest>(s.manifestJson)?.partitions;
      c.compare("split", s.id, "manifest (sha256 of the stored manifest)", p.sha256, sha256Hex(s.manifestJson), ev.seq);
      c.compareFields("split", s.id, ev, p, [
        ["datasetVersionId", s.datasetVersionId, "dataset version"],
        ["sha256", s.sha256, "sha256 column"],
        ["counts", Object.fromEntries(PARTS.map((k) => [k, parts?.[k]?.count ?? null])), "partition counts"],
        ["indicesSha256", Object.fromEntries(PARTS.map((k) => [k, parts?.[k]?.indicesSha256 ?? null])), "partition row digests"],
        ["specSha256", sha256Hex(s.specJson), "split specification"],
        ["createdAt", s.createdAt, "split creation time"],
      ]);
    },
  });
  if (t.datasetVersions.size > 0)
    c.notCovered(
      "the cleaned rows of a dataset version are compared by their recorded sha256; they are not re-derived from the dataset bytes (that would re-run the cleaning)",
    );
}
