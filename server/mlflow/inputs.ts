/**
 * runs/log-inputs: the datasets a script declares as inputs of its run (name, digest, source, schema, profile, input
 * tags; the mlflow.data.context tag says training, validation, …). Stored as references in run_inputs (not the
 * bytes), with MLflow's size limits; the same (name, digest) again on a run changes nothing, as in MLflow. One
 * run.logInputs event per call names each new row by id with the sha256 of its canonical record (the content check
 * recomputes it). Lineage: shown with the run; joined to the lineage graph when API runs become registrable.
 */
import { and, eq } from "drizzle-orm";
import { z } from "zod";
import { PG_LOCK_KEYS } from "@/db/pg-client";
import { asStore, row, transact } from "@/db/store";
import { appendEvent } from "@/server/audit/ledger-pg";
import { now } from "@/server/app-context/service-context";
import { canonicalJson } from "@/contracts/canonical";
import { DATASET_CONTEXT_TAG, MLFLOW_LIMITS, type MlflowEndpoints } from "@/contracts/mlflow/types";
import { runInputRecordSha256 } from "@/server/audit/content/records";
import { invalidParam } from "./errors";
import { idField, parseRequest, requireWriter, type MlflowStoreCtx } from "./common";
import { activeApiRunIn } from "./runs";

const L = MLFLOW_LIMITS;
const datasetInput = z.object({
  tags: z.array(z.object({ key: z.string(), value: z.string().default("") })).default([]),
  dataset: z.object({
    name: z.string(),
    digest: z.string(),
    source_type: z.string(),
    source: z.string(),
    schema: z.string().optional(),
    profile: z.string().optional(),
  }),
});

function limit(what: string, value: string, max: number) {
  if (value.length > max)
    invalidParam(`${what} '${value.slice(0, 40)}…' had length ${value.length}, which exceeded length limit of ${max}`);
}

/**
 * On the store (issue 16): the run and the known (name, digest) pairs are read inside the transaction, under the
 * ledger lock on PostgreSQL, so the same input logged at once from two servers is stored once.
 */
export async function logInputs(ctx: MlflowStoreCtx, body: unknown): Promise<MlflowEndpoints["runs/log-inputs"]["res"]> {
  const input = parseRequest(z.object({ run_id: idField, datasets: z.array(datasetInput).default([]) }), body);
  for (const { dataset: d, tags } of input.datasets) {
    if (!d.name) invalidParam("Missing value for required parameter 'datasets.dataset.name'.");
    if (!d.digest) invalidParam("Missing value for required parameter 'datasets.dataset.digest'.");
    limit("Dataset name", d.name, L.maxDatasetNameSize);
    limit("Dataset digest", d.digest, L.maxDatasetDigestSize);
    limit("Dataset source", d.source, L.maxDatasetSourceSize);
    if (d.schema !== undefined) limit("Dataset schema", d.schema, L.maxDatasetSchemaSize);
    if (d.profile !== undefined) limit("Dataset profile", d.profile, L.maxDatasetProfileSize);
    for (const t of tags) {
      limit("Input tag key", t.key, L.maxInputTagKeySize);
      limit("Input tag value", t.value, L.maxInputTagValueSize);
    }
  }
  requireWriter(ctx, "log inputs of runs");
  const store = asStore(ctx.db);
  const { runInputs } = store.tables;
  await transact(
    store,
    function* (tx) {
      const run = yield* activeApiRunIn(tx, store.tables, input.run_id);
      const at = now();
      const refs: { id: number; name: string; digest: string; context: string | null; sha256: string }[] = [];
      for (const { dataset: d, tags } of input.datasets) {
        const known = yield* row(
          tx
            .select({ id: runInputs.id })
            .from(runInputs)
            .where(and(eq(runInputs.runId, run.id), eq(runInputs.name, d.name), eq(runInputs.digest, d.digest)))
            .limit(1),
        );
        if (known || refs.some((r) => r.name === d.name && r.digest === d.digest)) continue;
        const created = (yield* row(
          tx
            .insert(runInputs)
            .values({
              runId: run.id,
              name: d.name,
              digest: d.digest,
              sourceType: d.source_type,
              source: d.source,
              schemaText: d.schema ?? null,
              profile: d.profile ?? null,
              context: tags.find((t) => t.key === DATASET_CONTEXT_TAG)?.value ?? null,
              tagsJson: canonicalJson(tags),
              createdBy: ctx.actor.id,
              createdAt: at,
            })
            .returning(),
        ))!;
        refs.push({
          id: created.id,
          name: created.name,
          digest: created.digest,
          context: created.context,
          sha256: runInputRecordSha256(created),
        });
      }
      if (refs.length === 0) return;
      yield* appendEvent({ actor: ctx.actor, action: "run.logInputs", entityType: "run", entityId: run.id, payload: { inputs: refs } });
    },
    { pgLock: PG_LOCK_KEYS.ledger },
  );
  return {};
}
