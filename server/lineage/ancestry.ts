/**
 * Who and what a model version descends from, and every person who authored any of it. Four-eyes promotion relies
 * on this set: nobody in it may sign a promotion of the version.
 *
 * Invariants:
 * - Run ancestry follows BOTH a run's parent run (fork, re-run) AND the run of its parent checkpoint (fine-tune),
 *   so a run can never hide where its starting weights came from (createRun keeps the two consistent for new
 *   fine-tunes; rows written otherwise are still followed through the checkpoint). A model version's ancestry starts
 *   from its run and from the run of its checkpoint. Breadth first, nearest first; cycles are guarded.
 * - The authors of a version are: its registrant; the author of every run in its ancestry and of every decision on
 *   those runs (initial, change, note, correction); whoever uploaded each dataset those runs used and whoever first
 *   prepared each dataset version and split (the actor of the ledger's create event); every author of a model-card
 *   section of the version's model or of a datasheet section of those datasets, and everyone who signed such a
 *   section with meaning "authorship". Review signatures are not authorship. The promotion's requester is added by
 *   the caller (promotions.conflictsOfInterest).
 */
import { and, eq, inArray } from "drizzle-orm";
import {
  auditEvents,
  checkpoints,
  datasets,
  datasetVersions,
  decisions,
  documents,
  modelVersions,
  runs,
  signatures,
  splits,
} from "@/db/schema";
import type { DbOrTx } from "@/db/client";

type RunRow = typeof runs.$inferSelect;

/** The runs whose weights or configuration a run directly started from. */
function parentRunIds(db: DbOrTx, r: RunRow): number[] {
  const out: number[] = [];
  if (r.parentCheckpointId !== null) {
    const ck = db.select({ runId: checkpoints.runId }).from(checkpoints).where(eq(checkpoints.id, r.parentCheckpointId)).get();
    if (ck) out.push(ck.runId);
  }
  if (r.parentRunId !== null && !out.includes(r.parentRunId)) out.push(r.parentRunId);
  return out;
}

/** The given runs and all their ancestors (through parent runs and parent checkpoints' runs), nearest first. */
export function runsAncestry(db: DbOrTx, startRunIds: number[]): RunRow[] {
  const out: RunRow[] = [];
  const seen = new Set<number>();
  const queue = [...startRunIds];
  while (queue.length > 0) {
    const id = queue.shift()!;
    if (seen.has(id)) continue;
    seen.add(id);
    const row = db.select().from(runs).where(eq(runs.id, id)).get();
    if (!row) continue;
    out.push(row);
    queue.push(...parentRunIds(db, row).filter((p) => !seen.has(p)));
  }
  return out;
}

/** The run and its ancestors, nearest first (the run itself first). */
export function runAncestry(db: DbOrTx, runId: number): RunRow[] {
  return runsAncestry(db, [runId]);
}

/** A model version's runs: the run it was registered from, the run of its checkpoint, and all their ancestors. */
export function versionRunAncestry(db: DbOrTx, version: Pick<typeof modelVersions.$inferSelect, "runId" | "checkpointId">): RunRow[] {
  const ck = db.select({ runId: checkpoints.runId }).from(checkpoints).where(eq(checkpoints.id, version.checkpointId)).get();
  return runsAncestry(db, ck ? [version.runId, ck.runId] : [version.runId]);
}

/** Datasets a run used: through its prepared data version, or named in its config before it prepared any. */
export function datasetIdsOf(db: DbOrTx, chain: RunRow[]): number[] {
  const ids = new Set<number>();
  const dvIds = [...new Set(chain.map((r) => r.datasetVersionId).filter((x): x is number => x !== null))];
  if (dvIds.length)
    for (const v of db
      .select({ datasetId: datasetVersions.datasetId })
      .from(datasetVersions)
      .where(inArray(datasetVersions.id, dvIds))
      .all())
      ids.add(v.datasetId);
  for (const r of chain) {
    const ref = (JSON.parse(r.configJson) as { data?: { dataset?: { datasetId?: string; builtin?: string } } }).data?.dataset;
    if (ref?.datasetId !== undefined && Number.isInteger(Number(ref.datasetId))) ids.add(Number(ref.datasetId));
    else if (ref?.builtin && r.datasetVersionId === null) {
      const b = db.select({ id: datasets.id }).from(datasets).where(eq(datasets.builtinName, ref.builtin)).get();
      if (b) ids.add(b.id);
    }
  }
  return [...ids];
}

/** Who the ledger says created each entity (dataset versions and splits carry no author column). */
function ledgerCreators(
  db: DbOrTx,
  action: "datasetVersion.create" | "split.create",
  entityType: string,
  ids: number[],
): { entityId: string; actorId: number | null }[] {
  if (ids.length === 0) return [];
  return db
    .select({ entityId: auditEvents.entityId, actorId: auditEvents.actorId })
    .from(auditEvents)
    .where(and(eq(auditEvents.entityType, entityType), inArray(auditEvents.entityId, ids.map(String)), eq(auditEvents.action, action)))
    .all();
}

export type LineageAuthor = { userId: number; why: string };

/** Everyone who authored anything in a model version's ancestry; several reasons per person are kept. */
export function lineageAuthors(db: DbOrTx, modelVersionId: number): LineageAuthor[] {
  const version = db.select().from(modelVersions).where(eq(modelVersions.id, modelVersionId)).get();
  if (!version) return [];
  const chain = versionRunAncestry(db, version);
  const out: LineageAuthor[] = [{ userId: version.createdBy, why: `registered model version ${version.version}` }];
  for (const r of chain) out.push({ userId: r.createdBy, why: `authored run #${r.id}` });
  const ids = chain.map((r) => r.id);
  const ds = ids.length
    ? db
        .select({ id: decisions.id, runId: decisions.runId, authorId: decisions.authorId, kind: decisions.kind })
        .from(decisions)
        .where(inArray(decisions.runId, ids))
        .all()
    : [];
  for (const d of ds) out.push({ userId: d.authorId, why: `authored decision #${d.id} (${d.kind}) on run #${d.runId}` });

  // Data: the datasets the runs used, the data versions and splits they trained on.
  const datasetIds = datasetIdsOf(db, chain);
  const dss = datasetIds.length
    ? db
        .select({ id: datasets.id, name: datasets.name, source: datasets.source, createdBy: datasets.createdBy })
        .from(datasets)
        .where(inArray(datasets.id, datasetIds))
        .all()
    : [];
  for (const d of dss)
    out.push({ userId: d.createdBy, why: `${d.source === "upload" ? "uploaded" : "registered"} dataset #${d.id} (${d.name})` });
  const dvIds = [...new Set(chain.map((r) => r.datasetVersionId).filter((x): x is number => x !== null))];
  for (const e of ledgerCreators(db, "datasetVersion.create", "datasetVersion", dvIds))
    if (e.actorId !== null) out.push({ userId: e.actorId, why: `prepared data version #${e.entityId}` });
  const splitIds = [...new Set(chain.map((r) => r.splitId).filter((x): x is number => x !== null))];
  const splitRows = splitIds.length ? db.select({ id: splits.id }).from(splits).where(inArray(splits.id, splitIds)).all() : [];
  for (const e of ledgerCreators(
    db,
    "split.create",
    "split",
    splitRows.map((s) => s.id),
  ))
    if (e.actorId !== null) out.push({ userId: e.actorId, why: `prepared split #${e.entityId}` });

  // Documents: the model card of the version's model and the datasheets of those datasets, every version.
  const docRows = [
    ...db
      .select()
      .from(documents)
      .where(and(eq(documents.subjectType, "model"), eq(documents.subjectId, version.modelId)))
      .all(),
    ...(datasetIds.length
      ? db
          .select()
          .from(documents)
          .where(and(eq(documents.subjectType, "dataset"), inArray(documents.subjectId, datasetIds)))
          .all()
      : []),
  ];
  const what = (d: (typeof docRows)[number]) =>
    `${d.subjectType === "model" ? "model card" : `datasheet of dataset #${d.subjectId}`} section "${d.section}" v${d.version}`;
  for (const d of docRows) out.push({ userId: d.authorId, why: `wrote ${what(d)}` });
  const docSigs = docRows.length
    ? db
        .select()
        .from(signatures)
        .where(
          and(
            eq(signatures.recordType, "document"),
            eq(signatures.meaning, "authorship"),
            inArray(
              signatures.recordId,
              docRows.map((d) => d.id),
            ),
          ),
        )
        .all()
    : [];
  for (const s of docSigs) out.push({ userId: s.userId, why: `signed authorship of ${what(docRows.find((d) => d.id === s.recordId)!)}` });
  return out;
}
