/**
 * Where a checkpoint's exact-resume state is kept (trainer/resume-state.ts: weights, optimizer slots, epoch/step,
 * bookkeeping, effective settings), so a paused run continues exactly, in this process, after a restart, or on
 * another machine of a cluster (issue 16).
 *
 * The state bytes go to the content-addressed artifact store (by their own SHA-256, which the trainer verifies on
 * resume). The link "checkpoint (run, epoch) → state sha256" is a row of `resume_states` (db/schema/resume-states.ts)
 * in the store, which every worker of a cluster shares (their data directories differ). Installations from before the
 * table kept it as a pointer file `<dataDir>/resume-states/<run id>-<epoch>.json`: on SQLite, loading falls back to
 * that file when the table has no row, and dropping removes such files too.
 *
 * Invariants:
 * - The pointer is written after the state bytes are stored, so a pointer never names missing bytes.
 * - A pointer is created once: storing the same state again is a no-op, a different one for the same (run, epoch) is
 *   an error (the resumed run retrains an epoch only after its pointers past the last checkpoint were dropped).
 * - A state is looked up by the run and epoch of its checkpoint (one checkpoint per run and epoch), NOT by the
 *   weights hash: two runs can reach the same weights at an epoch with different settings (a pilot changed the
 *   rate or the cadence of one), and the state carries those settings.
 * - The pointer is not part of the ledger (no audit event, no protective trigger): the trainer re-checks the state's
 *   SHA-256 before using it, and the weights it restores are the checkpoint's (their hash is what the ledger binds).
 *
 * The synchronous forms (storeResumeState, loadResumeState, dropResumeStatesAfter) are SQLite only, for callers not
 * yet on the store; the `…On` forms run on either store.
 */
import fs from "node:fs";
import path from "node:path";
import { and, eq, gt } from "drizzle-orm";
import type { Db, Tx } from "@/db/client";
import * as sqliteTables from "@/db/schema";
import { asStore, exec, reader, row, runOnSqliteTx, transact, type Store, type StoreTables, type TxBody } from "@/db/store";
import type { ArtifactStore } from "@/server/artifacts/store";
import { awaitedArtifacts, type AnyArtifactStore } from "@/server/artifacts/async-store";

const SHA256 = /^[0-9a-f]{64}$/;

/** A checkpoint of a run, by its run id and epoch. */
export type CheckpointAt = { runId: number; epoch: number };

function checkAt(at: CheckpointAt): void {
  if (!Number.isSafeInteger(at.runId) || !Number.isSafeInteger(at.epoch))
    throw new Error(`not a checkpoint: run ${at.runId}, epoch ${at.epoch}`);
}

function pointerDir(dataDir: string): string {
  return path.join(dataDir, "resume-states");
}

function pointerPath(dataDir: string, at: CheckpointAt): string {
  checkAt(at);
  return path.join(pointerDir(dataDir), `${at.runId}-${at.epoch}.json`);
}

/** The state sha256 of an installation's pointer file from before the table (SQLite only), or null. */
function filePointer(dataDir: string, at: CheckpointAt): string | null {
  const target = pointerPath(dataDir, at);
  if (!fs.existsSync(target)) return null;
  return (JSON.parse(fs.readFileSync(target, "utf8")) as { stateSha256: string }).stateSha256;
}

/** Removes the pointer files of a run's epochs after `epoch` (installations from before the table). */
function dropFilePointersAfter(dataDir: string, runId: number, epoch: number): void {
  const dir = pointerDir(dataDir);
  if (!fs.existsSync(dir)) return;
  for (const name of fs.readdirSync(dir)) {
    const m = /^(\d+)-(\d+)\.json$/.exec(name);
    if (m && Number(m[1]) === runId && Number(m[2]) > epoch) fs.rmSync(path.join(dir, name), { force: true });
  }
}

/** The SQLite handle of a synchronous form's store (they run on SQLite only: PostgreSQL callers use the `…On` forms). */
function sqliteOnly(db: Store | Db, form: string): Db {
  const store = asStore(db);
  if (store.dialect !== "sqlite") throw new Error(`${form} runs on SQLite only; on PostgreSQL use ${form}On`);
  return store.db;
}

function checkStored(reported: string, stored: string): void {
  if (stored !== reported) throw new Error(`resume state: trainer reported sha256 ${reported} but the bytes hash to ${stored}`);
}

/**
 * Links the checkpoint (run, epoch) to a stored state, once: a row already there with the same sha256 is left as it
 * is; with another, an error. The insert does nothing on a conflict and the row is then read, so two writers of one
 * pointer at once (two workers of a cluster) agree or one of them fails, without a lock.
 */
function* linkStateIn(tx: Tx, t: StoreTables, at: CheckpointAt, stateSha256: string): TxBody<void> {
  const rs = t.resumeStates;
  yield* exec(tx.insert(rs).values({ runId: at.runId, epoch: at.epoch, stateSha256 }).onConflictDoNothing());
  const linked = yield* row(
    tx
      .select({ sha: rs.stateSha256 })
      .from(rs)
      .where(and(eq(rs.runId, at.runId), eq(rs.epoch, at.epoch))),
  );
  if (linked?.sha !== stateSha256)
    throw new Error(
      `resume state of run ${at.runId} at epoch ${at.epoch}: a different state (${linked?.sha ?? "none"}) is already linked, not ${stateSha256}`,
    );
}

function* linkedStateIn(q: Tx, t: StoreTables, at: CheckpointAt): TxBody<string | null> {
  const rs = t.resumeStates;
  const linked = yield* row(
    q
      .select({ sha: rs.stateSha256 })
      .from(rs)
      .where(and(eq(rs.runId, at.runId), eq(rs.epoch, at.epoch))),
  );
  return linked?.sha ?? null;
}

function* unlinkAfterIn(tx: Tx, t: StoreTables, runId: number, epoch: number): TxBody<void> {
  const rs = t.resumeStates;
  yield* exec(tx.delete(rs).where(and(eq(rs.runId, runId), gt(rs.epoch, epoch))));
}

/** Stores a checkpoint's resume state and links it to the checkpoint (run, epoch). SQLite only (see the header). */
export function storeResumeState(
  deps: { db: Store | Db; artifacts: ArtifactStore },
  at: CheckpointAt,
  state: Uint8Array,
  stateSha256: string,
): void {
  checkAt(at);
  const db = sqliteOnly(deps.db, "storeResumeState");
  checkStored(stateSha256, deps.artifacts.put(state).sha256);
  db.transaction((tx) => runOnSqliteTx(tx, linkStateIn(tx, sqliteTables, at, stateSha256)), { behavior: "immediate" });
}

/** storeResumeState on either store. */
export async function storeResumeStateOn(
  deps: { db: Store | Db; artifacts: AnyArtifactStore },
  at: CheckpointAt,
  state: Uint8Array,
  stateSha256: string,
): Promise<void> {
  checkAt(at);
  const store = asStore(deps.db);
  checkStored(stateSha256, (await awaitedArtifacts(deps.artifacts).put(state)).sha256);
  await transact(store, (tx) => linkStateIn(tx, store.tables, at, stateSha256));
}

/** The resume state of the run's checkpoint at that epoch, or null when none was stored. SQLite only (see the header). */
export function loadResumeState(
  deps: { db: Store | Db; artifacts: ArtifactStore; dataDir: string },
  at: CheckpointAt,
): { state: Uint8Array; sha256: string } | null {
  checkAt(at);
  const q = sqliteOnly(deps.db, "loadResumeState") as unknown as Tx;
  const sha = runOnSqliteTx(q, linkedStateIn(q, sqliteTables, at)) ?? filePointer(deps.dataDir, at);
  if (sha === null || !SHA256.test(sha) || !deps.artifacts.has(sha)) return null;
  return { state: deps.artifacts.get(sha), sha256: sha };
}

/** loadResumeState on either store (the pointer files of older installations exist on SQLite only). */
export async function loadResumeStateOn(
  deps: { db: Store | Db; artifacts: AnyArtifactStore; dataDir: string },
  at: CheckpointAt,
): Promise<{ state: Uint8Array; sha256: string } | null> {
  checkAt(at);
  const store = asStore(deps.db);
  const { resumeStates: rs } = store.tables;
  const [linked] = await reader(store)
    .select({ sha: rs.stateSha256 })
    .from(rs)
    .where(and(eq(rs.runId, at.runId), eq(rs.epoch, at.epoch)))
    .limit(1);
  const sha = linked?.sha ?? (store.dialect === "sqlite" ? filePointer(deps.dataDir, at) : null);
  const artifacts = awaitedArtifacts(deps.artifacts);
  if (sha === null || !SHA256.test(sha) || !(await artifacts.has(sha))) return null;
  return { state: await artifacts.get(sha), sha256: sha };
}

/**
 * Removes the pointers of a run's checkpoints after `epoch` (the state bytes stay in the artifact store). A process
 * that died between storing a state and committing its checkpoint row left such a pointer; the resumed run retrains
 * that epoch and stores its state again (pointers are created only once). SQLite only (see the header).
 */
export function dropResumeStatesAfter(deps: { db: Store | Db; dataDir: string }, runId: number, epoch: number): void {
  sqliteOnly(deps.db, "dropResumeStatesAfter").transaction((tx) => runOnSqliteTx(tx, unlinkAfterIn(tx, sqliteTables, runId, epoch)), {
    behavior: "immediate",
  });
  dropFilePointersAfter(deps.dataDir, runId, epoch);
}

/** dropResumeStatesAfter on either store. */
export async function dropResumeStatesAfterOn(deps: { db: Store | Db; dataDir: string }, runId: number, epoch: number): Promise<void> {
  const store = asStore(deps.db);
  await transact(store, (tx) => unlinkAfterIn(tx, store.tables, runId, epoch));
  if (store.dialect === "sqlite") dropFilePointersAfter(deps.dataDir, runId, epoch);
}
