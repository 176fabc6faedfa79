/**
 * The app's side of witnessing: after each new signed checkpoint, push the latest one to every configured witness
 * (RUNLEDGER_WITNESSES), verify and store the cosignatures, and keep each witness's status.
 *
 * Invariants:
 * - Never blocks a request or a transaction: pushes run on the event loop after the signal (setImmediate) or a
 *   timer, one run at a time; every failure is recorded in witness_status and logged, never thrown to the app.
 * - Several processes (web servers on one store, SQLite or PostgreSQL) may each push: a push overtaken by another
 *   process's newer checkpoint ends "superseded" (no failure recorded); a duplicate cosignature is stored once (unique
 *   index, one atomic insert that ignores the duplicate); the status is one atomic upsert (store.ts). No lock is held
 *   across a push: two servers may send the witness the same checkpoint, which costs one extra request.
 * - Works on either store (deps.db: Store | Db): every read and write is awaited; on PostgreSQL the proof comes from
 *   the stored tree levels in one read-only snapshot (tree-levels-pg.ts), else from the leaves read in seq order.
 * - Only the latest checkpoint is pushed (a consistency proof from the witness's last size covers the ones in
 *   between). The witness's size is remembered; a 409 answer teaches the right size and the push is retried.
 * - Before pushing, the consistency proof is checked against the checkpoint's signed root (proof from the stored
 *   tree levels in O(log n) reads, else recomputed from every leaf); a proof that does not check is never sent.
 * - A cosignature is stored only after it verified under the configured witness key.
 */
import { asc, lte } from "drizzle-orm";
import type { Db } from "@/db/client";
import type { PgDb } from "@/db/pg-client";
import { auditEvents as pgAuditEvents } from "@/db/schema-pg";
import { asStore, reader, type Store } from "@/db/store";
import type { AuditKeys } from "@/server/audit/keys";
import { consistencyProofBetween, keysToSignWith, latestAuditCheckpoint, type AuditCheckpointRow } from "@/server/audit/checkpoints";
import { latestCheckpointQuery } from "@/server/audit/checkpoint-reads";
import { TreeLevelReader } from "@/server/audit/tree-levels";
import { withTreeLevelsPg } from "@/server/audit/tree-levels-pg";
import { consistencyProof, merkleRoot, verifyConsistency } from "@/server/audit/merkle";
import { formatCheckpointBody, logOrigin, signCheckpointNote } from "./checkpoint-note";
import { type WitnessConfig, type WitnessEndpoint, requestCosignature } from "./client";
import { onAuditCheckpointSigned } from "./checkpoint-signal";
import {
  firstCheckpointKeyFingerprintOn,
  hasCosignatureOn,
  insertCosignatureOn,
  readWitnessStatusOn,
  upsertWitnessStatusOn,
} from "./store";

export type PushResult =
  | { url: string; outcome: "cosigned"; treeSize: number; ms: number }
  | { url: string; outcome: "already cosigned"; treeSize: number }
  /** Another process (a second web server on the store) signed and pushed a newer checkpoint first: nothing to do. */
  | { url: string; outcome: "superseded"; treeSize: number; latestTreeSize: number }
  | { url: string; outcome: "failed"; treeSize: number; error: string; reachable: boolean };

export type WitnessPusherDeps = { db: Store | Db; auditKeys: AuditKeys };
export const WITNESS_PUSH_EVERY_MS = 60_000;

/**
 * Consistency proof from `oldSize` to the checkpoint, checked here against the checkpoint's signed root before it
 * is sent: from the stored tree levels (O(log n) reads), else from every leaf (consistencyProofBetween, O(n)).
 */
export async function consistencyProofFor(
  db: Store | Db,
  oldSize: number,
  cp: Pick<AuditCheckpointRow, "id" | "treeSize" | "rootHash">,
): Promise<Buffer[]> {
  const s = asStore(db);
  if (s.dialect === "pg") return consistencyProofForPg(s.db, oldSize, cp);
  const signedRoot = Buffer.from(cp.rootHash, "hex");
  try {
    const reader = new TreeLevelReader(s.db);
    const proof = reader.consistencyPath(oldSize, cp.treeSize);
    if (verifyConsistency(oldSize, cp.treeSize, reader.root(oldSize), signedRoot, proof)) return proof;
  } catch {
    // stored levels missing or beyond their read budget: fall back to the leaves
  }
  const p = consistencyProofBetween(s.db, oldSize, cp.treeSize);
  if (p.rootN !== cp.rootHash) throw new Error(`the log's events no longer give checkpoint #${cp.id}'s root (tampered log?)`);
  return p.proof.map((h) => Buffer.from(h, "hex"));
}

/**
 * consistencyProofFor on PostgreSQL: the stored levels in one read-only snapshot, else (levels missing, beyond their
 * read budget, or not giving the signed root) every leaf up to the size in another.
 */
async function consistencyProofForPg(
  db: PgDb,
  oldSize: number,
  cp: Pick<AuditCheckpointRow, "id" | "treeSize" | "rootHash">,
): Promise<Buffer[]> {
  const signedRoot = Buffer.from(cp.rootHash, "hex");
  const snapshot = { isolationLevel: "repeatable read", accessMode: "read only" } as const;
  try {
    const { proof, oldRoot } = await db.transaction(
      (tx) => withTreeLevelsPg(tx, (walk) => ({ proof: walk.consistencyPath(oldSize, cp.treeSize), oldRoot: walk.root(oldSize) })),
      snapshot,
    );
    if (verifyConsistency(oldSize, cp.treeSize, oldRoot, signedRoot, proof)) return proof;
  } catch {
    // stored levels missing or beyond their read budget: fall back to the leaves
  }
  const rows = await db.transaction(
    (tx) =>
      tx
        .select({ seq: pgAuditEvents.seq, leafHash: pgAuditEvents.leafHash })
        .from(pgAuditEvents)
        .where(lte(pgAuditEvents.seq, cp.treeSize))
        .orderBy(asc(pgAuditEvents.seq)),
    snapshot,
  );
  const leaves = rows.map((r, i) => {
    if (r.seq !== i + 1) throw new Error(`seq ${i + 1} missing from the log (found ${r.seq})`);
    return Buffer.from(r.leafHash, "hex");
  });
  if (leaves.length !== cp.treeSize) throw new Error(`the log has ${leaves.length} events, fewer than tree size ${cp.treeSize}`);
  if (!merkleRoot(leaves).equals(signedRoot))
    throw new Error(`the log's events no longer give checkpoint #${cp.id}'s root (tampered log?)`);
  return consistencyProof(oldSize, leaves);
}

/** The latest signed checkpoint on either store. */
async function latestCheckpointOn(db: Store | Db): Promise<AuditCheckpointRow | undefined> {
  const s = asStore(db);
  if (s.dialect === "sqlite") return latestAuditCheckpoint(s.db);
  return (await latestCheckpointQuery(reader(s), s.tables))[0];
}

export class WitnessPusher {
  private pending: Promise<PushResult[]> | null = null;
  private tail: Promise<unknown> = Promise.resolve();

  constructor(
    private readonly deps: WitnessPusherDeps,
    readonly config: WitnessConfig,
    private readonly opts: { timeoutMs?: number; origin?: string; log?: (line: string) => void } = {},
  ) {}

  /** This log's origin: given, or derived from the key of the store's first checkpoint (read now). */
  async originNow(): Promise<string> {
    return this.opts.origin ?? logOrigin((await firstCheckpointKeyFingerprintOn(this.deps.db)) ?? this.deps.auditKeys.fingerprint);
  }

  /** Pushes the latest checkpoint to each witness that has not cosigned it yet. Runs are serialised and coalesced. */
  pushNow(): Promise<PushResult[]> {
    if (this.pending) return this.pending;
    const run = this.tail.then(() => {
      this.pending = null;
      return this.pushLatest();
    });
    this.pending = run;
    this.tail = run.catch(() => undefined);
    return run;
  }

  /** Fire and forget (signal and timer). */
  schedule(): void {
    setImmediate(() => {
      this.pushNow().catch((err: Error) => this.log(`witness push failed: ${err.message}`));
    });
  }

  /** Pushes on every checkpoint signed in this process, every `everyMs` (checkpoints of other processes, retries), and now. */
  start(everyMs = WITNESS_PUSH_EVERY_MS): () => void {
    const off = onAuditCheckpointSigned(() => this.schedule());
    const timer = setInterval(() => this.schedule(), everyMs);
    timer.unref?.();
    this.schedule();
    return () => {
      off();
      clearInterval(timer);
    };
  }

  private log(line: string): void {
    (this.opts.log ?? ((l: string) => console.error(l)))(line);
  }

  private async pushLatest(): Promise<PushResult[]> {
    if (this.config.witnesses.length === 0) return [];
    const cp = await latestCheckpointOn(this.deps.db);
    if (!cp) return [];
    return Promise.all(this.config.witnesses.map((w) => this.pushTo(w, cp)));
  }

  private async pushTo(w: WitnessEndpoint, cp: AuditCheckpointRow): Promise<PushResult> {
    const { db } = this.deps;
    const keyId = w.key.keyId.toString("hex");
    if (await hasCosignatureOn(db, w.key.name, keyId, cp.treeSize, cp.rootHash))
      return { url: w.url, outcome: "already cosigned", treeSize: cp.treeSize };
    const started = performance.now();
    const now = () => new Date().toISOString();
    const status = await readWitnessStatusOn(db, w.url);
    const sameWitness = status?.witnessName === w.key.name && status.keyId === keyId;
    let oldSize = sameWitness && status.cosignedSize !== null && status.cosignedSize <= cp.treeSize ? status.cosignedSize : 0;
    const base = { url: w.url, witnessName: w.key.name, keyId, cosignedSize: sameWitness ? status.cosignedSize : null };
    const fail = async (error: string, reachable: boolean | null): Promise<PushResult> => {
      const at = now();
      await upsertWitnessStatusOn(db, {
        ...base,
        reachable: reachable ?? (sameWitness ? status.reachable : null),
        lastAttemptAt: at,
        lastSuccessAt: sameWitness ? status.lastSuccessAt : null,
        lastError: error,
        lastErrorAt: at,
        failingSince: (sameWitness ? status.failingSince : null) ?? at,
      });
      this.log(`witness ${w.url}: ${error}`);
      return { url: w.url, outcome: "failed", treeSize: cp.treeSize, error, reachable: reachable ?? false };
    };

    let origin: string;
    let note: string;
    let noteText: string;
    try {
      origin = await this.originNow();
      const body = { origin, treeSize: cp.treeSize, rootHash: cp.rootHash };
      noteText = formatCheckpointBody(body);
      // The note is signed by the key that signed the checkpoint; a server that has not followed a key rotation (or
      // lacks the new key, key-custody.ts) does not sign it with the retired one.
      const keys = await keysToSignWith(this.deps.auditKeys);
      if (keys.fingerprint !== cp.keyFingerprint)
        throw new Error(`checkpoint #${cp.id} is signed by ${cp.keyFingerprint}, and this process signs with ${keys.fingerprint}`);
      note = signCheckpointNote(keys.privateKey, body);
    } catch (err) {
      return fail(`cannot make the checkpoint note: ${(err as Error).message}`, null);
    }
    for (let attempt = 0; attempt < 3; attempt++) {
      let proof: Buffer[] = [];
      if (oldSize > 0 && oldSize < cp.treeSize) {
        try {
          proof = await consistencyProofFor(db, oldSize, cp);
        } catch (err) {
          return fail(`not pushed: ${(err as Error).message}`, null);
        }
      }
      const outcome = await requestCosignature(w, { oldSize, proof, note, noteText }, { timeoutMs: this.opts.timeoutMs });
      if (outcome.kind === "unreachable") return fail(`unreachable: ${outcome.message}`, false);
      if (outcome.kind === "refused") {
        const why =
          outcome.httpStatus === 422
            ? "the witness found this checkpoint inconsistent with the one it cosigned before"
            : outcome.httpStatus === 403
              ? "the witness does not accept this log's signature (is it configured with this log's key?)"
              : outcome.httpStatus === 404
                ? `the witness does not know origin "${origin}"`
                : "refused";
        return fail(`${why} (${outcome.message})`, true);
      }
      if (outcome.kind === "conflict") {
        if (outcome.witnessSize > cp.treeSize) {
          // Several servers push their own checkpoints: one that was overtaken by a newer one of this log is not a
          // rollback. The log's latest checkpoint (read now) reaching the witness's size says which it is.
          const latest = await latestCheckpointOn(db);
          if (latest && latest.treeSize >= outcome.witnessSize)
            return { url: w.url, outcome: "superseded", treeSize: cp.treeSize, latestTreeSize: latest.treeSize };
          return fail(
            `the witness has already cosigned tree size ${outcome.witnessSize}, larger than this log's latest checkpoint (${cp.treeSize}): rolled-back log, or another log using origin "${origin}"`,
            true,
          );
        }
        if (outcome.witnessSize === oldSize)
          return fail(`the witness cosigned a different root at tree size ${oldSize} (fork: history differs from what it saw)`, true);
        oldSize = outcome.witnessSize;
        continue;
      }
      const c = outcome.cosignature;
      const at = now();
      await insertCosignatureOn(db, {
        checkpointId: cp.id,
        origin,
        treeSize: cp.treeSize,
        rootHash: cp.rootHash,
        witnessName: c.name,
        keyId: c.keyId,
        timestamp: c.timestamp,
        signature: c.signature,
        receivedAt: at,
      });
      await upsertWitnessStatusOn(db, {
        ...base,
        reachable: true,
        cosignedSize: cp.treeSize,
        lastAttemptAt: at,
        lastSuccessAt: at,
        lastError: sameWitness ? status.lastError : null,
        lastErrorAt: sameWitness ? status.lastErrorAt : null,
        failingSince: null,
      });
      return { url: w.url, outcome: "cosigned", treeSize: cp.treeSize, ms: performance.now() - started };
    }
    return fail("the witness kept changing its size; giving up until the next checkpoint", true);
  }
}
