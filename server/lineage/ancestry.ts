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
 *
 * On the store (issue 16, db/store.ts): each read is written once as a transaction part over given tables (the `…In`
 * forms, used by the registry's store bodies on SQLite and PostgreSQL); the synchronous forms run the same part on a
 * SQLite handle (runOnSqliteTx) for the callers not on the store yet. Rows are read in id order (seq for the ledger),
 * so the authors and their reasons come in the same order on both stores.
 */
import { and, asc, eq, inArray } from "drizzle-orm";
import * as schema from "@/db/schema";
import type { modelVersions, runs } from "@/db/schema";
import type { DbOrTx, Tx } from "@/db/client";
import { row, rows, runOnSqliteTx, type StoreTables, type TxBody } from "@/db/store";

type RunRow = typeof runs.$inferSelect;

/** A part run synchronously on a SQLite handle (a transaction or the database itself: reads only). */
const onSqlite = <T>(db: DbOrTx, part: (q: Tx, t: StoreTables) => TxBody<T>): T => runOnSqliteTx(db as Tx, part(db as Tx, schema));

/** The runs whose weights or configuration a run directly started from. */
function* parentRunIds(q: Tx, t: StoreTables, r: RunRow): TxBody<number[]> {
  const out: number[] = [];
  if (r.parentCheckpointId !== null) {
    const ck = yield* row(q.select({ runId: t.checkpoints.runId }).from(t.checkpoints).where(eq(t.checkpoints.id, r.parentCheckpointId)));
    if (ck) out.push(ck.runId);
  }
  if (r.parentRunId !== null && !out.includes(r.parentRunId)) out.push(r.parentRunId);
  return out;
}

/** The given runs and all their ancestors (through parent runs and parent checkpoints' runs), nearest first. */
export function* runsAncestryIn(q: Tx, t: StoreTables, startRunIds: number[]): TxBody<RunRow[]> {
  const out: RunRow[] = [];
  const seen = new Set<number>();
  const queue = [...startRunIds];
  while (queue.length > 0) {
    const id = queue.shift()!;
    if (seen.has(id)) continue;
    seen.add(id);
    const found = yield* row(q.select().from(t.runs).where(eq(t.runs.id, id)));
    if (!found) continue;
    out.push(found);
    queue.push(...(yield* parentRunIds(q, t, found)).filter((p) => !seen.has(p)));
  }
  return out;
}

export function runsAncestry(db: DbOrTx, startRunIds: number[]): RunRow[] {
  return onSqlite(db, (q, t) => runsAncestryIn(q, t, startRunIds));
}

/** The run and its ancestors, nearest first (the run itself first). */
export function runAncestry(db: DbOrTx, runId: number): RunRow[] {
  return runsAncestry(db, [runId]);
}

type VersionRef = Pick<typeof modelVersions.$inferSelect, "runId" | "checkpointId">;

/** A model version's runs: the run it was registered from, the run of its checkpoint, and all their ancestors. */
export function* versionRunAncestryIn(q: Tx, t: StoreTables, version: VersionRef): TxBody<RunRow[]> {
  const ck = yield* row(q.select({ runId: t.checkpoints.runId }).from(t.checkpoints).where(eq(t.checkpoints.id, version.checkpointId)));
  return yield* runsAncestryIn(q, t, ck ? [version.runId, ck.runId] : [version.runId]);
}

export function versionRunAncestry(db: DbOrTx, version: VersionRef): RunRow[] {
  return onSqlite(db, (q, t) => versionRunAncestryIn(q, t, version));
}

/** Datasets a run used: through its prepared data version, or named in its config before it prepared any. */
export function* datasetIdsOfIn(q: Tx, t: StoreTables, chain: RunRow[]): TxBody<number[]> {
  const ids = new Set<number>();
  const dvIds = [...new Set(chain.map((r) => r.datasetVersionId).filter((x): x is number => x !== null))];
  if (dvIds.length)
    for (const v of yield* rows(
      q
        .select({ datasetId: t.datasetVersions.datasetId })
        .from(t.datasetVersions)
        .where(inArray(t.datasetVersions.id, dvIds))
        .orderBy(asc(t.datasetVersions.id)),
    ))
      ids.add(v.datasetId);
  for (const r of chain) {
    const ref = (JSON.parse(r.configJson) as { data?: { dataset?: { datasetId?: string; builtin?: string } } }).data?.dataset;
    if (ref?.datasetId !== undefined && Number.isInteger(Number(ref.datasetId))) ids.add(Number(ref.datasetId));
    else if (ref?.builtin && r.datasetVersionId === null) {
      const b = yield* row(q.select({ id: t.datasets.id }).from(t.datasets).where(eq(t.datasets.builtinName, ref.builtin)).limit(1));
      if (b) ids.add(b.id);
    }
  }
  return [...ids];
}

export function datasetIdsOf(db: DbOrTx, chain: RunRow[]): number[] {
  return onSqlite(db, (q, t) => datasetIdsOfIn(q, t, chain));
}

/** Who the ledger says created each entity (dataset versions and splits carry no author column). */
function* ledgerCreators(
  q: Tx,
  t: StoreTables,
  action: "datasetVersion.create" | "split.create",
  entityType: string,
  ids: number[],
): TxBody<{ entityId: string; actorId: number | null }[]> {
  if (ids.length === 0) return [];
  const { auditEvents } = t;
  return yield* rows(
    q
      .select({ entityId: auditEvents.entityId, actorId: auditEvents.actorId })
      .from(auditEvents)
      .where(and(eq(auditEvents.entityType, entityType), inArray(auditEvents.entityId, ids.map(String)), eq(auditEvents.action, action)))
      .orderBy(asc(auditEvents.seq)),
  );
}

export type LineageAuthor = { userId: number; why: string };

/** Everyone who authored anything in a model version's ancestry; several reasons per person are kept. */
export function* lineageAuthorsIn(q: Tx, t: StoreTables, modelVersionId: number): TxBody<LineageAuthor[]> {
  const { datasets, decisions, documents, signatures, splits } = t;
  const version = yield* row(q.select().from(t.modelVersions).where(eq(t.modelVersions.id, modelVersionId)));
  if (!version) return [];
  const chain = yield* versionRunAncestryIn(q, t, version);
  const out: LineageAuthor[] = [{ userId: version.createdBy, why: `registered model version ${version.version}` }];
  for (const r of chain) out.push({ userId: r.createdBy, why: `authored run #${r.id}` });
  const ids = chain.map((r) => r.id);
  const ds = ids.length
    ? yield* rows(
        q
          .select({ id: decisions.id, runId: decisions.runId, authorId: decisions.authorId, kind: decisions.kind })
          .from(decisions)
          .where(inArray(decisions.runId, ids))
          .orderBy(asc(decisions.id)),
      )
    : [];
  for (const d of ds) out.push({ userId: d.authorId, why: `authored decision #${d.id} (${d.kind}) on run #${d.runId}` });

  // Data: the datasets the runs used, the data versions and splits they trained on.
  const datasetIds = yield* datasetIdsOfIn(q, t, chain);
  const dss = datasetIds.length
    ? yield* rows(
        q
          .select({ id: datasets.id, name: datasets.name, source: datasets.source, createdBy: datasets.createdBy })
          .from(datasets)
          .where(inArray(datasets.id, datasetIds))
          .orderBy(asc(datasets.id)),
      )
    : [];
  for (const d of dss)
    out.push({ userId: d.createdBy, why: `${d.source === "upload" ? "uploaded" : "registered"} dataset #${d.id} (${d.name})` });
  const dvIds = [...new Set(chain.map((r) => r.datasetVersionId).filter((x): x is number => x !== null))];
  for (const e of yield* ledgerCreators(q, t, "datasetVersion.create", "datasetVersion", dvIds))
    if (e.actorId !== null) out.push({ userId: e.actorId, why: `prepared data version #${e.entityId}` });
  const splitIds = [...new Set(chain.map((r) => r.splitId).filter((x): x is number => x !== null))];
  const splitRows = splitIds.length
    ? yield* rows(q.select({ id: splits.id }).from(splits).where(inArray(splits.id, splitIds)).orderBy(asc(splits.id)))
    : [];
  for (const e of yield* ledgerCreators(
    q,
    t,
    "split.create",
    "split",
    splitRows.map((s) => s.id),
  ))
    if (e.actorId !== null) out.push({ userId: e.actorId, why: `prepared split #${e.entityId}` });

  // Documents: the model card of the version's model and the datasheets of those datasets, every version.
  const docRows = [
    ...(yield* rows(
      q
        .select()
        .from(documents)
        .where(and(eq(documents.subjectType, "model"), eq(documents.subjectId, version.modelId)))
        .orderBy(asc(documents.id)),
    )),
    ...(datasetIds.length
      ? yield* rows(
          q
            .select()
            .from(documents)
            .where(and(eq(documents.subjectType, "dataset"), inArray(documents.subjectId, datasetIds)))
            .orderBy(asc(documents.id)),
        )
      : []),
  ];
  const what = (d: (typeof docRows)[number]) =>
    `${d.subjectType === "model" ? "model card" : `datasheet of dataset #${d.subjectId}`} section "${d.section}" v${d.version}`;
  for (const d of docRows) out.push({ userId: d.authorId, why: `wrote ${what(d)}` });
  const docSigs = docRows.length
    ? yield* rows(
        q
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
          .orderBy(asc(signatures.id)),
      )
    : [];
  for (const s of docSigs) out.push({ userId: s.userId, why: `signed authorship of ${what(docRows.find((d) => d.id === s.recordId)!)}` });
  return out;
}

export function lineageAuthors(db: DbOrTx, modelVersionId: number): LineageAuthor[] {
  return onSqlite(db, (q, t) => lineageAuthorsIn(q, t, modelVersionId));
}
