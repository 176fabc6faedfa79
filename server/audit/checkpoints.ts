/**
 * Signed tree heads ("checkpoints") over the audit ledger, and proofs read from the database.
 *
 * Invariants:
 * - A tree head is {treeSize, rootHash, at, keyFingerprint}; its signature is base64 Ed25519 over the
 *   head's canonical JSON (RFC 8785) bytes. rootHash is the RFC 6962 root over leaf hashes of seq 1..treeSize.
 * - A checkpoint row and its "audit.checkpoint" event are written in one transaction (auditCheckpointPart, the same
 *   body on SQLite and PostgreSQL: the same events and key give the same bytes, roots and signatures). The event
 *   (seq treeSize+1 or later) carries the whole signed head, so the log itself keeps every head it was given.
 * - The server never signs a log that contradicts itself: before signing it re-checks the previous
 *   checkpoint's signature and root, and the content and chain of every event after it. Otherwise it throws
 *   AuditIntegrityError (fail closed rather than launder a tampered tail under a fresh signature).
 *   Cost: one read of every leaf hash (O(N)) plus a full check of the events since the previous checkpoint.
 * - Nothing is cached between calls: every root is recomputed from the rows, so several processes can share the file
 *   or the PostgreSQL database. Whether to sign and what is signed are decided inside the signing transaction, which
 *   is SQLite's IMMEDIATE or, on PostgreSQL, holds the ledger's advisory lock from its first statement: each tree size
 *   is signed once however many servers sign. The signing key is used in memory only, never written to the database.
 */
import { z } from "zod";
import * as schemaTables from "@/db/schema";
import type { Db, Tx } from "@/db/client";
import { PG_LOCK_KEYS } from "@/db/pg-client";
import { asStore, reader, row, runOnSqliteTx, transact, type Store, type StoreTables, type TxBody } from "@/db/store";
import { canonicalJson } from "@/contracts/canonical";
import { SYSTEM_ACTOR, type AuditEventRow } from "./ledger";
import { appendEvent } from "./ledger-pg";
import { type AuditKeys, type AuditPublicKey, signBytes, verifyBytes } from "./keys";
import { MerkleAccumulator, consistencyProof, inclusionProof, merkleRoot } from "./merkle";
import { EventChainChecker } from "./event-hashing";
import { CHECKPOINT_ACTION } from "./verify-range";
import { announceAuditCheckpointSigned } from "./witness/checkpoint-signal";
import {
  chainHashIn,
  checkpointEventPayloadIn,
  countEventsAfterIn,
  countEventsAfterQuery,
  eachEventFrom,
  eachLeafUpTo,
  latestCheckpointIn,
  latestCheckpointQuery,
  storeTreeLevelsIn,
} from "./checkpoint-reads";
import {
  type AuditCheckpointRow,
  type AuditDbSource,
  auditCheckpointsWithTreeSize,
  countAuditEventsAfter,
  iterateLeafHashes,
  latestAuditCheckpoint,
  maxAuditSeq,
} from "./ledger-reads";

export type { AuditCheckpointRow } from "./ledger-reads";
export { latestAuditCheckpoint, listAuditCheckpoints } from "./ledger-reads";

export type TreeHead = { treeSize: number; rootHash: string; at: string; keyFingerprint: string };

// CHECKPOINT_ACTION: the action of a checkpoint's own event (not counted by the policy; verify-range.ts defines it).

export class AuditIntegrityError extends Error {
  constructor(message: string) {
    super(message);
    this.name = "AuditIntegrityError";
  }
}

export function treeHeadOf(row: Pick<AuditCheckpointRow, "treeSize" | "rootHash" | "at" | "keyFingerprint">): TreeHead {
  return { treeSize: row.treeSize, rootHash: row.rootHash, at: row.at, keyFingerprint: row.keyFingerprint };
}

/** The exact bytes that are signed. */
export function treeHeadBytes(head: TreeHead): string {
  return canonicalJson(treeHeadOf(head));
}

export function signTreeHead(keys: Pick<AuditKeys, "privateKey">, head: TreeHead): string {
  return signBytes(keys, treeHeadBytes(head));
}

/** Checks the signature only; callers also compare head.keyFingerprint with the key they trust. */
export function verifyTreeHeadSignature(key: Pick<AuditPublicKey, "publicKey">, head: TreeHead, signatureB64: string): boolean {
  return verifyBytes(key.publicKey, treeHeadBytes(head), signatureB64);
}

// ---------------------------------------------------------------------------------------------------------
// Trusted checkpoint file: what an auditor keeps outside the server to detect truncation or rewriting later.

export const TRUSTED_CHECKPOINT_FORMAT = "runledger-audit-checkpoint/1";

const hex64 = z.string().regex(/^[0-9a-f]{64}$/);
export const trustedCheckpointSchema = z.object({
  format: z.literal(TRUSTED_CHECKPOINT_FORMAT),
  checkpointId: z.number().int().positive().optional(),
  reason: z.string().optional(),
  treeHead: z.object({
    treeSize: z.number().int().nonnegative(),
    rootHash: hex64,
    at: z.string().min(1),
    keyFingerprint: z.string().startsWith("SHA256:"),
  }),
  signature: z.string().min(1),
  /** The server's public key (SPKI PEM) as the auditor received it; the verifier may take it as the trust anchor. */
  publicKeyPem: z.string().includes("BEGIN PUBLIC KEY").optional(),
});
export type TrustedCheckpoint = z.infer<typeof trustedCheckpointSchema>;

export function trustedCheckpointFromRow(row: AuditCheckpointRow, publicKeyPem?: string): TrustedCheckpoint {
  return {
    format: TRUSTED_CHECKPOINT_FORMAT,
    checkpointId: row.id,
    reason: row.reason,
    treeHead: treeHeadOf(row),
    signature: row.signature,
    ...(publicKeyPem ? { publicKeyPem } : {}),
  };
}

export function parseTrustedCheckpoint(json: unknown): TrustedCheckpoint {
  const parsed = trustedCheckpointSchema.safeParse(json);
  if (!parsed.success)
    throw new Error(`not a trusted checkpoint file: ${parsed.error.issues.map((i) => `${i.path.join(".")}: ${i.message}`).join("; ")}`);
  return parsed.data;
}

// ---------------------------------------------------------------------------------------------------------
// Creating checkpoints.

/**
 * Payload of the "audit.checkpoint" event: the whole signed head, so the log carries it too, and the tree's
 * frontier (compact range, hex) at treeSize, so the next checkpoint continues the tree without re-reading every leaf.
 */
export type CheckpointEventPayload = TreeHead & { checkpointId: number; signature: string; reason: string; frontier?: string[] };

/** The tree at the previous checkpoint, resumed from its event's frontier; null when unusable (then recompute). */
function resumeFromCheckpointEvent(payload: CheckpointEventPayloadRead, prev: AuditCheckpointRow): MerkleAccumulator | null {
  if (!payload?.frontier || payload.treeSize !== prev.treeSize || payload.rootHash !== prev.rootHash) return null;
  try {
    const acc = MerkleAccumulator.fromFrontier(
      prev.treeSize,
      payload.frontier.map((h) => Buffer.from(h, "hex")),
    );
    return acc.root().toString("hex") === prev.rootHash ? acc : null;
  } catch {
    return null;
  }
}

type CheckpointEventPayloadRead = Partial<{ treeSize: number; rootHash: string; frontier: string[] }> | null;

/**
 * Root over seq 1..N (N = current max seq) and its frontier. The tree up to the previous checkpoint is resumed
 * from the frontier its event recorded (checked against the signed root), so the cost is O(events since then);
 * without a usable frontier every leaf is re-read and must reproduce the previous signed root. Either way the
 * new root extends the signed history, and every event since the previous checkpoint must have intact content
 * and chain. Throws AuditIntegrityError otherwise. A transaction part (db/store.ts): the same checks on both stores,
 * the bulk reads streamed on SQLite and paged on PostgreSQL (checkpoint-reads.ts).
 */
function* rootOfCheckedLog(
  tx: Tx,
  t: StoreTables,
  prevKey: AuditPublicKey,
): TxBody<{ treeSize: number; rootHash: string; frontier: string[] }> {
  const prev = yield* latestCheckpointIn(tx, t);
  const prevSize = prev?.treeSize ?? 0;
  if (prev) {
    if (prev.keyFingerprint !== prevKey.fingerprint || !verifyTreeHeadSignature(prevKey, treeHeadOf(prev), prev.signature)) {
      throw new AuditIntegrityError(`refusing to sign: the latest checkpoint #${prev.id} is not validly signed by this server's key`);
    }
  }
  let acc = prev ? resumeFromCheckpointEvent(yield* checkpointEventPayloadIn(tx, t, prev.id), prev) : null;
  if (!acc) {
    const fresh = new MerkleAccumulator();
    let expected = 1;
    yield* eachLeafUpTo(prevSize, (seq, leafHex) => {
      if (seq !== expected) throw new AuditIntegrityError(`refusing to sign: seq ${expected} missing (found ${seq})`);
      fresh.pushHex(leafHex);
      expected++;
    });
    if (fresh.size !== prevSize)
      throw new AuditIntegrityError(`refusing to sign: checkpoint #${prev?.id} covers ${prevSize} events, the log has ${fresh.size}`);
    if (prev && fresh.root().toString("hex") !== prev.rootHash) {
      throw new AuditIntegrityError(`refusing to sign: events 1..${prevSize} no longer match checkpoint #${prev.id}`);
    }
    acc = fresh;
  }

  let checker: EventChainChecker;
  try {
    checker = prevSize === 0 ? new EventChainChecker() : new EventChainChecker(prevSize + 1, yield* chainHashIn(tx, t, prevSize));
  } catch {
    throw new AuditIntegrityError(`refusing to sign: seq ${prevSize} has no valid chain hash`);
  }
  const tree = acc;
  yield* eachEventFrom(prevSize + 1, (row) => {
    const problem = checker.check(row);
    if (problem) throw new AuditIntegrityError(`refusing to sign: ${problem.problem}`);
    tree.pushHex(row.leafHash);
  });
  return { treeSize: tree.size, rootHash: tree.root().toString("hex"), frontier: tree.frontier().map((b) => b.toString("hex")) };
}

/**
 * Thrown instead of signing when the ledger names a signing key this process does not hold (after a key rotation made
 * elsewhere): it signs nothing rather than sign with the retired key. The process has already said so once.
 */
export class SigningKeyNotHeldError extends Error {
  constructor(message: string) {
    super(message);
    this.name = "SigningKeyNotHeldError";
  }
}

/**
 * Signing keys that catch up with the ledger before each signature (a PostgreSQL web server's, key-custody.ts
 * openAuditSigningKeysOn): `followLedger` resolves to the key the ledger has in force, loaded from the key directory
 * if it changed, or rejects with SigningKeyNotHeldError. SQLite's live keys follow on every use and have no such method.
 */
export type LedgerFollowingKeys = AuditKeys & { followLedger(): Promise<AuditKeys> };

/** The key to sign with now: `keys` itself, or what its followLedger says (see LedgerFollowingKeys). */
export async function keysToSignWith(keys: AuditKeys): Promise<AuditKeys> {
  const follow = (keys as Partial<LedgerFollowingKeys>).followLedger;
  return typeof follow === "function" ? follow.call(keys) : keys;
}

export type MadeCheckpoint = { checkpoint: AuditCheckpointRow; event: AuditEventRow };
export type CreateCheckpointOptions = { at?: string; previousKey?: AuditPublicKey };

/**
 * The checkpoint as a transaction part, the same on both stores: checks the log and computes its root, keeps the
 * tree levels in step, signs the head, stores it and records its "audit.checkpoint" event. The signing key is only
 * used here, never written. On PostgreSQL its transaction holds the ledger's advisory lock from its first statement
 * (createAuditCheckpointOn), so the head it reads is still the head when its event is appended.
 */
export function* auditCheckpointPart(
  tx: Tx,
  t: StoreTables,
  keys: AuditKeys,
  reason: string,
  opts: CreateCheckpointOptions = {},
): TxBody<MadeCheckpoint> {
  const { treeSize, rootHash, frontier } = yield* rootOfCheckedLog(tx, t, opts.previousKey ?? keys);
  yield* storeTreeLevelsIn(treeSize, rootHash); // derived index for O(log n) proofs; never throws
  const head: TreeHead = { treeSize, rootHash, at: opts.at ?? new Date().toISOString(), keyFingerprint: keys.fingerprint };
  const signature = signTreeHead(keys, head);
  const checkpoint = (yield* row(
    tx
      .insert(t.auditCheckpoints)
      .values({ ...head, reason, signature })
      .returning(),
  ))!;
  const payload: CheckpointEventPayload = { checkpointId: checkpoint.id, ...head, signature, reason, frontier };
  const event = yield* appendEvent({
    actor: SYSTEM_ACTOR,
    action: "audit.checkpoint",
    entityType: "auditCheckpoint",
    entityId: checkpoint.id,
    payload,
    at: head.at,
  });
  return { checkpoint, event };
}

/**
 * Signs a tree head over every event so far, stores it, and records an "audit.checkpoint" event, all in one
 * transaction (nested as a savepoint if the caller already holds one on this connection). Returns both rows.
 * `previousKey`: the key that signed the latest checkpoint when it is not `keys` (only right after a key
 * rotation, in the rotation's transaction: key-rotation.ts); by default the latest checkpoint must be `keys`'.
 * SQLite only (synchronous, for unported callers); createAuditCheckpointOn takes either store.
 */
export function createAuditCheckpoint(db: Db, keys: AuditKeys, reason: string, opts: CreateCheckpointOptions = {}): MadeCheckpoint {
  const made = db.transaction((tx) => runOnSqliteTx(tx, auditCheckpointPart(tx, schemaTables, keys, reason, opts)), {
    behavior: "immediate",
  });
  announceAuditCheckpointSigned(); // lets the witness pusher (witness/pusher.ts) push it right away
  return made;
}

/**
 * createAuditCheckpoint on either store. On PostgreSQL the whole part runs under the ledger's advisory lock
 * (PG_LOCK_KEYS.ledger, taken first): servers sharing the database sign one at a time, each over the head it read.
 */
export async function createAuditCheckpointOn(
  store: Store | Db,
  keys: AuditKeys,
  reason: string,
  opts: CreateCheckpointOptions = {},
): Promise<MadeCheckpoint> {
  const s = asStore(store);
  if (s.dialect === "sqlite") return createAuditCheckpoint(s.db, keys, reason, opts);
  // A rotation committed after this read makes the part refuse: the latest checkpoint is then not this key's.
  const signing = await keysToSignWith(keys);
  const made = await transact(s, (tx) => auditCheckpointPart(tx, s.tables, signing, reason, opts), { pgLock: PG_LOCK_KEYS.ledger });
  announceAuditCheckpointSigned();
  return made;
}

export type CheckpointPolicy = { everyEvents?: number; everyMinutes?: number; reason?: string; now?: Date };

/**
 * Why a checkpoint is due (its reason), or null: at least `everyEvents` events (not counting checkpoint events) or
 * `everyMinutes` since the last one, and something happened since; the first event ever also triggers one.
 */
function dueReason(
  last: AuditCheckpointRow | undefined,
  newEvents: number,
  { everyEvents = 100, everyMinutes = 10, reason, now = new Date() }: CheckpointPolicy,
): string | null {
  if (newEvents === 0) return null;
  const minutesSince = last ? (now.getTime() - Date.parse(last.at)) / 60_000 : Infinity;
  const byCount = newEvents >= everyEvents;
  const byTime = minutesSince >= everyMinutes;
  if (!byCount && !byTime) return null;
  return reason ?? (last ? (byCount ? `every ${everyEvents} events` : `every ${everyMinutes} minutes`) : "first events");
}

/**
 * Creates a checkpoint when one is due (dueReason). Returns the new checkpoint, or null when none was due. Whether one
 * is due is read first without the write lock (every API write asks, and most are not due: a BEGIN IMMEDIATE + COMMIT
 * each time cost about 0.5 ms); when it is, the same decision is taken again inside an IMMEDIATE transaction, so two
 * writers never sign twice. SQLite only (synchronous); maybeCheckpointOn takes either store.
 */
export function maybeCheckpoint(db: Db, keys: AuditKeys, policy: CheckpointPolicy = {}): MadeCheckpoint | null {
  const now = policy.now ?? new Date();
  const due = () => {
    const last = latestAuditCheckpoint(db);
    return dueReason(last, countAuditEventsAfter(db, last?.treeSize ?? 0, CHECKPOINT_ACTION), { ...policy, now });
  };
  if (due() === null) return null;
  return db.transaction(
    () => {
      const why = due();
      return why === null ? null : createAuditCheckpoint(db, keys, why, { at: now.toISOString() });
    },
    { behavior: "immediate" },
  );
}

/**
 * maybeCheckpoint on either store. On PostgreSQL the first look is a plain read; the decision is taken again inside
 * the signing transaction, under the ledger's advisory lock, so servers racing their timers (or a timer and a
 * checkpoint after a signature) sign each tree size once and never re-sign a head just signed.
 */
export async function maybeCheckpointOn(store: Store | Db, keys: AuditKeys, policy: CheckpointPolicy = {}): Promise<MadeCheckpoint | null> {
  const s = asStore(store);
  if (s.dialect === "sqlite") return maybeCheckpoint(s.db, keys, policy);
  const withNow = { ...policy, now: policy.now ?? new Date() };
  const t = s.tables;
  // The first look: two awaited reads, no transaction (every API write asks; most are not due).
  const last = (await latestCheckpointQuery(reader(s), t))[0];
  const newEvents = (await countEventsAfterQuery(reader(s), t, last?.treeSize ?? 0, CHECKPOINT_ACTION))[0]?.n ?? 0;
  if (dueReason(last, newEvents, withNow) === null) return null;
  const signing = await keysToSignWith(keys); // see createAuditCheckpointOn
  const made = await transact(
    s,
    function* (tx) {
      const why = yield* dueReasonIn(tx, t, withNow);
      return why === null ? null : yield* auditCheckpointPart(tx, t, signing, why, { at: withNow.now.toISOString() });
    },
    { pgLock: PG_LOCK_KEYS.ledger },
  );
  if (made) announceAuditCheckpointSigned();
  return made;
}

function* dueReasonIn(tx: Tx, t: StoreTables, policy: CheckpointPolicy): TxBody<string | null> {
  const last = yield* latestCheckpointIn(tx, t);
  return dueReason(last, yield* countEventsAfterIn(tx, t, last?.treeSize ?? 0, CHECKPOINT_ACTION), policy);
}

// ---------------------------------------------------------------------------------------------------------
// Proofs read from the database.

/** Leaf hashes of seq 1..treeSize as Buffers; throws if the log has a gap or is shorter. */
export function readLeafHashes(source: AuditDbSource, treeSize: number): Buffer[] {
  const out: Buffer[] = [];
  for (const [seq, leafHex] of iterateLeafHashes(source, treeSize)) {
    if (seq !== out.length + 1) throw new AuditIntegrityError(`seq ${out.length + 1} missing (found ${seq})`);
    out.push(Buffer.from(leafHex, "hex"));
  }
  if (out.length !== treeSize) throw new AuditIntegrityError(`the log has ${out.length} events, fewer than tree size ${treeSize}`);
  return out;
}

export type InclusionProofForSeq = {
  seq: number;
  leafIndex: number;
  treeSize: number;
  leafHash: string;
  rootHash: string;
  proof: string[];
  /** A signed checkpoint at exactly this tree size, when one exists (its rootHash equals rootHash in an intact log). */
  checkpoint: AuditCheckpointRow | null;
};

/**
 * Inclusion proof for event `seq`. Without `treeSize`: the latest checkpoint's size if it covers seq (so the proof
 * checks against a signed root), else the current log size.
 */
export function inclusionProofForSeq(db: Db, seq: number, treeSize?: number): InclusionProofForSeq {
  let size = treeSize;
  if (size === undefined) {
    const latest = latestAuditCheckpoint(db);
    size = latest && latest.treeSize >= seq ? latest.treeSize : maxAuditSeq(db);
  }
  if (!Number.isInteger(seq) || seq < 1 || seq > size) throw new Error(`no event seq ${seq} in a tree of size ${size}`);
  const leaves = readLeafHashes(db, size);
  const checkpoint = auditCheckpointsWithTreeSize(db, size).at(-1) ?? null;
  return {
    seq,
    leafIndex: seq - 1,
    treeSize: size,
    leafHash: leaves[seq - 1]!.toString("hex"),
    rootHash: merkleRoot(leaves).toString("hex"),
    proof: inclusionProof(seq - 1, leaves).map((b) => b.toString("hex")),
    checkpoint,
  };
}

export type ConsistencyProofBetween = { m: number; n: number; rootM: string; rootN: string; proof: string[] };

/** Proof that the log's first m events are a prefix of its first n (RFC 9162 consistency proof). */
export function consistencyProofBetween(db: AuditDbSource, m: number, n: number): ConsistencyProofBetween {
  if (!Number.isInteger(m) || !Number.isInteger(n) || m < 0 || m > n)
    throw new Error(`cannot prove consistency from size ${m} to size ${n}`);
  const leaves = readLeafHashes(db, n);
  return {
    m,
    n,
    rootM: merkleRoot(leaves.slice(0, m)).toString("hex"),
    rootN: merkleRoot(leaves).toString("hex"),
    proof: consistencyProof(m, leaves).map((b) => b.toString("hex")),
  };
}
