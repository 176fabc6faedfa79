/**
 * The audit ledger as the app shows it: browse events, the server key and latest signed checkpoint, the last
 * verification, starting "Verify now" (whose `audit.verify` event the verify job appends when it ends), inclusion
 * proofs, and what the auditor's report can be made for. The audit router (./router.ts) only validates input and
 * calls these; every table read behind the Audit page lives here or in the modules it calls.
 *
 * Invariants: reads only, except startLedgerVerification, which starts the background job (server/audit/verify-jobs.ts)
 * that records the outcome; a checkpoint's signature is reported valid only when it was made by the key in force at
 * its tree size, following the ledger's valid key rotations from the installation's first key (key-rotation.ts
 * KeyChain, the rule `audit verify` follows), and verifies under it; the server's own key must be a key of that
 * chain. So a web server that still holds only the old key after a rotation (PostgreSQL: it has not got the new key
 * file yet) shows the new key's checkpoints valid, and a key no valid rotation introduced is never valid.
 * Errors are DomainErrors (server/errors.ts).
 */
import { and, asc, desc, eq, gte, ilike, inArray, like, lt, lte, max, or, type SQL } from "drizzle-orm";
import type { Db, Tx } from "@/db/client";
import type { PgDb } from "@/db/pg-client";
import { asStore, byteOrder, reader, rows, type Store, type StoreTables, type TxBody } from "@/db/store";
import type { Actor, AuditEventRow } from "@/server/audit/ledger";
import { parseAuditPublicKey, type AuditKeys, type AuditPublicKey } from "@/server/audit/keys";
import { KEY_ROTATE_ACTION, KeyChain } from "@/server/audit/key-rotation";
import { invalidInput } from "@/server/errors";
import { trustedCheckpointFromRow, treeHeadOf, type AuditCheckpointRow } from "@/server/audit/checkpoints";
import { latestCheckpointQuery } from "@/server/audit/checkpoint-reads";
import { inclusionProofFromLevels, type LevelInclusionProof } from "@/server/audit/tree-levels";
import { inclusionProofFromLevelsPg } from "@/server/audit/tree-levels-pg";
import { currentVerifyJobOn, startVerifyJobOn } from "@/server/audit/verify-jobs";
import { configuredWitnesses } from "@/server/audit/witness/start";
import type { VerifySummary } from "@/server/audit/verify-summary";
import { collectLineageOn } from "@/server/lineage/collect";
import { readOnStore } from "@/server/registry/on-store";
import { aliasMovesIn, currentAliasTargets } from "@/server/registry/aliases";

/** `db`: the SQLite handle or a store (issue 16); `dataDir`: this machine's directory (SQLite: the installation's). */
type AuditDeps = { db: Store | Db; auditKeys: AuditKeys; dataDir: string };

export type EventFilter = {
  actor?: string;
  action?: string;
  entityType?: string;
  entityId?: string;
  from?: string;
  to?: string;
  beforeSeq?: number;
  limit: number;
};

function isoOrThrow(label: string, v: string): string {
  const t = new Date(v);
  if (Number.isNaN(t.getTime())) invalidInput(`${label} "${v}" is not a time: use ISO-8601, e.g. 2026-01-31T12:00:00Z`);
  return t.toISOString();
}

/**
 * One page of events, newest first; `nextBeforeSeq` continues with older ones (null: no more). The actor and action
 * patterns ignore case on both stores (SQLite's LIKE does for ASCII; PostgreSQL's ILIKE).
 */
export async function listAuditEvents(store: Store | Db, filter: EventFilter) {
  const s = asStore(store);
  const { auditEvents } = s.tables;
  const matches = s.dialect === "pg" ? ilike : like;
  const conds: SQL[] = [];
  if (filter.actor)
    conds.push(or(matches(auditEvents.actorName, `%${filter.actor}%`), eq(auditEvents.actorId, Number(filter.actor) || -1))!);
  if (filter.action)
    conds.push(
      filter.action.endsWith(".") || !filter.action.includes(".")
        ? matches(auditEvents.action, `${filter.action.replace(/\.$/, "")}.%`)
        : eq(auditEvents.action, filter.action),
    );
  if (filter.entityType) conds.push(eq(auditEvents.entityType, filter.entityType));
  if (filter.entityId) conds.push(eq(auditEvents.entityId, filter.entityId));
  if (filter.from) conds.push(gte(auditEvents.at, isoOrThrow("from", filter.from)));
  if (filter.to) conds.push(lte(auditEvents.at, isoOrThrow("to", filter.to)));
  if (filter.beforeSeq !== undefined) conds.push(lt(auditEvents.seq, filter.beforeSeq));
  const found = await reader(s)
    .select()
    .from(auditEvents)
    .where(conds.length ? and(...conds) : undefined)
    .orderBy(desc(auditEvents.seq))
    .limit(filter.limit + 1);
  const page = found.slice(0, filter.limit);
  return {
    events: page.map((e) => ({ ...e, payload: JSON.parse(e.payload) as unknown })),
    nextBeforeSeq: found.length > filter.limit ? page.at(-1)!.seq : null,
  };
}

async function latestCheckpoint(s: Store): Promise<AuditCheckpointRow | undefined> {
  return (await latestCheckpointQuery(reader(s), s.tables))[0];
}

type RotationClaims = { previousTreeSize?: unknown; oldFingerprint?: unknown; oldPublicKeyPem?: unknown };

function rotationClaims(rotation: AuditEventRow): RotationClaims {
  try {
    const parsed = JSON.parse(rotation.payload) as unknown;
    return parsed && typeof parsed === "object" ? (parsed as RotationClaims) : {};
  } catch {
    return {};
  }
}

/** The tree size a key rotation's payload says the old key endorsed, if it names one (KeyChain checks the rest). */
function endorsedTreeSize(rotation: AuditEventRow): number | null {
  const size = rotationClaims(rotation).previousTreeSize;
  return typeof size === "number" && Number.isSafeInteger(size) ? size : null;
}

/**
 * The installation's first key, the key of its first checkpoint: the server's key when it is that key, else the
 * public key a rotation records as the key it replaced, accepted only when its own fingerprint is the first
 * checkpoint's (a fingerprint is a hash of the key, so no other key passes; KeyChain's parseFirstKey checks alike).
 */
function firstKeyOf(firstFingerprint: string, serverKey: AuditPublicKey, rotations: readonly AuditEventRow[]): AuditPublicKey | null {
  if (serverKey.fingerprint === firstFingerprint) return serverKey;
  for (const rotation of rotations) {
    const { oldFingerprint, oldPublicKeyPem } = rotationClaims(rotation);
    if (oldFingerprint !== firstFingerprint || typeof oldPublicKeyPem !== "string") continue;
    try {
      const key = parseAuditPublicKey(oldPublicKeyPem);
      if (key.fingerprint === firstFingerprint) return key;
    } catch {
      // not a public key: try the next rotation
    }
  }
  return null;
}

/**
 * Judges checkpoint signatures as `audit verify` does (key-rotation.ts KeyChain): against the key in force at each
 * checkpoint's tree size, following the ledger's valid rotations from the installation's first key, whichever key of
 * that chain this server holds (a web server still holding the old key after a rotation judges alike). A server key
 * that is not in that chain vouches for none of it: then nothing is valid (as the server's Verify now would fail).
 * Reads the first checkpoint, the rotation events and only the checkpoints they endorse (a rotation is valid only
 * when its (T, R) is the head of a checkpoint signed by the key in force), not every checkpoint.
 */
export async function checkpointSignatureJudge(s: Store, auditKeys: AuditKeys): Promise<(cp: AuditCheckpointRow) => boolean> {
  // Read the live keys' fields once (on SQLite each read asks the ledger which key is in force).
  const serverKey: AuditPublicKey = {
    publicKey: auditKeys.publicKey,
    publicKeyPem: auditKeys.publicKeyPem,
    fingerprint: auditKeys.fingerprint,
  };
  const { auditEvents, auditCheckpoints } = s.tables;
  const [firstCheckpoint] = await reader(s)
    .select({ keyFingerprint: auditCheckpoints.keyFingerprint })
    .from(auditCheckpoints)
    .orderBy(asc(auditCheckpoints.id))
    .limit(1);
  if (!firstCheckpoint) return () => false;
  const rotations: AuditEventRow[] = await reader(s)
    .select()
    .from(auditEvents)
    .where(eq(auditEvents.action, KEY_ROTATE_ACTION))
    .orderBy(asc(auditEvents.seq));
  const firstKey = firstKeyOf(firstCheckpoint.keyFingerprint, serverKey, rotations);
  if (!firstKey) return () => false;
  const sizes = [...new Set(rotations.map(endorsedTreeSize).filter((n): n is number => n !== null))];
  const endorsed: AuditCheckpointRow[] =
    sizes.length > 0 ? await reader(s).select().from(auditCheckpoints).where(inArray(auditCheckpoints.treeSize, sizes)) : [];
  const chain = KeyChain.build(firstKey, rotations, endorsed);
  if (!chain.segments.some((segment) => segment.key.fingerprint === serverKey.fingerprint)) return () => false;
  return (cp) => chain.checkpointProblem(`checkpoint #${cp.id}`, treeHeadOf(cp), cp.signature) === null;
}

/** The server key, the ledger's size, the latest checkpoint (with its signature checked) and the last verification. */
export async function auditStatus({ db, auditKeys }: AuditDeps) {
  const s = asStore(db);
  const { auditEvents } = s.tables;
  const latest = (await latestCheckpoint(s)) ?? null;
  const [lastVerify] = await reader(s)
    .select()
    .from(auditEvents)
    .where(eq(auditEvents.action, "audit.verify"))
    .orderBy(desc(auditEvents.seq))
    .limit(1);
  const [size] = await reader(s)
    .select({ n: max(auditEvents.seq).mapWith(Number) })
    .from(auditEvents);
  return {
    publicKeyPem: auditKeys.publicKeyPem,
    fingerprint: auditKeys.fingerprint,
    events: size?.n ?? 0,
    latestCheckpoint: latest ? { ...latest, signatureValid: (await checkpointSignatureJudge(s, auditKeys))(latest) } : null,
    lastVerification: lastVerify
      ? { seq: lastVerify.seq, at: lastVerify.at, by: lastVerify.actorName, result: JSON.parse(lastVerify.payload) as VerifySummary }
      : null,
  };
}

/** The latest checkpoint as a file an auditor keeps outside the server (for `audit verify --trusted-checkpoint`). */
export async function trustedCheckpoint({ db, auditKeys }: AuditDeps) {
  const latest = await latestCheckpoint(asStore(db));
  return latest ? trustedCheckpointFromRow(latest, auditKeys.publicKeyPem) : null;
}

/**
 * Starts verifying the whole ledger in a background worker (or returns the job already running); the job records
 * the outcome as an `audit.verify` event when it ends. Trusts the server's current public key and, as anchors, the
 * cosignatures of the witnesses the server is configured with. On PostgreSQL the job is a row every web server sees
 * (verify-jobs.ts).
 */
export function startLedgerVerification(deps: AuditDeps, actor: Actor) {
  const { auditKeys } = deps;
  const witnessKeys = configuredWitnesses().witnesses.map((w) => w.key.vkey);
  const trusted = `the server's current public key ${auditKeys.fingerprint}${witnessKeys.length > 0 ? ` and the ${witnessKeys.length} witness key(s) configured in RUNLEDGER_WITNESSES` : ""}`;
  return startVerifyJobOn(deps, actor, { publicKeyPem: auditKeys.publicKeyPem, witnessKeys }, trusted);
}

/** The running "Verify now" job with its progress, or the last one that ended (null before the first). */
export function currentLedgerVerification(deps: AuditDeps) {
  return currentVerifyJobOn(deps);
}

/** Inclusion proof of event `seq` against the latest checkpoint covering it, from the stored tree levels, checked against the signed root. */
export async function inclusionProof({ db, auditKeys }: AuditDeps, seq: number) {
  const s = asStore(db);
  let p: LevelInclusionProof;
  try {
    p = s.dialect === "sqlite" ? inclusionProofFromLevels(s.db, seq) : await inclusionProofFromLevelsPg(s.db as PgDb, seq);
  } catch (err) {
    return invalidInput((err as Error).message);
  }
  return { ...p, signatureValid: p.checkpoint ? (await checkpointSignatureJudge(s, auditKeys))(p.checkpoint) : null };
}

function* versionsWithModelIn(q: Tx, t: StoreTables, store: Store) {
  const { modelVersions, models } = t;
  return yield* rows(
    q
      .select({ v: modelVersions, name: models.name })
      .from(modelVersions)
      .innerJoin(models, eq(models.id, modelVersions.modelId))
      .orderBy(asc(byteOrder(store, models.name)), desc(modelVersions.version)),
  );
}

function* reportTargetsIn(q: Tx, t: StoreTables, store: Store) {
  const all = yield* versionsWithModelIn(q, t, store);
  const targets = currentAliasTargets(yield* aliasMovesIn(q, t));
  return all
    .map(({ v, name }) => ({
      modelVersionId: v.id,
      model: name,
      version: v.version,
      weightsSha256: v.weightsSha256,
      createdAt: v.createdAt,
      aliases: [...(targets.get(v.modelId) ?? [])].filter(([, id]) => id === v.id).map(([alias]) => alias),
    }))
    .sort((a, b) => Number(b.aliases.includes("production")) - Number(a.aliases.includes("production")));
}

/** Models and versions a report can be made for (production first), with the aliases pointing at each now. */
export function reportTargets(store: Store | Db): Promise<TxBodyResult<ReturnType<typeof reportTargetsIn>>> {
  const s = asStore(store);
  return readOnStore(s, (q, t) => reportTargetsIn(q, t, s));
}
type TxBodyResult<B> = B extends TxBody<infer T> ? T : never;

/** What a report covers and who may write its documents: the model and the datasets in the version's lineage. */
export async function reportSubjects(store: Store | Db, modelVersionId: number) {
  const f = await collectLineageOn(store, modelVersionId);
  return {
    model: f.model,
    version: f.version.version,
    modelVersionId: f.version.id,
    weightsSha256: f.version.weightsSha256,
    datasets: f.datasets.map((d) => ({ id: d.id, name: d.name })),
  };
}
