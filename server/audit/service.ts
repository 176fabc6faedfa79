/**
 * The audit ledger as the app shows it: browse events, the server key and latest signed checkpoint, the last
 * verification, starting "Verify now" (whose `audit.verify` event the verify job appends when it ends), inclusion
 * proofs, and what the auditor's report can be made for. The audit router (./router.ts) only validates input and
 * calls these; every table read behind the Audit page lives here or in the modules it calls.
 *
 * Invariants: reads only, except startLedgerVerification, which starts the background job (server/audit/verify-jobs.ts)
 * that records the outcome, and auditStatus on PostgreSQL, which lets the server's keys catch up with a key rotation
 * as its next signature would (key-custody.ts followLedger: a key file, a log line; nothing in the database); a checkpoint's signature is reported valid only when it was made by the key in force at
 * its tree size, following the ledger's valid key rotations from the installation's first key (key-rotation.ts
 * KeyChain, the rule `audit verify` follows), and verifies under it; the server's own key must be a key of that
 * chain. So a web server that still holds only the old key after a rotation (PostgreSQL: it has not got the new key
 * file yet) shows the new key's checkpoints valid, and a key no valid rotation introduced is never valid. The
 * downloadable latest checkpoint carries the key of that chain that signed it, never merely the server's own key. A
 * server that lacks the key the ledger names still answers (status says so in signingKeyProblem) instead of failing.
 * Errors are DomainErrors (server/errors.ts).
 */
import { and, asc, desc, eq, gte, ilike, like, lt, lte, max, or, type SQL } from "drizzle-orm";
import type { Db, Tx } from "@/db/client";
import type { PgDb } from "@/db/pg-client";
import { asStore, byteOrder, reader, rows, type Store, type StoreTables, type TxBody } from "@/db/store";
import type { Actor } from "@/server/audit/ledger";
import { keyFileName, type AuditKeys, type AuditPublicKey } from "@/server/audit/keys";
import { ledgerKeyFingerprintOn, type SigningKeys } from "@/server/audit/key-custody";
import { checkpointProblemIn, ledgerKeyChainOn, signerKeyIn } from "@/server/audit/ledger-key-chain";
import { invalidInput } from "@/server/errors";
import { keysToSignWith, trustedCheckpointFromRow, type AuditCheckpointRow } from "@/server/audit/checkpoints";
import { latestCheckpointQuery } from "@/server/audit/checkpoint-reads";
import { inclusionProofFromLevels, type LevelInclusionProof } from "@/server/audit/tree-levels";
import { inclusionProofFromLevelsPg } from "@/server/audit/tree-levels-pg";
import { currentVerifyJobOn, startVerifyJobOn } from "@/server/audit/verify-jobs";
import { configuredWitnesses } from "@/server/audit/witness/start";
import type { VerifySummary } from "@/server/audit/verify-summary";
import { collectLineageOn } from "@/server/lineage/collect";
import { readOnStore } from "@/server/registry/on-store";
import { aliasMovesIn, currentAliasTargets } from "@/server/registry/aliases";
import { countOf } from "@/contracts/count-text";

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

/**
 * By name, not instanceof: in the built app the keys are made by the server's start-up code, which Next bundles apart
 * from the tRPC routes, so the error classes can be two copies (seen: instanceof KeyCustodyError was false there).
 */
function isErrorNamed(err: unknown, name: "KeyCustodyError" | "SigningKeyNotHeldError"): boolean {
  return err instanceof Error && err.name === name;
}

/**
 * The key this server holds, read once (public part). SQLite's live keys throw KeyCustodyError once the ledger names a
 * key their key directory lacks: then the key they held before (key-custody.ts SigningKeys.held), flagged.
 */
function heldKeyOf(auditKeys: AuditKeys): { key: AuditPublicKey; lacksLedgerKey: boolean } {
  try {
    return {
      key: { publicKey: auditKeys.publicKey, publicKeyPem: auditKeys.publicKeyPem, fingerprint: auditKeys.fingerprint },
      lacksLedgerKey: false,
    };
  } catch (err) {
    const held = (auditKeys as Partial<SigningKeys>).held;
    if (!isErrorNamed(err, "KeyCustodyError") || typeof held !== "function") throw err;
    return { key: held.call(auditKeys), lacksLedgerKey: true };
  }
}

/**
 * The key this server signs with and, when it cannot sign, why in plain words. On PostgreSQL the server first catches up
 * with the ledger as it does before each signature (checkpoints.ts keysToSignWith: a rotation's new key is taken from
 * the key directory if it is there); on SQLite the live keys follow on every read.
 */
async function signingKeyStateOn(s: Store, auditKeys: AuditKeys): Promise<{ key: AuditPublicKey; problem: string | null }> {
  let notHeld = false;
  try {
    await keysToSignWith(auditKeys);
  } catch (err) {
    if (!isErrorNamed(err, "SigningKeyNotHeldError")) throw err;
    notHeld = true;
  }
  const { key, lacksLedgerKey } = heldKeyOf(auditKeys);
  if (!notHeld && !lacksLedgerKey) return { key, problem: null };
  const inForce = await ledgerKeyFingerprintOn(s);
  const keyDir = (auditKeys as Partial<SigningKeys>).keyDir;
  const where = keyDir && inForce ? ` (its key directory ${keyDir} has no ${keyFileName(inForce)})` : "";
  return {
    key,
    problem:
      `This server does not hold the ledger's signing key ${inForce ?? ""}${where}; checkpoints cannot be signed until it does. ` +
      `Copy that key file (mode 0600) into the key directory from your key backup or from the machine that ran audit rotate-key. ` +
      `The key shown here, ${key.fingerprint}, is the key this server signed with before; it never signs with it again.`,
  };
}

/**
 * Judges checkpoint signatures as `audit verify` does (key-rotation.ts KeyChain): against the key in force at each
 * checkpoint's tree size, following the ledger's valid rotations from the installation's first key, whichever key of
 * that chain this server holds (a web server still holding the old key after a rotation judges alike). A server key
 * that is not in that chain vouches for none of it: then nothing is valid (as the server's Verify now would fail).
 */
export async function checkpointSignatureJudge(s: Store, auditKeys: AuditKeys): Promise<(cp: AuditCheckpointRow) => boolean> {
  const chain = await ledgerKeyChainOn(s, [heldKeyOf(auditKeys).key]);
  return (cp) => chain !== null && checkpointProblemIn(chain, cp) === null;
}

/**
 * The ledger's key in force now when it is not `held` but `held` leads to it (a rotation this server's key signed, or a
 * chain of them): what an auditor needs to check the newest checkpoints while this server still lacks that key's
 * private part. Null when `held` is the key in force or leads to no key of the ledger.
 */
async function keyInForceBeyond(s: Store, held: AuditPublicKey): Promise<{ publicKeyPem: string; fingerprint: string } | null> {
  const current = (await ledgerKeyChainOn(s, [held]))?.segments.at(-1)?.key;
  return current && current.fingerprint !== held.fingerprint
    ? { publicKeyPem: current.publicKeyPem, fingerprint: current.fingerprint }
    : null;
}

/**
 * The server key, the ledger's size, the latest checkpoint (with its signature checked) and the last verification.
 * `signingKeyProblem` says plainly why this server cannot sign (null when it can): the ledger names a key it lacks.
 */
export async function auditStatus({ db, auditKeys }: AuditDeps) {
  const s = asStore(db);
  const { auditEvents } = s.tables;
  const signingKey = await signingKeyStateOn(s, auditKeys);
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
    publicKeyPem: signingKey.key.publicKeyPem,
    fingerprint: signingKey.key.fingerprint,
    signingKeyProblem: signingKey.problem,
    keyInForce: signingKey.problem ? await keyInForceBeyond(s, signingKey.key) : null,
    events: size?.n ?? 0,
    latestCheckpoint: latest ? { ...latest, signatureValid: (await checkpointSignatureJudge(s, auditKeys))(latest) } : null,
    lastVerification: lastVerify
      ? { seq: lastVerify.seq, at: lastVerify.at, by: lastVerify.actorName, result: JSON.parse(lastVerify.payload) as VerifySummary }
      : null,
  };
}

/**
 * The latest checkpoint as a file an auditor keeps outside the server (for `audit verify --trusted-checkpoint`). It
 * carries the public key that signed it: the key in force at its tree size in the ledger's key chain (not this
 * server's own key, which after a rotation may be an older or a newer one), and no public key when the checkpoint is
 * not signed by that key (the page shows it "NOT valid"): the server vouches for no key it cannot lead to.
 */
export async function trustedCheckpoint({ db, auditKeys }: AuditDeps) {
  const s = asStore(db);
  const latest = await latestCheckpoint(s);
  if (!latest) return null;
  const chain = await ledgerKeyChainOn(s, [heldKeyOf(auditKeys).key]);
  return trustedCheckpointFromRow(latest, signerKeyIn(chain, latest)?.publicKeyPem);
}

/**
 * Starts verifying the whole ledger in a background worker (or returns the job already running); the job records
 * the outcome as an `audit.verify` event when it ends. Trusts the server's current public key and, as anchors, the
 * cosignatures of the witnesses the server is configured with. On PostgreSQL the job is a row every web server sees
 * (verify-jobs.ts).
 */
export function startLedgerVerification(deps: AuditDeps, actor: Actor) {
  // The key this server holds (on SQLite lacking the ledger's newer key: the one it held before, a key of the chain).
  const auditKeys = heldKeyOf(deps.auditKeys).key;
  const witnessKeys = configuredWitnesses().witnesses.map((w) => w.key.vkey);
  const trusted = `the server's current public key ${auditKeys.fingerprint}${witnessKeys.length > 0 ? ` and the ${countOf(witnessKeys.length, "witness key")} configured in RUNLEDGER_WITNESSES` : ""}`;
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
