/**
 * The audit ledger in the app: browse events (filter by actor, action, entity, time), the server key and latest
 * signed checkpoint, the last verification result, "verify now", inclusion proofs, and what the auditor's report
 * can be exported for. Every signed-in role may read and verify (auditors included: verifying and exporting
 * record an event but change no project data). The report bundle itself is downloaded from app/api/report.
 */
import { z } from "zod";
import { and, asc, desc, eq, gte, like, lt, lte, or, type SQL } from "drizzle-orm";
import { auditEvents, modelAliasEvents, modelVersions, models } from "@/db/schema";
import { router, signedInProcedure } from "@/server/trpc/init";
import { AUDIT_ACTIONS } from "@/server/audit/actions";
import { latestAuditCheckpoint, trustedCheckpointFromRow, treeHeadOf, verifyTreeHeadSignature } from "@/server/audit/checkpoints";
import { inclusionProofFromLevels } from "@/server/audit/tree-levels";
import { currentVerifyJob, startVerifyJob } from "@/server/audit/verify-jobs";
import { configuredWitnesses } from "@/server/audit/witness/start";
import type { VerifySummary } from "@/server/audit/verify-summary";
import { maxAuditSeq } from "@/server/audit/ledger-reads";
import { collectLineage } from "@/server/lineage/collect";
import { invalidInput } from "@/server/errors";

export const eventFilterInput = z.object({
  actor: z.string().trim().max(200).optional(),
  action: z.string().trim().max(100).optional(),
  entityType: z.string().trim().max(100).optional(),
  entityId: z.string().trim().max(100).optional(),
  from: z.string().trim().optional(),
  to: z.string().trim().optional(),
  /** Events with seq below this (for "load older"). */
  beforeSeq: z.number().int().optional(),
  limit: z.number().int().min(1).max(500).default(50),
});

function isoOrThrow(label: string, v: string): string {
  const t = new Date(v);
  if (Number.isNaN(t.getTime())) invalidInput(`${label} "${v}" is not a time: use ISO-8601, e.g. 2026-01-31T12:00:00Z`);
  return t.toISOString();
}

export const auditRouter = router({
  actions: signedInProcedure.query(() => [...AUDIT_ACTIONS]),

  events: signedInProcedure.input(eventFilterInput).query(({ ctx, input }) => {
    const conds: SQL[] = [];
    if (input.actor) conds.push(or(like(auditEvents.actorName, `%${input.actor}%`), eq(auditEvents.actorId, Number(input.actor) || -1))!);
    if (input.action) conds.push(input.action.endsWith(".") || !input.action.includes(".") ? like(auditEvents.action, `${input.action.replace(/\.$/, "")}.%`) : eq(auditEvents.action, input.action));
    if (input.entityType) conds.push(eq(auditEvents.entityType, input.entityType));
    if (input.entityId) conds.push(eq(auditEvents.entityId, input.entityId));
    if (input.from) conds.push(gte(auditEvents.at, isoOrThrow("from", input.from)));
    if (input.to) conds.push(lte(auditEvents.at, isoOrThrow("to", input.to)));
    if (input.beforeSeq !== undefined) conds.push(lt(auditEvents.seq, input.beforeSeq));
    const rows = ctx.services.db.select().from(auditEvents).where(conds.length ? and(...conds) : undefined).orderBy(desc(auditEvents.seq)).limit(input.limit + 1).all();
    const page = rows.slice(0, input.limit);
    return {
      events: page.map((e) => ({ ...e, payload: JSON.parse(e.payload) as unknown })),
      nextBeforeSeq: rows.length > input.limit ? page.at(-1)!.seq : null,
    };
  }),

  status: signedInProcedure.query(({ ctx }) => {
    const { db, auditKeys } = ctx.services;
    const latest = latestAuditCheckpoint(db) ?? null;
    const lastVerify = db.select().from(auditEvents).where(eq(auditEvents.action, "audit.verify")).orderBy(desc(auditEvents.seq)).limit(1).get();
    return {
      publicKeyPem: auditKeys.publicKeyPem,
      fingerprint: auditKeys.fingerprint,
      events: maxAuditSeq(db),
      latestCheckpoint: latest ? { ...latest, signatureValid: latest.keyFingerprint === auditKeys.fingerprint && verifyTreeHeadSignature(auditKeys, treeHeadOf(latest), latest.signature) } : null,
      lastVerification: lastVerify ? { seq: lastVerify.seq, at: lastVerify.at, by: lastVerify.actorName, result: JSON.parse(lastVerify.payload) as VerifySummary } : null,
    };
  }),

  /** The latest checkpoint as a file an auditor keeps outside the server (for `audit verify --trusted-checkpoint`). */
  trustedCheckpoint: signedInProcedure.query(({ ctx }) => {
    const latest = latestAuditCheckpoint(ctx.services.db);
    return latest ? trustedCheckpointFromRow(latest, ctx.services.auditKeys.publicKeyPem) : null;
  }),

  /**
   * Starts verifying the whole ledger in a background worker (or returns the job already running) and returns at
   * once; the outcome is recorded as an "audit.verify" event when it ends. Trusts the server's current public key
   * and, as anchors, the cosignatures of the witnesses the server is configured with.
   */
  verify: signedInProcedure.mutation(({ ctx }) => {
    const { auditKeys } = ctx.services;
    const witnessKeys = configuredWitnesses().witnesses.map((w) => w.key.vkey);
    const trusted = `the server's current public key ${auditKeys.fingerprint}${witnessKeys.length > 0 ? ` and the ${witnessKeys.length} witness key(s) configured in RUNLEDGER_WITNESSES` : ""}`;
    return startVerifyJob(ctx.services, ctx.user, { publicKeyPem: auditKeys.publicKeyPem, witnessKeys }, trusted);
  }),

  /** The running "Verify now" job with its progress, or the last one that ended (null before the first). */
  verifyJob: signedInProcedure.query(({ ctx }) => currentVerifyJob(ctx.services.dataDir)),

  /**
   * Inclusion proof of one event against the latest checkpoint covering it, from the stored tree levels
   * (O(log n) rows), checked against the signed root as a verifier would.
   */
  inclusionProof: signedInProcedure.input(z.object({ seq: z.number().int().min(1) })).query(({ ctx, input }) => {
    const { db, auditKeys } = ctx.services;
    let p: ReturnType<typeof inclusionProofFromLevels>;
    try {
      p = inclusionProofFromLevels(db, input.seq);
    } catch (err) {
      return invalidInput((err as Error).message);
    }
    const signatureValid = p.checkpoint ? p.checkpoint.keyFingerprint === auditKeys.fingerprint && verifyTreeHeadSignature(auditKeys, treeHeadOf(p.checkpoint), p.checkpoint.signature) : null;
    return { ...p, signatureValid };
  }),

  /** Models and versions a report can be made for (production first), for the audit page's export list. */
  reportTargets: signedInProcedure.query(({ ctx }) => {
    const db = ctx.services.db;
    const all = db.select({ v: modelVersions, name: models.name }).from(modelVersions).innerJoin(models, eq(models.id, modelVersions.modelId)).orderBy(asc(models.name), desc(modelVersions.version)).all();
    const moves = db.select().from(modelAliasEvents).orderBy(asc(modelAliasEvents.createdAt), asc(modelAliasEvents.id)).all();
    const current = new Map<string, number | null>();
    for (const m of moves) current.set(`${m.modelId}:${m.alias}`, m.modelVersionId);
    return all
      .map(({ v, name }) => ({ modelVersionId: v.id, model: name, version: v.version, weightsSha256: v.weightsSha256, createdAt: v.createdAt, aliases: [...current].filter(([k, id]) => id === v.id && k.startsWith(`${v.modelId}:`)).map(([k]) => k.split(":")[1]!) }))
      .sort((a, b) => Number(b.aliases.includes("production")) - Number(a.aliases.includes("production")));
  }),

  /** What a report covers and who may write its documents: the model and the datasets in the version's lineage. */
  reportSubjects: signedInProcedure.input(z.object({ modelVersionId: z.number().int() })).query(({ ctx, input }) => {
    const f = collectLineage(ctx.services.db, input.modelVersionId);
    return { model: f.model, version: f.version.version, modelVersionId: f.version.id, weightsSha256: f.version.weightsSha256, datasets: f.datasets.map((d) => ({ id: d.id, name: d.name })) };
  }),
});
