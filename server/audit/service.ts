/**
 * The audit ledger as the app shows it: browse events, the server key and latest signed checkpoint, the last
 * verification, starting "Verify now" (whose `audit.verify` event the verify job appends when it ends), inclusion
 * proofs, and what the auditor's report can be made for. The audit router (./router.ts) only validates input and
 * calls these; every table read behind the Audit page lives here or in the modules it calls.
 *
 * Invariants: reads only, except startLedgerVerification, which starts the background job (server/audit/verify-jobs.ts)
 * that records the outcome; a checkpoint's signature is reported valid only when it was made by the server's
 * current key and verifies under it. Errors are DomainErrors (server/errors.ts).
 */
import { and, asc, desc, eq, gte, like, lt, lte, or, type SQL } from "drizzle-orm";
import { auditEvents, modelVersions, models } from "@/db/schema";
import type { Db } from "@/db/client";
import type { Actor } from "@/server/audit/ledger";
import type { AuditKeys } from "@/server/audit/keys";
import { invalidInput } from "@/server/errors";
import { latestAuditCheckpoint, trustedCheckpointFromRow, treeHeadOf, verifyTreeHeadSignature } from "@/server/audit/checkpoints";
import { inclusionProofFromLevels } from "@/server/audit/tree-levels";
import { currentVerifyJob, startVerifyJob } from "@/server/audit/verify-jobs";
import { configuredWitnesses } from "@/server/audit/witness/start";
import type { VerifySummary } from "@/server/audit/verify-summary";
import { maxAuditSeq } from "@/server/audit/ledger-reads";
import { collectLineage } from "@/server/lineage/collect";
import { aliasMoves, currentAliasTargets } from "@/server/registry/aliases";

type AuditDeps = { db: Db; auditKeys: AuditKeys; dataDir: string };

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

/** One page of events, newest first; `nextBeforeSeq` continues with older ones (null: no more). */
export function listAuditEvents(db: Db, filter: EventFilter) {
  const conds: SQL[] = [];
  if (filter.actor) conds.push(or(like(auditEvents.actorName, `%${filter.actor}%`), eq(auditEvents.actorId, Number(filter.actor) || -1))!);
  if (filter.action)
    conds.push(
      filter.action.endsWith(".") || !filter.action.includes(".")
        ? like(auditEvents.action, `${filter.action.replace(/\.$/, "")}.%`)
        : eq(auditEvents.action, filter.action),
    );
  if (filter.entityType) conds.push(eq(auditEvents.entityType, filter.entityType));
  if (filter.entityId) conds.push(eq(auditEvents.entityId, filter.entityId));
  if (filter.from) conds.push(gte(auditEvents.at, isoOrThrow("from", filter.from)));
  if (filter.to) conds.push(lte(auditEvents.at, isoOrThrow("to", filter.to)));
  if (filter.beforeSeq !== undefined) conds.push(lt(auditEvents.seq, filter.beforeSeq));
  const rows = db
    .select()
    .from(auditEvents)
    .where(conds.length ? and(...conds) : undefined)
    .orderBy(desc(auditEvents.seq))
    .limit(filter.limit + 1)
    .all();
  const page = rows.slice(0, filter.limit);
  return {
    events: page.map((e) => ({ ...e, payload: JSON.parse(e.payload) as unknown })),
    nextBeforeSeq: rows.length > filter.limit ? page.at(-1)!.seq : null,
  };
}

/** True when the checkpoint was signed by the server's current key and the signature verifies under it. */
function signedByCurrentKey(auditKeys: AuditKeys, cp: NonNullable<ReturnType<typeof latestAuditCheckpoint>>): boolean {
  return cp.keyFingerprint === auditKeys.fingerprint && verifyTreeHeadSignature(auditKeys, treeHeadOf(cp), cp.signature);
}

/** The server key, the ledger's size, the latest checkpoint (with its signature checked) and the last verification. */
export function auditStatus({ db, auditKeys }: AuditDeps) {
  const latest = latestAuditCheckpoint(db) ?? null;
  const lastVerify = db
    .select()
    .from(auditEvents)
    .where(eq(auditEvents.action, "audit.verify"))
    .orderBy(desc(auditEvents.seq))
    .limit(1)
    .get();
  return {
    publicKeyPem: auditKeys.publicKeyPem,
    fingerprint: auditKeys.fingerprint,
    events: maxAuditSeq(db),
    latestCheckpoint: latest ? { ...latest, signatureValid: signedByCurrentKey(auditKeys, latest) } : null,
    lastVerification: lastVerify
      ? { seq: lastVerify.seq, at: lastVerify.at, by: lastVerify.actorName, result: JSON.parse(lastVerify.payload) as VerifySummary }
      : null,
  };
}

/** The latest checkpoint as a file an auditor keeps outside the server (for `audit verify --trusted-checkpoint`). */
export function trustedCheckpoint({ db, auditKeys }: AuditDeps) {
  const latest = latestAuditCheckpoint(db);
  return latest ? trustedCheckpointFromRow(latest, auditKeys.publicKeyPem) : null;
}

/**
 * Starts verifying the whole ledger in a background worker (or returns the job already running); the job records
 * the outcome as an `audit.verify` event when it ends. Trusts the server's current public key and, as anchors, the
 * cosignatures of the witnesses the server is configured with.
 */
export function startLedgerVerification(deps: AuditDeps, actor: Actor) {
  const { auditKeys } = deps;
  const witnessKeys = configuredWitnesses().witnesses.map((w) => w.key.vkey);
  const trusted = `the server's current public key ${auditKeys.fingerprint}${witnessKeys.length > 0 ? ` and the ${witnessKeys.length} witness key(s) configured in RUNLEDGER_WITNESSES` : ""}`;
  return startVerifyJob(deps, actor, { publicKeyPem: auditKeys.publicKeyPem, witnessKeys }, trusted);
}

/** The running "Verify now" job with its progress, or the last one that ended (null before the first). */
export function currentLedgerVerification(deps: AuditDeps) {
  return currentVerifyJob(deps.dataDir);
}

/** Inclusion proof of event `seq` against the latest checkpoint covering it, from the stored tree levels, checked against the signed root. */
export function inclusionProof({ db, auditKeys }: AuditDeps, seq: number) {
  let p: ReturnType<typeof inclusionProofFromLevels>;
  try {
    p = inclusionProofFromLevels(db, seq);
  } catch (err) {
    return invalidInput((err as Error).message);
  }
  return { ...p, signatureValid: p.checkpoint ? signedByCurrentKey(auditKeys, p.checkpoint) : null };
}

/** Models and versions a report can be made for (production first), with the aliases pointing at each now. */
export function reportTargets(db: Db) {
  const all = db
    .select({ v: modelVersions, name: models.name })
    .from(modelVersions)
    .innerJoin(models, eq(models.id, modelVersions.modelId))
    .orderBy(asc(models.name), desc(modelVersions.version))
    .all();
  const targets = currentAliasTargets(aliasMoves(db));
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

/** What a report covers and who may write its documents: the model and the datasets in the version's lineage. */
export function reportSubjects(db: Db, modelVersionId: number) {
  const f = collectLineage(db, modelVersionId);
  return {
    model: f.model,
    version: f.version.version,
    modelVersionId: f.version.id,
    weightsSha256: f.version.weightsSha256,
    datasets: f.datasets.map((d) => ({ id: d.id, name: d.name })),
  };
}
