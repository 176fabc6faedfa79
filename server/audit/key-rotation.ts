/**
 * Audit key rotation: a new signing key is introduced by an "audit.keyRotate" ledger event that the OLD key
 * endorses, and verification follows that chain of keys from a key the auditor trusts.
 *
 * Rotation (`rotateAuditKey`, one immediate transaction):
 *   1. a checkpoint signed by the old key over the whole log (tree size T, root R);
 *   2. the event "audit.keyRotate" (seq T+2) whose payload holds both fingerprints and public keys, T and R, and
 *      the old key's Ed25519 signature (the endorsement) over canonical JSON of
 *      {purpose, newFingerprint, newPublicKeyPem, previousTreeSize: T, previousRootHash: R};
 *   3. a checkpoint signed by the new key (it covers the rotation event).
 * The new private key is stored in the key directory before the transaction; the data directory's public key
 * file is replaced after it commits.
 *
 * Verification (`KeyChain`, built from the rotation events in seq order, read up front by action):
 * - the key in force at tree size S is the key introduced by the last valid rotation with seq <= S (a tree that
 *   contains the rotation event is signed by the new key), else the first key;
 * - a rotation is valid only when it replaces the key in force, its endorsement verifies under that key, its new
 *   key matches its fingerprint, and (T, R) is the head of a checkpoint signed by the key in force (whose root the
 *   verifier checks against the log). An invalid rotation is a failure and introduces nothing, so a checkpoint
 *   signed by its key fails too ("no valid key rotation introduced");
 * - the trusted key is normally the first key. A trusted key that a rotation introduced later is accepted too: the
 *   earlier keys are then those the log records (each rotation still endorsed by its predecessor), provided a
 *   checkpoint signed by the trusted key covers its own introduction (so it vouches for that history), and a note says so.
 */
import { z } from "zod";
import { desc, eq } from "drizzle-orm";
import * as schemaTables from "@/db/schema";
import type { Db, Tx } from "@/db/client";
import { PG_LOCK_KEYS } from "@/db/pg-client";
import { asStore, row, runOnSqliteTx, transact, type Store, type StoreTables, type TxBody } from "@/db/store";
import { canonicalJson } from "@/contracts/canonical";
import { eventBody, leafHash, type Actor, type AuditEventRow } from "./ledger";
import { appendEvent } from "./ledger-pg";
import {
  type AuditCheckpointRow,
  type TreeHead,
  auditCheckpointPart,
  latestAuditCheckpoint,
  treeHeadOf,
  verifyTreeHeadSignature,
} from "./checkpoints";
import { latestCheckpointIn } from "./checkpoint-reads";
import { announceAuditCheckpointSigned } from "./witness/checkpoint-signal";
import {
  type AuditKeys,
  type AuditPublicKey,
  createKeyInDir,
  keyFilePath,
  parseAuditPublicKey,
  signBytes,
  storeKeyInDir,
  verifyBytes,
  writePublicKeyFile,
} from "./keys";
import { latestAuditPayloadWithAction } from "./ledger-reads";
import { countOf } from "@/contracts/count-text";

export const KEY_ROTATE_ACTION = "audit.keyRotate";
export const KEY_ROTATION_PURPOSE = "runledger-audit-key-rotation/1";

const fingerprint = z.string().regex(/^SHA256:[0-9a-f]{64}$/);
const keyRotationPayloadSchema = z.object({
  oldFingerprint: fingerprint,
  oldPublicKeyPem: z.string().includes("BEGIN PUBLIC KEY"),
  newFingerprint: fingerprint,
  newPublicKeyPem: z.string().includes("BEGIN PUBLIC KEY"),
  previousTreeSize: z.number().int().nonnegative(),
  previousRootHash: z.string().regex(/^[0-9a-f]{64}$/),
  previousCheckpointId: z.number().int().positive(),
  endorsement: z.string().min(1),
});
export type KeyRotationPayload = z.infer<typeof keyRotationPayloadSchema>;

/** The exact bytes the old key signs to endorse the new one. */
export function endorsementBytes(
  p: Pick<KeyRotationPayload, "newFingerprint" | "newPublicKeyPem" | "previousTreeSize" | "previousRootHash">,
): string {
  return canonicalJson({
    purpose: KEY_ROTATION_PURPOSE,
    newFingerprint: p.newFingerprint,
    newPublicKeyPem: p.newPublicKeyPem,
    previousTreeSize: p.previousTreeSize,
    previousRootHash: p.previousRootHash,
  });
}

/** The fingerprint of the key the ledger says signs now: the latest rotation's new key, else the latest checkpoint's key. */
export function ledgerKeyFingerprint(db: Db): string | null {
  const payload = latestAuditPayloadWithAction(db, KEY_ROTATE_ACTION);
  if (payload !== null) return rotationNewFingerprint(payload);
  return latestAuditCheckpoint(db)?.keyFingerprint ?? null;
}

/** The new key's fingerprint named by an audit.keyRotate event's payload (on either store). */
export function rotationNewFingerprint(payload: string): string {
  const fp = (JSON.parse(payload) as { newFingerprint?: unknown }).newFingerprint;
  if (typeof fp !== "string") throw new Error("the latest audit.keyRotate event names no new key fingerprint (damaged ledger?)");
  return fp;
}

export const ROTATION_ACTOR: Actor = { id: null, name: "Runledger operator (audit rotate-key)", role: "system" };

export type KeyRotationResult = {
  oldFingerprint: string;
  newFingerprint: string;
  keyFile: string;
  rotationSeq: number;
  before: AuditCheckpointRow;
  after: AuditCheckpointRow;
};

type RotationKeys = { current: AuditKeys; next: AuditKeys };

/** The old key as a snapshot (a server's live keys, key-custody.ts, would turn into the new key once the event exists) and the new key, stored in keyDir. */
function rotationKeys(currentKeys: AuditKeys, opts: { keyDir: string; newKeys?: AuditKeys }): RotationKeys {
  const current: AuditKeys = {
    privateKey: currentKeys.privateKey,
    publicKey: currentKeys.publicKey,
    publicKeyPem: currentKeys.publicKeyPem,
    fingerprint: currentKeys.fingerprint,
  };
  const next = opts.newKeys ?? createKeyInDir(opts.keyDir);
  if (opts.newKeys) storeKeyInDir(opts.keyDir, opts.newKeys);
  if (next.fingerprint === current.fingerprint) throw new Error("key rotation: the new key is the current key");
  return { current, next };
}

/** ledgerKeyFingerprint inside a transaction body, on either store. */
function* ledgerKeyFingerprintIn(tx: Tx, t: StoreTables): TxBody<string | null> {
  const e = t.auditEvents;
  const rotation = yield* row(
    tx.select({ payload: e.payload }).from(e).where(eq(e.action, KEY_ROTATE_ACTION)).orderBy(desc(e.seq)).limit(1),
  );
  if (rotation) return rotationNewFingerprint(rotation.payload);
  return (yield* latestCheckpointIn(tx, t))?.keyFingerprint ?? null;
}

/**
 * The rotation as one transaction body, the same on both stores (the same rows, bytes and signatures): checkpoint by
 * the old key, the endorsed audit.keyRotate event, checkpoint by the new key. Refuses if the ledger's key is not `current`.
 */
function* rotationPart(
  tx: Tx,
  t: StoreTables,
  { current, next }: RotationKeys,
  actor: Actor,
): TxBody<{ rotationSeq: number; before: AuditCheckpointRow; after: AuditCheckpointRow }> {
  const inForce = yield* ledgerKeyFingerprintIn(tx, t);
  if (inForce !== null && inForce !== current.fingerprint) {
    throw new Error(`key rotation: the ledger's signing key is ${inForce}, not ${current.fingerprint} (rotated meanwhile?)`);
  }
  const before = (yield* auditCheckpointPart(tx, t, current, `before key rotation to ${next.fingerprint}`)).checkpoint;
  const bound = {
    newFingerprint: next.fingerprint,
    newPublicKeyPem: next.publicKeyPem,
    previousTreeSize: before.treeSize,
    previousRootHash: before.rootHash,
  };
  const payload: KeyRotationPayload = {
    ...bound,
    oldFingerprint: current.fingerprint,
    oldPublicKeyPem: current.publicKeyPem,
    previousCheckpointId: before.id,
    endorsement: signBytes(current, endorsementBytes(bound)),
  };
  const event = yield* appendEvent({ actor, action: KEY_ROTATE_ACTION, entityType: "auditKey", entityId: next.fingerprint, payload });
  const after = (yield* auditCheckpointPart(tx, t, next, `after key rotation from ${current.fingerprint}`, { previousKey: current }))
    .checkpoint;
  return { rotationSeq: event.seq, before, after };
}

/**
 * Rotates the ledger's signing key from `current` (which must be the key the ledger says is in force) to a new key
 * stored in `keyDir` (or `newKeys`, stored there too). Throws, writing nothing to the ledger, if the log fails the
 * checks a checkpoint makes or if someone else rotated meanwhile. SQLite only (synchronous); rotateAuditKeyOn takes either store.
 */
export function rotateAuditKey(
  db: Db,
  currentKeys: AuditKeys,
  opts: { keyDir: string; dataDir?: string; actor?: Actor; newKeys?: AuditKeys },
): KeyRotationResult {
  const keys = rotationKeys(currentKeys, opts);
  const result = db.transaction((tx) => runOnSqliteTx(tx, rotationPart(tx, schemaTables, keys, opts.actor ?? ROTATION_ACTOR)), {
    behavior: "immediate",
  });
  return rotationDone(keys, opts, result);
}

/** After the rotation committed: checkpoint listeners told, the public key file replaced, the result. */
function rotationDone(
  keys: ReturnType<typeof rotationKeys>,
  opts: { keyDir: string; dataDir?: string },
  result: Omit<KeyRotationResult, "oldFingerprint" | "newFingerprint" | "keyFile">,
): KeyRotationResult {
  announceAuditCheckpointSigned();
  if (opts.dataDir) writePublicKeyFile(opts.dataDir, keys.next);
  return {
    oldFingerprint: keys.current.fingerprint,
    newFingerprint: keys.next.fingerprint,
    keyFile: keyFilePath(opts.keyDir, keys.next.fingerprint),
    ...result,
  };
}

/**
 * rotateAuditKey on either store. On PostgreSQL the body runs under the ledger's advisory lock (taken first), so no
 * checkpoint or event of another server lands between the old key's checkpoint, the rotation and the new key's; web
 * servers follow the rotation before their next signature (key-custody.ts openAuditSigningKeysOn).
 */
export async function rotateAuditKeyOn(
  source: Store | Db,
  currentKeys: AuditKeys,
  opts: { keyDir: string; dataDir?: string; actor?: Actor; newKeys?: AuditKeys },
): Promise<KeyRotationResult> {
  const store = asStore(source);
  if (store.dialect === "sqlite") return rotateAuditKey(store.db, currentKeys, opts);
  const keys = rotationKeys(currentKeys, opts);
  const result = await transact(store, (tx) => rotationPart(tx, store.tables, keys, opts.actor ?? ROTATION_ACTOR), {
    pgLock: PG_LOCK_KEYS.ledger,
  });
  return rotationDone(keys, opts, result);
}

// ---------------------------------------------------------------------------------------------------------
// Verification: the chain of keys.

export type KeySegment = { fromTreeSize: number; key: AuditPublicKey; rotationSeq: number | null };
export type KeyChainProblem = { seq: number | null; message: string };

type Walk = { segments: KeySegment[]; problems: KeyChainProblem[] };

function walkRotations(first: AuditPublicKey, rows: readonly AuditEventRow[], checkpoints: readonly AuditCheckpointRow[]): Walk {
  const segments: KeySegment[] = [{ fromTreeSize: 0, key: first, rotationSeq: null }];
  const problems: KeyChainProblem[] = [];
  for (const row of rows) {
    const seq = row.seq;
    const fail = (message: string) => problems.push({ seq, message: `seq ${seq}: ${message}` });
    const cur = segments.at(-1)!.key;
    let p: KeyRotationPayload;
    try {
      p = keyRotationPayloadSchema.parse(JSON.parse(row.payload));
    } catch (err) {
      fail(
        `key rotation event is malformed (${err instanceof z.ZodError ? err.issues.map((i) => `${i.path.join(".")}: ${i.message}`).join("; ") : (err as Error).message})`,
      );
      continue;
    }
    if (p.oldFingerprint !== cur.fingerprint) {
      fail(`key rotation replaces key ${p.oldFingerprint}, but the key in force is ${cur.fingerprint} (forged rotation?)`);
      continue;
    }
    let next: AuditPublicKey;
    try {
      next = parseAuditPublicKey(p.newPublicKeyPem);
    } catch (err) {
      fail(`key rotation's new public key does not parse (${(err as Error).message})`);
      continue;
    }
    if (next.fingerprint !== p.newFingerprint) {
      fail(`key rotation's new public key has fingerprint ${next.fingerprint}, not ${p.newFingerprint} as it claims`);
      continue;
    }
    if (!verifyBytes(cur.publicKey, endorsementBytes(p), p.endorsement)) {
      fail(`key rotation to ${p.newFingerprint} is not endorsed by the key in force ${cur.fingerprint} (forged rotation?)`);
      continue;
    }
    const bound = checkpoints.find(
      (cp) => cp.treeSize === p.previousTreeSize && cp.rootHash === p.previousRootHash && cp.keyFingerprint === cur.fingerprint,
    );
    if (p.previousTreeSize >= seq || !bound) {
      fail(
        `key rotation endorses tree size ${p.previousTreeSize} (root ${p.previousRootHash.slice(0, 12)}…), but no checkpoint before it signed by ${cur.fingerprint} has that head`,
      );
      continue;
    }
    segments.push({ fromTreeSize: seq, key: next, rotationSeq: seq });
  }
  return { segments, problems };
}

export class KeyChain {
  private constructor(
    readonly segments: readonly KeySegment[],
    readonly problems: readonly KeyChainProblem[],
    readonly notes: readonly string[],
    private readonly rotationLeaves: ReadonlyMap<number, string>,
  ) {}

  /** `rotations`: the log's "audit.keyRotate" events (any order); `checkpoints`: the log's checkpoint rows. */
  static build(trusted: AuditPublicKey, rotations: readonly AuditEventRow[], checkpoints: readonly AuditCheckpointRow[]): KeyChain {
    const problems: KeyChainProblem[] = [];
    const leaves = new Map<number, string>();
    const usable: AuditEventRow[] = [];
    for (const row of [...rotations].sort((a, b) => a.seq - b.seq)) {
      leaves.set(row.seq, row.leafHash);
      let recomputed: string | null = null;
      try {
        recomputed = row.action === KEY_ROTATE_ACTION ? leafHash(eventBody(row)) : null;
      } catch {
        // unparseable payload: reported below
      }
      if (recomputed !== row.leafHash)
        problems.push({ seq: row.seq, message: `seq ${row.seq}: key rotation event does not match its leaf hash (altered?)` });
      else usable.push(row);
    }
    if (usable.length === 0) return new KeyChain([{ fromTreeSize: 0, key: trusted, rotationSeq: null }], problems, [], leaves);

    let walk = walkRotations(trusted, usable, checkpoints);
    const notes: string[] = [];
    const first = parseFirstKey(usable[0]!);
    if (first && first.fingerprint !== trusted.fingerprint) {
      // The trusted key may be a later key of the chain: walk from the first key the log records.
      const fromFirst = walkRotations(first, usable, checkpoints);
      const at = fromFirst.segments.find((s) => s.key.fingerprint === trusted.fingerprint);
      if (at) {
        walk = fromFirst;
        const vouched = checkpoints.some((cp) => cp.keyFingerprint === trusted.fingerprint && cp.treeSize >= at.fromTreeSize);
        if (!vouched)
          walk.problems.push({
            seq: at.rotationSeq,
            message: `the trusted key ${trusted.fingerprint} signed no checkpoint covering its introduction at seq ${at.rotationSeq}`,
          });
        notes.push(
          `the trusted key ${trusted.fingerprint} came into force at seq ${at.rotationSeq} (a key rotation); the ${countOf(fromFirst.segments.indexOf(at), "key")} before it ${fromFirst.segments.indexOf(at) === 1 ? "is the one" : "are the ones"} the log it signed records, each endorsed by its predecessor`,
        );
      }
    }
    const valid = walk.segments.length - 1;
    if (valid > 0)
      notes.push(
        `the signing key was rotated ${valid === 1 ? "once" : `${valid} times`}; each checkpoint was checked against the key in force at its tree size`,
      );
    return new KeyChain(walk.segments, [...problems, ...walk.problems], notes, leaves);
  }

  /** The key in force for a tree of `treeSize` events. */
  keyAt(treeSize: number): KeySegment {
    let seg = this.segments[0]!;
    for (const s of this.segments) if (s.fromTreeSize <= treeSize) seg = s;
    return seg;
  }

  /** Fingerprint and signature of a signed tree head against the key in force at its size; null when valid. */
  checkpointProblem(name: string, head: TreeHead, signature: string): string | null {
    const seg = this.keyAt(head.treeSize);
    if (head.keyFingerprint !== seg.key.fingerprint) {
      if (this.segments.length === 1 && this.rotationLeaves.size === 0) {
        return `${name} was signed with key ${head.keyFingerprint}, not the trusted server key ${seg.key.fingerprint}`;
      }
      const inForce = `${seg.key.fingerprint} (${seg.rotationSeq === null ? "the first key" : `introduced at seq ${seg.rotationSeq}`})`;
      const known = this.segments.some((s) => s.key.fingerprint === head.keyFingerprint);
      return known
        ? `${name} (tree size ${head.treeSize}) was signed with key ${head.keyFingerprint}, but the key in force at that size is ${inForce}`
        : `${name} (tree size ${head.treeSize}) was signed with key ${head.keyFingerprint}, which no valid key rotation introduced (the key in force is ${inForce})`;
    }
    if (!verifyTreeHeadSignature(seg.key, treeHeadOf(head), signature))
      return `${name} signature is not valid for the server key (altered checkpoint?)`;
    return null;
  }

  /** During the pass: a key rotation event must be one of those read up front, and vice versa. */
  leafProblem(seq: number, leafHex: string, action: string): string | null {
    if (action === KEY_ROTATE_ACTION) {
      const known = this.rotationLeaves.get(seq);
      if (known === leafHex) return null;
      return `seq ${seq}: key rotation event ${known ? "differs from" : "is missing from"} the key rotations read before the pass (incomplete key-rotations list?)`;
    }
    if (this.rotationLeaves.size > 0 && this.rotationLeaves.has(seq))
      return `seq ${seq} is not the key rotation event the key rotations list holds for it`;
    return null;
  }
}

function parseFirstKey(row: AuditEventRow): AuditPublicKey | null {
  try {
    const p = keyRotationPayloadSchema.parse(JSON.parse(row.payload));
    const key = parseAuditPublicKey(p.oldPublicKeyPem);
    return key.fingerprint === p.oldFingerprint ? key : null;
  } catch {
    return null;
  }
}
