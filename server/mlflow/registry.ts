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
import { and, asc, eq, max, sql } from "drizzle-orm";
import { z } from "zod";
import type { Tx } from "@/db/client";
import { PG_LOCK_KEYS } from "@/db/pg-client";
import { asStore, row, rows, transact, type Dialect, type Store, type StoreTables, type TxBody } from "@/db/store";
import { appendEvent } from "@/server/audit/ledger-pg";
import { now } from "@/server/app-context/service-context";
import {
  aliasSchema,
  insertModelVersion,
  isProtectedAlias,
  modelNameSchema,
  moveAlias,
  registerVersionInput,
} from "@/server/registry/service";
import { aliasMovesIn, currentAliasTargets } from "@/server/registry/aliases";
import { MlflowError, doesNotExist, invalidParam } from "./errors";
import { idField, int64, ms, parseRequest, readPart, requireWriter, type MlflowStoreCtx } from "./common";
import { decodePageToken, encodePageToken } from "./paging";
import { artifactOfSourceIn } from "./artifacts";
import type { ModelVersion, RegisteredModel } from "@/contracts/mlflow/types";

type ModelRow = StoreTables["models"]["$inferSelect"];
type VersionRow = StoreTables["modelVersions"]["$inferSelect"];
type Alias = { alias: string; versionId: number };

const PROMOTION_FLOW =
  "moves only through a promotion request with independent reviewers' approval (Runledger's four-eyes rule): request it on the model's page (Models → the model → Request promotion); an API token cannot set it";

const nameField = z.string().min(1);
const versionField = z.union([z.string().regex(/^\d+$/, "expected a version number"), z.number().int()]).transform(Number);

/** Model names in byte order on both stores (SQLite's BINARY; COLLATE "C" on PostgreSQL). */
const byName = (dialect: Dialect, t: StoreTables) => (dialect === "pg" ? sql`${t.models.name} COLLATE "C"` : asc(t.models.name));

function* modelRow(q: Tx, t: StoreTables, name: string): TxBody<ModelRow> {
  const m = yield* row(q.select().from(t.models).where(eq(t.models.name, name)).limit(1));
  if (!m) return doesNotExist(`Registered Model with name=${name} not found`);
  return m;
}

function* versionRow(q: Tx, t: StoreTables, m: ModelRow, version: number): TxBody<VersionRow> {
  const { modelVersions } = t;
  const v = yield* row(
    q
      .select()
      .from(modelVersions)
      .where(and(eq(modelVersions.modelId, m.id), eq(modelVersions.version, version)))
      .limit(1),
  );
  if (!v) return doesNotExist(`Model Version (name=${m.name}, version=${version}) not found`);
  return v;
}

function* aliasesOf(q: Tx, t: StoreTables, modelId: number): TxBody<Alias[]> {
  const targets = currentAliasTargets(yield* aliasMovesIn(q, t, modelId)).get(modelId) ?? new Map<string, number | null>();
  return [...targets]
    .filter((e): e is [string, number] => e[1] !== null)
    .map(([alias, versionId]) => ({ alias, versionId }))
    .sort((a, b) => (a.alias < b.alias ? -1 : 1));
}

/** Where a version's weights came from, as an MLflow source / download URI. */
function* sourceOf(q: Tx, t: StoreTables, v: VersionRow): TxBody<{ source: string; downloadUri: string }> {
  const { runs, runArtifacts } = t;
  const run = yield* row(
    q.select({ origin: runs.origin, experimentId: runs.experimentId }).from(runs).where(eq(runs.id, v.runId)).limit(1),
  );
  const file =
    run?.origin === "api"
      ? yield* row(
          q
            .select({ path: runArtifacts.path })
            .from(runArtifacts)
            .where(and(eq(runArtifacts.runId, v.runId), eq(runArtifacts.sha256, v.weightsSha256)))
            .orderBy(asc(runArtifacts.id))
            .limit(1),
        )
      : undefined;
  if (file && run)
    return {
      source: `runs:/${v.runId}/${file.path}`,
      downloadUri: `mlflow-artifacts:/${run.experimentId}/${v.runId}/artifacts/${file.path}`,
    };
  return { source: `runledger-checkpoints:/${v.checkpointId}`, downloadUri: `/api/weights/model-versions/${v.id}` };
}

function* toVersion(q: Tx, t: StoreTables, m: ModelRow, v: VersionRow, aliases?: Alias[]): TxBody<ModelVersion> {
  const email = (yield* row(q.select({ email: t.users.email }).from(t.users).where(eq(t.users.id, v.createdBy)).limit(1)))?.email ?? "";
  const al = (aliases ?? (yield* aliasesOf(q, t, m.id))).filter((a) => a.versionId === v.id).map((a) => a.alias);
  return {
    name: m.name,
    version: String(v.version),
    creation_timestamp: ms(v.createdAt)!,
    last_updated_timestamp: ms(v.createdAt)!,
    user_id: email,
    current_stage: "None",
    description: "",
    source: (yield* sourceOf(q, t, v)).source,
    run_id: String(v.runId),
    status: "READY",
    run_link: "",
    ...(al.length ? { aliases: al } : {}),
  };
}

function* toModel(q: Tx, t: StoreTables, m: ModelRow): TxBody<RegisteredModel> {
  const { modelVersions } = t;
  const versions = yield* rows(q.select().from(modelVersions).where(eq(modelVersions.modelId, m.id)).orderBy(asc(modelVersions.version)));
  const aliases = yield* aliasesOf(q, t, m.id);
  const last = versions.at(-1);
  const number = new Map(versions.map((v) => [v.id, v.version]));
  return {
    name: m.name,
    creation_timestamp: ms(m.createdAt)!,
    last_updated_timestamp: ms(last?.createdAt ?? m.createdAt)!,
    description: m.description,
    ...(last ? { latest_versions: [yield* toVersion(q, t, m, last, aliases)] } : {}),
    ...(aliases.length ? { aliases: aliases.map((a) => ({ alias: a.alias, version: String(number.get(a.versionId) ?? "") })) } : {}),
  };
}

/** A read of the registry outside a transaction (readPart: synchronous on SQLite, awaited on PostgreSQL). */
function read<T>(ctx: MlflowStoreCtx, part: (q: Tx, t: StoreTables, store: Store) => TxBody<T>): Promise<T> {
  const store = asStore(ctx.db);
  return readPart(store, (q) => part(q, store.tables, store));
}

function checkedName(name: string): string {
  const r = modelNameSchema.safeParse(name);
  if (!r.success) invalidParam(`Invalid registered model name '${name}': ${r.error.issues[0]!.message}`);
  return r.data!;
}

// registered-models

/** The name is checked inside the transaction (under the ledger lock on PostgreSQL): one name created at once is one model. */
export async function createRegisteredModel(ctx: MlflowStoreCtx, body: unknown): Promise<{ registered_model: RegisteredModel }> {
  requireWriter(ctx, "create registered models");
  const req = parseRequest(
    z.object({ name: nameField, description: z.string().max(2000).default(""), tags: z.array(z.unknown()).default([]) }),
    body,
  );
  if (req.tags.length) invalidParam("Registered model tags are not kept by Runledger: create the model without tags");
  const name = checkedName(req.name);
  const store = asStore(ctx.db);
  const t = store.tables;
  return transact(
    store,
    function* (tx) {
      if (yield* row(tx.select({ id: t.models.id }).from(t.models).where(eq(t.models.name, name)).limit(1)))
        throw new MlflowError("RESOURCE_ALREADY_EXISTS", `Registered Model (name=${name}) already exists.`);
      const m = (yield* row(
        tx.insert(t.models).values({ name, description: req.description, createdBy: ctx.actor.id, createdAt: now() }).returning(),
      ))!;
      yield* appendEvent({
        actor: ctx.actor,
        action: "model.create",
        entityType: "model",
        entityId: m.id,
        payload: { name: m.name, approvalsRequired: m.approvalsRequired, description: m.description, createdAt: m.createdAt },
      });
      return { registered_model: yield* toModel(tx, t, m) };
    },
    { pgLock: PG_LOCK_KEYS.ledger },
  );
}

export async function getRegisteredModel(ctx: MlflowStoreCtx, body: unknown): Promise<{ registered_model: RegisteredModel }> {
  const req = parseRequest(z.object({ name: nameField }), body);
  return read(ctx, function* (q, t) {
    return { registered_model: yield* toModel(q, t, yield* modelRow(q, t, req.name)) };
  });
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

export async function searchRegisteredModels(
  ctx: MlflowStoreCtx,
  body: unknown,
): Promise<{ registered_models?: RegisteredModel[]; next_page_token?: string }> {
  const req = parseRequest(z.object(searchFields), body);
  const keep = nameFilter(req.filter);
  const desc = (req.order_by ?? []).some((o) => /^name\s+DESC$/i.test(o.trim()));
  return read(ctx, function* (q, t, store) {
    const found = (yield* rows(q.select().from(t.models).orderBy(byName(store.dialect, t)))).filter((m) => keep(m.name));
    if (desc) found.reverse();
    const p = page(found, req.max_results, req.page_token, 1000);
    const listed: RegisteredModel[] = [];
    for (const m of p.items) listed.push(yield* toModel(q, t, m));
    return {
      ...(listed.length ? { registered_models: listed } : {}),
      ...(p.next ? { next_page_token: p.next } : {}),
    };
  });
}

export async function updateRegisteredModel(ctx: MlflowStoreCtx, body: unknown): Promise<{ registered_model: RegisteredModel }> {
  requireWriter(ctx, "update registered models");
  const req = parseRequest(z.object({ name: nameField, description: z.string().max(2000).optional() }), body);
  const store = asStore(ctx.db);
  const t = store.tables;
  // The model and its description are read inside the transaction, so the event's "before" is the value replaced.
  return transact(
    store,
    function* (tx) {
      const m = yield* modelRow(tx, t, req.name);
      if (req.description === undefined || req.description === m.description) return { registered_model: yield* toModel(tx, t, m) };
      const updated = (yield* row(tx.update(t.models).set({ description: req.description }).where(eq(t.models.id, m.id)).returning()))!;
      yield* appendEvent({
        actor: ctx.actor,
        action: "model.update",
        entityType: "model",
        entityId: m.id,
        payload: { field: "description", before: m.description, after: updated.description },
      });
      return { registered_model: yield* toModel(tx, t, updated) };
    },
    { pgLock: PG_LOCK_KEYS.ledger },
  );
}

export function refuseModelRemoval(what: string) {
  return (ctx: MlflowStoreCtx, body: unknown): never => {
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

export async function setRegisteredModelAlias(ctx: MlflowStoreCtx, body: unknown): Promise<Record<string, never>> {
  requireWriter(ctx, "set model aliases");
  const req = parseRequest(aliasReq.extend({ version: versionField }), body);
  const alias = checkedAlias(req.alias);
  if (isProtectedAlias(alias)) throw new MlflowError("PERMISSION_DENIED", `The alias '${alias}' ${PROMOTION_FLOW}`);
  const found = await read(ctx, function* (q, t) {
    const m = yield* modelRow(q, t, req.name);
    const v = yield* versionRow(q, t, m, req.version);
    return { m, v, already: (yield* aliasesOf(q, t, m.id)).some((a) => a.alias === alias && a.versionId === v.id) };
  });
  if (found.already) return {};
  // moveAlias re-reads the target inside its transaction; a move made meanwhile by someone else is its conflict.
  await moveAlias(ctx, {
    modelName: found.m.name,
    alias,
    version: found.v.version,
    rationale: `set through the tracking API (token #${ctx.actor.tokenId})`,
  });
  return {};
}

export async function deleteRegisteredModelAlias(ctx: MlflowStoreCtx, body: unknown): Promise<Record<string, never>> {
  requireWriter(ctx, "delete model aliases");
  const req = parseRequest(aliasReq, body);
  const alias = checkedAlias(req.alias);
  if (isProtectedAlias(alias)) throw new MlflowError("PERMISSION_DENIED", `The alias '${alias}' ${PROMOTION_FLOW}`);
  const found = await read(ctx, function* (q, t) {
    const m = yield* modelRow(q, t, req.name);
    return { m, set: (yield* aliasesOf(q, t, m.id)).some((a) => a.alias === alias) };
  });
  if (!found.set) return {};
  await moveAlias(ctx, {
    modelName: found.m.name,
    alias,
    version: null,
    rationale: `deleted through the tracking API (token #${ctx.actor.tokenId})`,
  });
  return {};
}

export async function getModelVersionByAlias(ctx: MlflowStoreCtx, body: unknown): Promise<{ model_version: ModelVersion }> {
  const req = parseRequest(aliasReq, body);
  return read(ctx, function* (q, t) {
    const m = yield* modelRow(q, t, req.name);
    const aliases = yield* aliasesOf(q, t, m.id);
    const hit = aliases.find((a) => a.alias === req.alias);
    if (!hit) return doesNotExist(`Registered model alias ${req.alias} not found.`);
    const v = (yield* row(q.select().from(t.modelVersions).where(eq(t.modelVersions.id, hit.versionId)).limit(1)))!;
    return { model_version: yield* toVersion(q, t, m, v, aliases) };
  });
}

// model-versions

/**
 * The model, the source artifact and the run are checked first (the same errors as before the port); the checkpoint
 * (found or created) and the version (the registry's insertModelVersion part) are one transaction under the ledger lock.
 */
export async function createModelVersion(ctx: MlflowStoreCtx, body: unknown): Promise<{ model_version: ModelVersion }> {
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
  const { m, run, file } = await read(ctx, function* (q, t) {
    const model = yield* modelRow(q, t, req.name);
    const { run, row: file } = yield* artifactOfSourceIn(q, t, req.source, req.run_id);
    return { m: model, run, file };
  });
  if (run.deletedAt) invalidParam(`Run ${run.id} is deleted: restore it before registering its artifacts`);
  if (run.status !== "completed")
    invalidParam(`Run ${run.id} is ${run.status}: only artifacts of FINISHED runs can be registered (end the run with runs/update first)`);
  const store = asStore(ctx.db);
  const t = store.tables;
  const { checkpoints, metrics } = t;
  const registered = await transact(
    store,
    function* (tx) {
      let ck = yield* row(
        tx
          .select()
          .from(checkpoints)
          .where(and(eq(checkpoints.runId, run.id), eq(checkpoints.sha256, file.sha256)))
          .limit(1),
      );
      if (!ck) {
        const epoch =
          ((yield* row(
            tx
              .select({ e: max(checkpoints.epoch).mapWith(Number) })
              .from(checkpoints)
              .where(eq(checkpoints.runId, run.id)),
          ))?.e ?? -1) + 1;
        const step =
          (yield* row(
            tx
              .select({ s: max(metrics.step).mapWith(Number) })
              .from(metrics)
              .where(eq(metrics.runId, run.id)),
          ))?.s ?? 0;
        ck = (yield* row(
          tx
            .insert(checkpoints)
            .values({
              runId: run.id,
              epoch,
              step,
              sha256: file.sha256,
              bytes: file.bytes,
              metricsJson: "{}",
              isBest: false,
              createdAt: now(),
            })
            .returning(),
        ))!;
        yield* appendEvent({
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
      const input = registerVersionInput.parse({ runId: run.id, modelName: m.name, checkpoint: { checkpointId: ck.id } });
      return yield* insertModelVersion(tx, t, ctx.actor, input);
    },
    { pgLock: PG_LOCK_KEYS.ledger },
  );
  return read(ctx, function* (q, t) {
    const v = (yield* row(q.select().from(t.modelVersions).where(eq(t.modelVersions.id, registered.modelVersionId)).limit(1)))!;
    return { model_version: yield* toVersion(q, t, m, v) };
  });
}

const versionReq = z.object({ name: nameField, version: versionField });

export async function getModelVersion(ctx: MlflowStoreCtx, body: unknown): Promise<{ model_version: ModelVersion }> {
  const req = parseRequest(versionReq, body);
  return read(ctx, function* (q, t) {
    const m = yield* modelRow(q, t, req.name);
    return { model_version: yield* toVersion(q, t, m, yield* versionRow(q, t, m, req.version)) };
  });
}

export async function getModelVersionDownloadUri(ctx: MlflowStoreCtx, body: unknown): Promise<{ artifact_uri: string }> {
  const req = parseRequest(versionReq, body);
  return read(ctx, function* (q, t) {
    const m = yield* modelRow(q, t, req.name);
    return { artifact_uri: (yield* sourceOf(q, t, yield* versionRow(q, t, m, req.version))).downloadUri };
  });
}

export async function updateModelVersion(ctx: MlflowStoreCtx, body: unknown): Promise<{ model_version: ModelVersion }> {
  requireWriter(ctx, "update model versions");
  const req = parseRequest(versionReq.extend({ description: z.string().optional() }), body);
  return read(ctx, function* (q, t) {
    const m = yield* modelRow(q, t, req.name);
    const v = yield* versionRow(q, t, m, req.version);
    if (req.description)
      invalidParam("Model versions are immutable in Runledger and carry no description: describe the registered model instead");
    return { model_version: yield* toVersion(q, t, m, v) };
  });
}

/** filter: empty, name = '…' / LIKE, or run_id = '…'. */
export async function searchModelVersions(
  ctx: MlflowStoreCtx,
  body: unknown,
): Promise<{ model_versions?: ModelVersion[]; next_page_token?: string }> {
  const req = parseRequest(z.object(searchFields), body);
  const f = (req.filter ?? "").trim();
  const run = /^run_id\s*=\s*(['"])(\d+)\1$/i.exec(f);
  const keepName = run ? () => true : nameFilter(f);
  return read(ctx, function* (q, t, store) {
    const { models, modelVersions } = t;
    const found = (yield* rows(
      q
        .select({ m: models, v: modelVersions })
        .from(modelVersions)
        .innerJoin(models, eq(models.id, modelVersions.modelId))
        .orderBy(byName(store.dialect, t), asc(modelVersions.version)),
    )).filter((r) => keepName(r.m.name) && (!run || r.v.runId === Number(run[2])));
    const p = page(found, req.max_results, req.page_token, 200_000);
    const listed: ModelVersion[] = [];
    for (const r of p.items) listed.push(yield* toVersion(q, t, r.m, r.v));
    return {
      ...(listed.length ? { model_versions: listed } : {}),
      ...(p.next ? { next_page_token: p.next } : {}),
    };
  });
}
