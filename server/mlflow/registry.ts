/**
 * MLflow's model registry (registered-models/*, model-versions/*) on Runledger's registry (server/registry/).
 *
 * Mapping (issue 15 phase 2, documented in server/mlflow/README.md):
 * - A registered model IS a Runledger model (models): create is model.create; update (description) is model.update
 *   { field: "description" }. Names follow Runledger's rule (letters, digits, . _ -, at most 80).
 * - A model version IS a model_versions row, i.e. a checkpoint of a completed run with its weights sha256. Through the
 *   API its source is an artifact the script logged to a FINISHED run (`runs:/<run_id>/<path>` or
 *   `mlflow-artifacts:/<exp>/<run>/artifacts/<path>`, one file): that file becomes a checkpoint of the run
 *   (checkpoint.create: next epoch, step = the run's last metric step, weights = the artifact's sha256), then a version
 *   through registerModelVersion (modelVersion.create), in one transaction. The same file registered again reuses its
 *   checkpoint. A version's source reads back as runs:/<run_id>/<path> (API runs) or runledger-checkpoints:/<id>.
 * - Aliases: set/delete move an alias through the registry's own moveAlias (alias.move, audit checkpoint after).
 *   "production" (PROTECTED_ALIASES) is refused with 403 PERMISSION_DENIED naming the promotion flow: it moves only
 *   through a promotion request approved by independent reviewers, never by one token.
 * - Deleting or renaming models and versions is refused (403 PERMISSION_DENIED): promotion requests, signatures, alias
 *   history and the auditor's report refer to them by name and number; model versions are immutable (no description).
 * Engineers write; every role reads.
 */
import { and, asc, eq, max } from "drizzle-orm";
import { z } from "zod";
import { checkpoints, metrics, modelVersions, models, runArtifacts, runs, users } from "@/db/schema";
import type { DbOrTx } from "@/db/client";
import { appendAuditEvent } from "@/server/audit/ledger";
import { now } from "@/server/app-context/service-context";
import { aliasSchema, isProtectedAlias, modelNameSchema, moveAlias, registerModelVersionInSqliteTx } from "@/server/registry/service";
import { aliasMoves, currentAliasTargets } from "@/server/registry/aliases";
import { MlflowError, doesNotExist, invalidParam } from "./errors";
import { idField, int64, ms, parseRequest, requireWriter, type MlflowCtx } from "./common";
import { decodePageToken, encodePageToken } from "./paging";
import { artifactOfSource } from "./artifacts";
import type { ModelVersion, RegisteredModel } from "@/contracts/mlflow/types";

type ModelRow = typeof models.$inferSelect;
type VersionRow = typeof modelVersions.$inferSelect;

const PROMOTION_FLOW =
  "moves only through a promotion request with independent reviewers' approval (Runledger's four-eyes rule): request it on the model's page (Models → the model → Request promotion); an API token cannot set it";

const nameField = z.string().min(1);
const versionField = z.union([z.string().regex(/^\d+$/, "expected a version number"), z.number().int()]).transform(Number);

function modelRow(db: DbOrTx, name: string): ModelRow {
  const m = db.select().from(models).where(eq(models.name, name)).get();
  if (!m) return doesNotExist(`Registered Model with name=${name} not found`);
  return m;
}

function versionRow(db: DbOrTx, m: ModelRow, version: number): VersionRow {
  const v = db
    .select()
    .from(modelVersions)
    .where(and(eq(modelVersions.modelId, m.id), eq(modelVersions.version, version)))
    .get();
  if (!v) return doesNotExist(`Model Version (name=${m.name}, version=${version}) not found`);
  return v;
}

function aliasesOf(db: DbOrTx, modelId: number): { alias: string; versionId: number }[] {
  const targets = currentAliasTargets(aliasMoves(db, modelId)).get(modelId) ?? new Map<string, number | null>();
  return [...targets]
    .filter((e): e is [string, number] => e[1] !== null)
    .map(([alias, versionId]) => ({ alias, versionId }))
    .sort((a, b) => (a.alias < b.alias ? -1 : 1));
}

/** Where a version's weights came from, as an MLflow source / download URI. */
function sourceOf(db: DbOrTx, v: VersionRow): { source: string; downloadUri: string } {
  const run = db.select({ origin: runs.origin, experimentId: runs.experimentId }).from(runs).where(eq(runs.id, v.runId)).get();
  const file =
    run?.origin === "api"
      ? db
          .select({ path: runArtifacts.path })
          .from(runArtifacts)
          .where(and(eq(runArtifacts.runId, v.runId), eq(runArtifacts.sha256, v.weightsSha256)))
          .orderBy(asc(runArtifacts.id))
          .get()
      : undefined;
  if (file && run)
    return {
      source: `runs:/${v.runId}/${file.path}`,
      downloadUri: `mlflow-artifacts:/${run.experimentId}/${v.runId}/artifacts/${file.path}`,
    };
  return { source: `runledger-checkpoints:/${v.checkpointId}`, downloadUri: `/api/weights/model-versions/${v.id}` };
}

function toVersion(db: DbOrTx, m: ModelRow, v: VersionRow, aliases?: { alias: string; versionId: number }[]): ModelVersion {
  const email = db.select({ email: users.email }).from(users).where(eq(users.id, v.createdBy)).get()?.email ?? "";
  const al = (aliases ?? aliasesOf(db, m.id)).filter((a) => a.versionId === v.id).map((a) => a.alias);
  return {
    name: m.name,
    version: String(v.version),
    creation_timestamp: ms(v.createdAt)!,
    last_updated_timestamp: ms(v.createdAt)!,
    user_id: email,
    current_stage: "None",
    description: "",
    source: sourceOf(db, v).source,
    run_id: String(v.runId),
    status: "READY",
    run_link: "",
    ...(al.length ? { aliases: al } : {}),
  };
}

function toModel(db: DbOrTx, m: ModelRow): RegisteredModel {
  const versions = db.select().from(modelVersions).where(eq(modelVersions.modelId, m.id)).orderBy(asc(modelVersions.version)).all();
  const aliases = aliasesOf(db, m.id);
  const last = versions.at(-1);
  const number = new Map(versions.map((v) => [v.id, v.version]));
  return {
    name: m.name,
    creation_timestamp: ms(m.createdAt)!,
    last_updated_timestamp: ms(last?.createdAt ?? m.createdAt)!,
    description: m.description,
    ...(last ? { latest_versions: [toVersion(db, m, last, aliases)] } : {}),
    ...(aliases.length ? { aliases: aliases.map((a) => ({ alias: a.alias, version: String(number.get(a.versionId) ?? "") })) } : {}),
  };
}

function checkedName(name: string): string {
  const r = modelNameSchema.safeParse(name);
  if (!r.success) invalidParam(`Invalid registered model name '${name}': ${r.error.issues[0]!.message}`);
  return r.data!;
}

// registered-models

export function createRegisteredModel(ctx: MlflowCtx, body: unknown): { registered_model: RegisteredModel } {
  requireWriter(ctx, "create registered models");
  const req = parseRequest(
    z.object({ name: nameField, description: z.string().max(2000).default(""), tags: z.array(z.unknown()).default([]) }),
    body,
  );
  if (req.tags.length) invalidParam("Registered model tags are not kept by Runledger: create the model without tags");
  const name = checkedName(req.name);
  return ctx.db.transaction((tx) => {
    if (tx.select({ id: models.id }).from(models).where(eq(models.name, name)).get())
      throw new MlflowError("RESOURCE_ALREADY_EXISTS", `Registered Model (name=${name}) already exists.`);
    const m = tx.insert(models).values({ name, description: req.description, createdBy: ctx.actor.id, createdAt: now() }).returning().get();
    appendAuditEvent(tx, {
      actor: ctx.actor,
      action: "model.create",
      entityType: "model",
      entityId: m.id,
      payload: { name: m.name, approvalsRequired: m.approvalsRequired, description: m.description, createdAt: m.createdAt },
    });
    return { registered_model: toModel(tx, m) };
  });
}

export function getRegisteredModel(ctx: MlflowCtx, body: unknown): { registered_model: RegisteredModel } {
  const req = parseRequest(z.object({ name: nameField }), body);
  return { registered_model: toModel(ctx.db, modelRow(ctx.db, req.name)) };
}

/** filter: empty, name = '…', name LIKE '…' or name ILIKE '…' (% and _ wildcards), as MLflow's registry search. */
function nameFilter(filter: string | undefined): (name: string) => boolean {
  const f = (filter ?? "").trim();
  if (f === "") return () => true;
  const m = /^name\s*(=|!=|LIKE|ILIKE)\s*(['"])(.*)\2$/i.exec(f);
  if (!m) return invalidParam(`Unsupported filter '${f}': Runledger supports name = '…', name != '…', name LIKE '…' and name ILIKE '…'`);
  const op = m[1]!.toUpperCase();
  const value = m[3]!;
  if (op === "=") return (n) => n === value;
  if (op === "!=") return (n) => n !== value;
  const re = new RegExp(
    `^${value
      .replace(/[.*+?^${}()|[\]\\]/g, "\\$&")
      .replace(/%/g, ".*")
      .replace(/_/g, ".")}$`,
    op === "ILIKE" ? "is" : "s",
  );
  return (n) => re.test(n);
}

const searchFields = {
  filter: z.string().optional(),
  max_results: int64.optional(),
  order_by: z.union([z.array(z.string()), z.string().transform((s) => [s])]).optional(),
  page_token: z.string().optional(),
};

function page<T>(all: T[], maxResults: number | undefined, token: string | undefined, limit: number): { items: T[]; next?: string } {
  const n = maxResults ?? limit;
  if (n < 1 || n > limit) invalidParam(`Invalid value ${n} for parameter 'max_results': it must be between 1 and ${limit}`);
  const offset = decodePageToken(token);
  const items = all.slice(offset, offset + n);
  return { items, ...(offset + n < all.length ? { next: encodePageToken(offset + n) } : {}) };
}

export function searchRegisteredModels(ctx: MlflowCtx, body: unknown): { registered_models?: RegisteredModel[]; next_page_token?: string } {
  const req = parseRequest(z.object(searchFields), body);
  const keep = nameFilter(req.filter);
  const desc = (req.order_by ?? []).some((o) => /^name\s+DESC$/i.test(o.trim()));
  const rows = ctx.db
    .select()
    .from(models)
    .orderBy(asc(models.name))
    .all()
    .filter((m) => keep(m.name));
  if (desc) rows.reverse();
  const p = page(rows, req.max_results, req.page_token, 1000);
  return {
    ...(p.items.length ? { registered_models: p.items.map((m) => toModel(ctx.db, m)) } : {}),
    ...(p.next ? { next_page_token: p.next } : {}),
  };
}

export function updateRegisteredModel(ctx: MlflowCtx, body: unknown): { registered_model: RegisteredModel } {
  requireWriter(ctx, "update registered models");
  const req = parseRequest(z.object({ name: nameField, description: z.string().max(2000).optional() }), body);
  const m = modelRow(ctx.db, req.name);
  if (req.description === undefined || req.description === m.description) return { registered_model: toModel(ctx.db, m) };
  return ctx.db.transaction((tx) => {
    const row = tx.update(models).set({ description: req.description }).where(eq(models.id, m.id)).returning().get();
    appendAuditEvent(tx, {
      actor: ctx.actor,
      action: "model.update",
      entityType: "model",
      entityId: m.id,
      payload: { field: "description", before: m.description, after: row.description },
    });
    return { registered_model: toModel(tx, row) };
  });
}

export function refuseModelRemoval(what: string) {
  return (ctx: MlflowCtx, body: unknown): never => {
    requireWriter(ctx, what);
    parseRequest(z.object({ name: nameField }).passthrough(), body);
    throw new MlflowError(
      "PERMISSION_DENIED",
      `Runledger does not ${what}: promotion requests, signatures, alias history and the auditor's report refer to registered models and versions by name and number, so they are kept as registered`,
    );
  };
}

// aliases

const aliasReq = z.object({ name: nameField, alias: z.string().min(1) });

function checkedAlias(alias: string): string {
  const r = aliasSchema.safeParse(alias);
  if (!r.success) invalidParam(`Invalid alias '${alias}': ${r.error.issues[0]!.message}`);
  return r.data!;
}

export async function setRegisteredModelAlias(ctx: MlflowCtx, body: unknown): Promise<Record<string, never>> {
  requireWriter(ctx, "set model aliases");
  const req = parseRequest(aliasReq.extend({ version: versionField }), body);
  const alias = checkedAlias(req.alias);
  if (isProtectedAlias(alias)) throw new MlflowError("PERMISSION_DENIED", `The alias '${alias}' ${PROMOTION_FLOW}`);
  const m = modelRow(ctx.db, req.name);
  const v = versionRow(ctx.db, m, req.version);
  if (aliasesOf(ctx.db, m.id).some((a) => a.alias === alias && a.versionId === v.id)) return {};
  await moveAlias(ctx, {
    modelName: m.name,
    alias,
    version: v.version,
    rationale: `set through the tracking API (token #${ctx.actor.tokenId})`,
  });
  return {};
}

export async function deleteRegisteredModelAlias(ctx: MlflowCtx, body: unknown): Promise<Record<string, never>> {
  requireWriter(ctx, "delete model aliases");
  const req = parseRequest(aliasReq, body);
  const alias = checkedAlias(req.alias);
  if (isProtectedAlias(alias)) throw new MlflowError("PERMISSION_DENIED", `The alias '${alias}' ${PROMOTION_FLOW}`);
  const m = modelRow(ctx.db, req.name);
  if (!aliasesOf(ctx.db, m.id).some((a) => a.alias === alias)) return {};
  await moveAlias(ctx, {
    modelName: m.name,
    alias,
    version: null,
    rationale: `deleted through the tracking API (token #${ctx.actor.tokenId})`,
  });
  return {};
}

export function getModelVersionByAlias(ctx: MlflowCtx, body: unknown): { model_version: ModelVersion } {
  const req = parseRequest(aliasReq, body);
  const m = modelRow(ctx.db, req.name);
  const aliases = aliasesOf(ctx.db, m.id);
  const hit = aliases.find((a) => a.alias === req.alias);
  if (!hit) return doesNotExist(`Registered model alias ${req.alias} not found.`);
  const v = ctx.db.select().from(modelVersions).where(eq(modelVersions.id, hit.versionId)).get()!;
  return { model_version: toVersion(ctx.db, m, v, aliases) };
}

// model-versions

export function createModelVersion(ctx: MlflowCtx, body: unknown): { model_version: ModelVersion } {
  requireWriter(ctx, "create model versions");
  const req = parseRequest(
    z.object({
      name: nameField,
      source: z.string().min(1),
      run_id: idField.optional(),
      tags: z.array(z.unknown()).default([]),
      run_link: z.string().optional(),
      description: z.string().optional(),
    }),
    body,
  );
  if (req.tags.length) invalidParam("Model version tags are not kept by Runledger: create the version without tags");
  if (req.description)
    invalidParam("Model versions are immutable in Runledger and carry no description: describe the registered model instead");
  const m = modelRow(ctx.db, req.name);
  const { run, row: file } = artifactOfSource(ctx.db, req.source, req.run_id);
  if (run.deletedAt) invalidParam(`Run ${run.id} is deleted: restore it before registering its artifacts`);
  if (run.status !== "completed")
    invalidParam(`Run ${run.id} is ${run.status}: only artifacts of FINISHED runs can be registered (end the run with runs/update first)`);
  const registered = ctx.db.transaction((tx) => {
    let ck = tx
      .select()
      .from(checkpoints)
      .where(and(eq(checkpoints.runId, run.id), eq(checkpoints.sha256, file.sha256)))
      .get();
    if (!ck) {
      const epoch =
        (tx
          .select({ e: max(checkpoints.epoch) })
          .from(checkpoints)
          .where(eq(checkpoints.runId, run.id))
          .get()?.e ?? -1) + 1;
      const step =
        tx
          .select({ s: max(metrics.step) })
          .from(metrics)
          .where(eq(metrics.runId, run.id))
          .get()?.s ?? 0;
      ck = tx
        .insert(checkpoints)
        .values({ runId: run.id, epoch, step, sha256: file.sha256, bytes: file.bytes, metricsJson: "{}", isBest: false, createdAt: now() })
        .returning()
        .get();
      appendAuditEvent(tx, {
        actor: ctx.actor,
        action: "checkpoint.create",
        entityType: "checkpoint",
        entityId: ck.id,
        payload: {
          runId: run.id,
          epoch,
          step,
          sha256: ck.sha256,
          bytes: ck.bytes,
          metrics: {},
          createdAt: ck.createdAt,
          artifactPath: file.path,
        },
      });
    }
    return registerModelVersionInSqliteTx(tx, ctx.actor, { runId: run.id, modelName: m.name, checkpoint: { checkpointId: ck.id } });
  });
  const v = ctx.db.select().from(modelVersions).where(eq(modelVersions.id, registered.modelVersionId)).get()!;
  return { model_version: toVersion(ctx.db, m, v) };
}

const versionReq = z.object({ name: nameField, version: versionField });

export function getModelVersion(ctx: MlflowCtx, body: unknown): { model_version: ModelVersion } {
  const req = parseRequest(versionReq, body);
  const m = modelRow(ctx.db, req.name);
  return { model_version: toVersion(ctx.db, m, versionRow(ctx.db, m, req.version)) };
}

export function getModelVersionDownloadUri(ctx: MlflowCtx, body: unknown): { artifact_uri: string } {
  const req = parseRequest(versionReq, body);
  const m = modelRow(ctx.db, req.name);
  return { artifact_uri: sourceOf(ctx.db, versionRow(ctx.db, m, req.version)).downloadUri };
}

export function updateModelVersion(ctx: MlflowCtx, body: unknown): { model_version: ModelVersion } {
  requireWriter(ctx, "update model versions");
  const req = parseRequest(versionReq.extend({ description: z.string().optional() }), body);
  const m = modelRow(ctx.db, req.name);
  const v = versionRow(ctx.db, m, req.version);
  if (req.description)
    invalidParam("Model versions are immutable in Runledger and carry no description: describe the registered model instead");
  return { model_version: toVersion(ctx.db, m, v) };
}

/** filter: empty, name = '…' / LIKE, or run_id = '…'. */
export function searchModelVersions(ctx: MlflowCtx, body: unknown): { model_versions?: ModelVersion[]; next_page_token?: string } {
  const req = parseRequest(z.object(searchFields), body);
  const f = (req.filter ?? "").trim();
  const run = /^run_id\s*=\s*(['"])(\d+)\1$/i.exec(f);
  const keepName = run ? () => true : nameFilter(f);
  const rows = ctx.db
    .select({ m: models, v: modelVersions })
    .from(modelVersions)
    .innerJoin(models, eq(models.id, modelVersions.modelId))
    .orderBy(asc(models.name), asc(modelVersions.version))
    .all()
    .filter((r) => keepName(r.m.name) && (!run || r.v.runId === Number(run[2])));
  const p = page(rows, req.max_results, req.page_token, 200_000);
  return {
    ...(p.items.length ? { model_versions: p.items.map((r) => toVersion(ctx.db, r.m, r.v)) } : {}),
    ...(p.next ? { next_page_token: p.next } : {}),
  };
}
