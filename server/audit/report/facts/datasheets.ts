/**
 * Report facts, section 4: one datasheet per dataset of the lineage: its columns in file order, the datasheet
 * sections people wrote, and each cleaned version (recipe, cleaning report) with its splits (spec, manifest).
 *
 * Invariant: reads only; hashes, counts, recipes and statistics, never data rows.
 */
import { inArray } from "drizzle-orm";
import { datasets, datasetVersions, splits } from "@/db/schema";
import type { DbOrTx } from "@/db/client";
import type { CleaningReport, DatasetSchema, SplitManifest } from "@/trainer/types";
import type { LineageFacts } from "@/server/lineage/collect";
import { documentsFor } from "@/server/documents/queries";
import type { Json } from "./json";

export function datasheetFacts(db: DbOrTx, lineage: LineageFacts) {
  const dvRows = lineage.datasetVersions.length
    ? db
        .select()
        .from(datasetVersions)
        .where(
          inArray(
            datasetVersions.id,
            lineage.datasetVersions.map((v) => v.id),
          ),
        )
        .all()
    : [];
  const splitRows = lineage.splits.length
    ? db
        .select()
        .from(splits)
        .where(
          inArray(
            splits.id,
            lineage.splits.map((s) => s.id),
          ),
        )
        .all()
    : [];
  const schemaRows = lineage.datasets.length
    ? db
        .select({ id: datasets.id, schemaJson: datasets.schemaJson })
        .from(datasets)
        .where(
          inArray(
            datasets.id,
            lineage.datasets.map((d) => d.id),
          ),
        )
        .all()
    : [];
  return lineage.datasets.map((d) => ({
    ...d,
    /** Column names in file order (the split manifest's statistics are keyed by name, sorted). */
    columns: (JSON.parse(schemaRows.find((r) => r.id === d.id)?.schemaJson ?? '{"columns":[]}') as DatasetSchema).columns.map(
      (c) => c.name,
    ),
    documents: documentsFor(db, "dataset", d.id).sections,
    versions: dvRows
      .filter((v) => v.datasetId === d.id)
      .map((v) => ({
        id: v.id,
        recipe: JSON.parse(v.recipeJson) as Json,
        recipeSha256: v.recipeSha256,
        report: JSON.parse(v.reportJson) as CleaningReport,
        sha256: v.sha256,
        rowCount: v.rowCount,
        createdAt: v.createdAt,
        splits: splitRows
          .filter((s) => s.datasetVersionId === v.id)
          .map((s) => ({
            id: s.id,
            spec: JSON.parse(s.specJson) as Json,
            manifest: JSON.parse(s.manifestJson) as SplitManifest,
            sha256: s.sha256,
            createdAt: s.createdAt,
          })),
      })),
  }));
}
