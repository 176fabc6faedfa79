/**
 * The MLflow-compatible tracking API on the store (issue 16): the same calls through the dispatcher the HTTP route
 * uses (dispatchMlflow) on SQLite and on PostgreSQL give the same answers (JSON), the same rows and the same ledger
 * (actions, payloads, seq and chain hashes, under one fixed clock): experiments (create, get, search with filters and
 * paging, rename, tag, delete, restore), runs (create, get, rename, delete, restore, search), params and tags (with
 * MLflow's refusals), dataset inputs, the artifact listing, metric history reads (whole and paged) and the registry
 * endpoints (models, versions from a run's artifact, aliases; the refusals of the four-eyes rule). On PostgreSQL,
 * two pools (two web servers) racing where a check precedes a write: one experiment name created many times at once
 * gives one experiment and RESOURCE_ALREADY_EXISTS for the others, and one param logged at once with different values
 * gives one decision and MLflow's refusal for the others (both checked inside the transaction under the ledger lock).
 * Metric points (log-batch, log-metric, a re-sent point with the same or another value), their history, and ending
 * runs (status, end time, the end event with its metric digest; pending interventions rejected at the end) give the
 * same answers, rows (metrics, summaries, rollups, runs, interventions) and ledger on both stores; one run ended many
 * times at once from two servers gets one end event (without the ledger lock in runs/update it gets several: checked
 * by removing it), one point logged at once with different values keeps one value, and points logged while the run
 * ends are either in its end event's digest or refused.
 */
import { describe, expect, it, vi } from "vitest";
import { eq } from "drizzle-orm";
import { exec, pgStore, rows, transact, type Store } from "@/db/store";
import { sha256Hex } from "@/contracts/canonical";
import { dispatchMlflow, type MlflowServices } from "@/server/mlflow/dispatch";
import { JsonText } from "@/server/mlflow/common";
import { describePg } from "./pg-test-env";
import { fixedDateForEachTest, seedPeople, sqliteForSuite, TEST_PEOPLE, twoPgServersForSuite } from "./store-test-env";

/** Holds each authenticated call until `expected` calls have been authenticated, so the race's transactions start together. */
const authBarrier = await vi.hoisted(async () => (await import("./release-together")).releaseTogether());
vi.mock("@/server/auth/tokens", async (importOriginal) => {
  const real = await importOriginal<typeof import("@/server/auth/tokens")>();
  return {
    ...real,
    actorForToken: async (...args: Parameters<typeof real.actorForToken>) => {
      const who = await real.actorForToken(...args);
      await authBarrier.arrive();
      return who;
    },
  };
});

const AT = "2026-12-04T12:00:00.000Z";
const TOKENS = { engineer: "rlt_engineer-token-for-the-store-suite", auditor: "rlt_auditor-token-for-the-store-suite" };

/** The people (users) and a token for the engineer and the auditor, written directly (tokens are tested elsewhere). */
async function seedPeopleAndTokens(store: Store): Promise<void> {
  await seedPeople(store, { at: AT, passwordHash: "x" });
  const { apiTokens } = store.tables;
  await transact(store, function* (tx) {
    for (const [i, [who, token]] of Object.entries(TOKENS).entries())
      yield* exec(
        tx
          .insert(apiTokens)
          .values({
            id: i + 1,
            userId: TEST_PEOPLE[who as keyof typeof TOKENS].id,
            name: who,
            tokenSha256: sha256Hex(token),
            prefix: token.slice(0, 8),
            createdAt: AT,
          })
          .onConflictDoNothing(),
      );
  });
}

type Who = keyof typeof TOKENS;
type Answer = { status: number; body: unknown };

/** One call as the route makes it (a POST's JSON body, a GET's query), answered by the dispatcher. */
function caller(store: Store) {
  const services = { db: store } as unknown as MlflowServices; // the endpoints under test read only db and actor
  return async (
    method: "GET" | "POST" | "PATCH" | "DELETE",
    path: string,
    body: Record<string, unknown> = {},
    who: Who = "engineer",
  ): Promise<Answer> => {
    const query = new URLSearchParams();
    if (method === "GET") for (const [k, v] of Object.entries(body)) for (const x of Array.isArray(v) ? v : [v]) query.append(k, String(x));
    const answer = await dispatchMlflow(services, {
      method,
      path,
      query,
      authorization: `Bearer ${TOKENS[who]}`,
      bodyText: method === "GET" ? null : JSON.stringify(body),
    });
    // get-history answers JSON already written (JsonText): read back as a client parses it
    const read =
      answer.body instanceof JsonText
        ? (JSON.parse(answer.body.parts.map((p) => (typeof p === "string" ? p : Buffer.from(p).toString("utf8"))).join("")) as unknown)
        : answer.body;
    return { status: answer.status, body: read };
  };
}

const idOf = (a: Answer, key: "experiment_id" | "run_id"): string =>
  key === "experiment_id"
    ? (a.body as { experiment_id: string }).experiment_id
    : (a.body as { run: { info: { run_id: string } } }).run.info.run_id;

/** The same calls on either store; returns every answer, the rows they wrote and the ledger, to compare the stores. */
async function scenario(store: Store) {
  await seedPeopleAndTokens(store);
  const call = caller(store);
  const answers: Record<string, Answer> = {};
  const note = async (name: string, a: Promise<Answer>) => (answers[name] = await a);

  // Experiments.
  const iris = idOf(
    await note("create iris", call("POST", "experiments/create", { name: "iris", tags: [{ key: "team", value: "vision" }] })),
    "experiment_id",
  );
  await note("create iris again", call("POST", "experiments/create", { name: "iris" }));
  await note("create as auditor", call("POST", "experiments/create", { name: "audited" }, "auditor"));
  await note("create without name", call("POST", "experiments/create", {}));
  await note("create blank name", call("POST", "experiments/create", { name: "   " }));
  const other = idOf(await note("create other", call("POST", "experiments/create", { name: "other" })), "experiment_id");
  await note("create third", call("POST", "experiments/create", { name: "Zeta" }));
  await note("get", call("GET", "experiments/get", { experiment_id: iris }));
  await note("get unknown", call("GET", "experiments/get", { experiment_id: "999" }));
  await note("get by name", call("GET", "experiments/get-by-name", { experiment_name: "iris" }));
  await note("get by unknown name", call("GET", "experiments/get-by-name", { experiment_name: "nope" }));
  await note("rename", call("POST", "experiments/update", { experiment_id: other, new_name: "renamed" }));
  await note("rename onto iris", call("POST", "experiments/update", { experiment_id: other, new_name: "iris" }));
  await note("tag", call("POST", "experiments/set-experiment-tag", { experiment_id: other, key: "stage", value: "draft" }));
  await note("tag too long", call("POST", "experiments/set-experiment-tag", { experiment_id: other, key: "k".repeat(300), value: "v" }));
  await note("delete", call("POST", "experiments/delete", { experiment_id: other }));
  await note("tag deleted", call("POST", "experiments/set-experiment-tag", { experiment_id: other, key: "stage", value: "x" }));
  await note("delete again", call("POST", "experiments/delete", { experiment_id: other }));
  await note("search active", call("POST", "experiments/search", {}));
  await note("search all by name", call("POST", "experiments/search", { view_type: "ALL", order_by: ["name DESC"] }));
  await note("search deleted", call("POST", "experiments/search", { view_type: "DELETED_ONLY" }));
  await note("search LIKE", call("POST", "experiments/search", { filter: "name LIKE 'i%'", view_type: "ALL" }));
  await note("search ILIKE", call("POST", "experiments/search", { filter: "name ILIKE 'z%'" }));
  await note("search tag", call("POST", "experiments/search", { filter: "tags.team = 'vision'" }));
  await note("search bad filter", call("POST", "experiments/search", { filter: "owner = 'me'" }));
  const page1 = await note(
    "search page 1",
    call("POST", "experiments/search", { max_results: 1, order_by: ["name ASC"], view_type: "ALL" }),
  );
  const token1 = (page1.body as { next_page_token: string }).next_page_token;
  const page2 = await note(
    "search page 2",
    call("POST", "experiments/search", { max_results: 1, order_by: ["name ASC"], view_type: "ALL", page_token: token1 }),
  );
  await note(
    "search page 3",
    call("POST", "experiments/search", {
      max_results: 1,
      order_by: ["name ASC"],
      view_type: "ALL",
      page_token: (page2.body as { next_page_token: string }).next_page_token,
    }),
  );
  await note("search bad page token", call("POST", "experiments/search", { page_token: "!!" }));
  await note("restore", call("POST", "experiments/restore", { experiment_id: other }));
  await note("get restored", call("GET", "experiments/get", { experiment_id: other }));

  // Runs, params, tags.
  const tags = [{ key: "runledger.rationale", value: "a smaller learning rate: the last run diverged" }];
  const run1 = idOf(
    await note("create run", call("POST", "runs/create", { experiment_id: iris, run_name: "lr-0.01", start_time: 1764849600000, tags })),
    "run_id",
  );
  const run2 = idOf(await note("create run in Default", call("POST", "runs/create", { user_id: "script" })), "run_id");
  const run3 = idOf(await note("create unnamed run", call("POST", "runs/create", { experiment_id: iris })), "run_id");
  await note(
    "create run name mismatch",
    call("POST", "runs/create", { experiment_id: iris, run_name: "a", tags: [{ key: "mlflow.runName", value: "b" }] }),
  );
  await note("create run unknown experiment", call("POST", "runs/create", { experiment_id: "999" }));
  await note("create run as auditor", call("POST", "runs/create", { experiment_id: iris }, "auditor"));
  await note("log param", call("POST", "runs/log-parameter", { run_id: run1, key: "lr", value: "0.01" }));
  await note("log same param", call("POST", "runs/log-parameter", { run_id: run1, key: "lr", value: "0.01" }));
  await note("log other value", call("POST", "runs/log-parameter", { run_id: run1, key: "lr", value: "0.1" }));
  await note("log param bad key", call("POST", "runs/log-parameter", { run_id: run1, key: "a*b", value: "1" }));
  await note("log param unknown run", call("POST", "runs/log-parameter", { run_id: "999", key: "lr", value: "1" }));
  await note("log param no run", call("POST", "runs/log-parameter", { key: "lr", value: "1" }));
  await note(
    "log batch",
    call("POST", "runs/log-batch", {
      run_id: run1,
      params: [
        { key: "epochs", value: "5" },
        { key: "lr", value: "0.01" },
      ],
      tags: [
        { key: "model", value: "mlp" },
        { key: "runledger.rationale", value: "five epochs are enough" },
      ],
    }),
  );
  await note(
    "log batch duplicate keys",
    call("POST", "runs/log-batch", {
      run_id: run3,
      params: [
        { key: "a", value: "1" },
        { key: "a", value: "2" },
      ],
    }),
  );
  await note(
    "log batch too many params",
    call("POST", "runs/log-batch", { run_id: run3, params: Array.from({ length: 101 }, (_, i) => ({ key: `p${i}`, value: "1" })) }),
  );
  await note("log param on run 3", call("POST", "runs/log-parameter", { run_id: run3, key: "lr", value: "0.1" }));
  await note("set tag", call("POST", "runs/set-tag", { run_id: run1, key: "note", value: "first" }));
  await note("set tag again", call("POST", "runs/set-tag", { run_id: run1, key: "note", value: "second" }));
  await note("rename by tag", call("POST", "runs/set-tag", { run_id: run3, key: "mlflow.runName", value: "named by tag" }));
  await note("delete tag", call("POST", "runs/delete-tag", { run_id: run1, key: "model" }));
  await note("delete unknown tag", call("POST", "runs/delete-tag", { run_id: run1, key: "model" }));
  await note("update name", call("POST", "runs/update", { run_id: run1, run_name: "lr-0.01-renamed" }));
  await note("update RUNNING", call("POST", "runs/update", { run_id: run1, status: "RUNNING" }));
  await note("update SCHEDULED", call("POST", "runs/update", { run_id: run1, status: "SCHEDULED" }));
  await note("get run", call("GET", "runs/get", { run_id: run1 }));
  await note("get unknown run", call("GET", "runs/get", { run_id: "999" }));
  await note("delete run", call("POST", "runs/delete", { run_id: run2 }));
  await note("log to deleted run", call("POST", "runs/set-tag", { run_id: run2, key: "x", value: "y" }));
  await note("get deleted run", call("GET", "runs/get", { run_id: run2 }));
  await note("restore run", call("POST", "runs/restore", { run_id: run2 }));
  const search = (name: string, body: Record<string, unknown>) =>
    note(name, call("POST", "runs/search", { experiment_ids: [iris], ...body }));
  await search("search runs", {});
  await search("search runs by param", { filter: "params.lr = '0.01'" });
  await search("search runs by param LIKE", { filter: "params.lr LIKE '0.%' AND tags.note = 'second'" });
  await search("search runs by name ILIKE", { filter: "attributes.run_name ILIKE '%RENAMED'" });
  await search("search runs by status", { filter: "attributes.status = 'RUNNING'", order_by: ["params.lr DESC", "attributes.run_name"] });
  await search("search runs by tag name", { order_by: ["tags.mlflow.runName ASC"] });
  const runsPage1 = await search("search runs page 1", { max_results: 1, order_by: ["attributes.run_name"] });
  await search("search runs page 2", {
    max_results: 1,
    order_by: ["attributes.run_name"],
    page_token: (runsPage1.body as { next_page_token: string }).next_page_token,
  });
  await search("search runs bad filter", { filter: "params.lr > 1" });
  await search("search runs bad entity", { filter: "things.x = '1'" });
  await note("search runs across experiments", call("POST", "runs/search", { experiment_ids: [iris, "0"], run_view_type: "ALL" }));

  // Dataset inputs; the artifact listing and the metric history over files and points written directly (their writes,
  // the artifact proxy's upload and the metric insert, are not ported here).
  const training = { name: "iris", digest: "abc123", source_type: "local", source: "/data/iris.csv", schema: '{"columns":4}' };
  const inputs = [
    { tags: [{ key: "mlflow.data.context", value: "training" }], dataset: training },
    { dataset: { name: "iris-val", digest: "def456", source_type: "local", source: "/data/val.csv" } },
  ];
  await note("log inputs", call("POST", "runs/log-inputs", { run_id: run1, datasets: inputs }));
  await note("log the same input", call("POST", "runs/log-inputs", { run_id: run1, datasets: [{ dataset: training }] }));
  await note(
    "log input name too long",
    call("POST", "runs/log-inputs", { run_id: run1, datasets: [{ dataset: { ...training, name: "n".repeat(10_000) } }] }),
  );
  await note("log inputs as auditor", call("POST", "runs/log-inputs", { run_id: run1, datasets: inputs }, "auditor"));
  await note("get run with inputs", call("GET", "runs/get", { run_id: run1 }));
  await writeFilesAndPoints(store, Number(run1));
  await note("list artifacts", call("GET", "artifacts/list", { run_id: run1 }));
  await note("list artifacts of a directory", call("GET", "artifacts/list", { run_id: run1, path: "model" }));
  await note("list artifacts bad path", call("GET", "artifacts/list", { run_id: run1, path: "../x" }));
  await note("list artifacts unknown run", call("GET", "artifacts/list", { run_id: "999" }));
  await note("history", call("GET", "metrics/get-history", { run_id: run1, metric_key: "loss" }));
  const history1 = await note("history page 1", call("GET", "metrics/get-history", { run_id: run1, metric_key: "loss", max_results: 2 }));
  const historyToken = (history1.body as { next_page_token: string }).next_page_token;
  await note(
    "history page 2",
    call("GET", "metrics/get-history", { run_id: run1, metric_key: "loss", max_results: 2, page_token: historyToken }),
  );
  await note("history of another key", call("GET", "metrics/get-history", { run_id: run1, metric_key: "val/loss" }));
  await note("history of an unknown key", call("GET", "metrics/get-history", { run_id: run1, metric_key: "nope" }));
  await note("history of an unknown run", call("GET", "metrics/get-history", { run_id: "999", metric_key: "loss" }));
  await note("history bad max_results", call("GET", "metrics/get-history", { run_id: run1, metric_key: "loss", max_results: 0 }));
  // The registry: a model, versions registered from an artifact of a FINISHED run (ended directly: ending a run is not
  // on PostgreSQL yet), aliases. The test services carry no signing keys, so no audit checkpoint follows an alias move
  // on either store (checkpoints are the audit domain's).
  const model = { name: "iris-mlp" };
  await note("create model", call("POST", "registered-models/create", { ...model, description: "an MLP for iris" }));
  await note("create model again", call("POST", "registered-models/create", model));
  await note("create model bad name", call("POST", "registered-models/create", { name: "a b/c" }));
  await note("create model with tags", call("POST", "registered-models/create", { name: "tagged", tags: [{ key: "k", value: "v" }] }));
  await note("create model as auditor", call("POST", "registered-models/create", { name: "audited" }, "auditor"));
  await note("create second model", call("POST", "registered-models/create", { name: "Iris-cnn" }));
  await note("update model", call("PATCH", "registered-models/update", { ...model, description: "a small MLP for iris" }));
  await note("update model unchanged", call("PATCH", "registered-models/update", { ...model, description: "a small MLP for iris" }));
  await note("get unknown model", call("GET", "registered-models/get", { name: "nope" }));
  await note("delete model", call("DELETE", "registered-models/delete", model));
  await endRunDirectly(store, Number(run1));
  const source = `runs:/${run1}/model/weights.bin`;
  await note("create version", call("POST", "model-versions/create", { ...model, source, run_id: run1 }));
  await note("create version again", call("POST", "model-versions/create", { ...model, source }));
  await note("create version of a directory", call("POST", "model-versions/create", { ...model, source: `runs:/${run1}/model` }));
  await note("create version of an unlogged file", call("POST", "model-versions/create", { ...model, source: `runs:/${run3}/x.bin` }));
  await note("create version other run_id", call("POST", "model-versions/create", { ...model, source, run_id: run3 }));
  await note(
    "create version proxy source",
    call("POST", "model-versions/create", { name: "Iris-cnn", source: `mlflow-artifacts:/${iris}/${run1}/artifacts/notes.txt` }),
  );
  await note("set alias", call("POST", "registered-models/alias", { ...model, alias: "champion", version: "1" }));
  await note("set alias again", call("POST", "registered-models/alias", { ...model, alias: "champion", version: "1" }));
  await note("set alias to 2", call("POST", "registered-models/alias", { ...model, alias: "challenger", version: "2" }));
  await note("set production", call("POST", "registered-models/alias", { ...model, alias: "production", version: "1" }));
  await note("set alias unknown version", call("POST", "registered-models/alias", { ...model, alias: "x", version: "9" }));
  await note("get by alias", call("GET", "registered-models/alias", { ...model, alias: "champion" }));
  await note("delete alias", call("DELETE", "registered-models/alias", { ...model, alias: "challenger" }));
  await note("get by deleted alias", call("GET", "registered-models/alias", { ...model, alias: "challenger" }));
  await note("get model", call("GET", "registered-models/get", model));
  await note("search models", call("GET", "registered-models/search", { filter: "name ILIKE 'iris%'", order_by: "name DESC" }));
  await note("search models paged", call("GET", "registered-models/search", { max_results: 1 }));
  await note("get version", call("GET", "model-versions/get", { ...model, version: "2" }));
  await note("get unknown version", call("GET", "model-versions/get", { ...model, version: "7" }));
  await note("download uri", call("GET", "model-versions/get-download-uri", { ...model, version: "1" }));
  await note("search versions by run", call("GET", "model-versions/search", { filter: `run_id = '${run1}'` }));
  await note("update version description", call("PATCH", "model-versions/update", { ...model, version: "1", description: "x" }));
  await note("delete version", call("DELETE", "model-versions/delete", { ...model, version: "1" }));

  // Metric points through the API (MLflow's answers to a point sent again), their history; ending runs (the end
  // event's metric digest; the pending interventions of the run rejected at its end).
  const run4 = idOf(
    await note("create metrics run", call("POST", "runs/create", { experiment_id: iris, run_name: "metrics", start_time: 1764849600000 })),
    "run_id",
  );
  const points = (key: string, steps: number[], value: (step: number) => number) =>
    steps.map((step) => ({ key, value: value(step), timestamp: 1764849600000 + step, step }));
  const firstBatch = {
    run_id: run4,
    metrics: [
      ...points("val/acc", [0, 1, 2, 1030], (s) => s / 10),
      ...points("loss", [2, 0, 1, 1030, 1025], (s) => 1 / (s + 1)),
      { key: "loss", value: 1 / 3, timestamp: 1, step: 2 }, // the same point twice in one call: kept once
    ],
    params: [{ key: "lr", value: "0.001" }],
  };
  await note("log batch of points", call("POST", "runs/log-batch", firstBatch));
  await note("log metric", call("POST", "runs/log-metric", { run_id: run4, key: "loss", value: 0.2, timestamp: 1764849600003, step: 3 }));
  await note(
    "log metric again",
    call("POST", "runs/log-metric", { run_id: run4, key: "loss", value: 0.2, timestamp: 1764849600009, step: 3 }),
  );
  await note("log metric other value", call("POST", "runs/log-metric", { run_id: run4, key: "loss", value: 0.25, timestamp: 1, step: 3 }));
  await note(
    "log batch with a changed point",
    call("POST", "runs/log-batch", {
      run_id: run4,
      metrics: [
        { key: "loss", value: 0.1, timestamp: 1, step: 4 },
        { key: "val/acc", value: 9, timestamp: 1, step: 1 },
      ],
    }),
  );
  await note("log batch again", call("POST", "runs/log-batch", firstBatch));
  await note("log metric NaN", call("POST", "runs/log-metric", { run_id: run4, key: "loss", value: "NaN", timestamp: 1, step: 9 }));
  await note("log metric bad key", call("POST", "runs/log-metric", { run_id: run4, key: "a*b", value: 1, timestamp: 1, step: 9 }));
  await note("log metric unknown run", call("POST", "runs/log-metric", { run_id: "999", key: "loss", value: 1, timestamp: 1 }));
  await note("log metric as auditor", call("POST", "runs/log-metric", { run_id: run4, key: "loss", value: 1, timestamp: 1 }, "auditor"));
  await note("history of logged points", call("GET", "metrics/get-history", { run_id: run4, metric_key: "loss" }));
  await note("history of logged points paged", call("GET", "metrics/get-history", { run_id: run4, metric_key: "val/acc", max_results: 3 }));
  await note("get run with metrics", call("GET", "runs/get", { run_id: run4 }));
  await requestInterventionsDirectly(store, Number(run4), Number(run3));
  await note("end run", call("POST", "runs/update", { run_id: run4, status: "FINISHED", end_time: 1764853200000 }));
  await note("end run again", call("POST", "runs/update", { run_id: run4, status: "FAILED" }));
  await note(
    "log metric to an ended run",
    call("POST", "runs/log-metric", { run_id: run4, key: "loss", value: 1, timestamp: 1, step: 99 }),
  );
  await note("run again", call("POST", "runs/update", { run_id: run4, status: "RUNNING" }));
  await note(
    "log metric after running again",
    call("POST", "runs/log-metric", { run_id: run4, key: "loss", value: 0.05, timestamp: 1, step: 5 }),
  );
  await note("end run as FAILED", call("POST", "runs/update", { run_id: run4, status: "FAILED" }));
  await note("kill run with a pending intervention", call("POST", "runs/update", { run_id: run3, status: "KILLED", run_name: "killed" }));
  await note("get ended run", call("GET", "runs/get", { run_id: run4 }));
  return { answers, stored: await storedRows(store) };
}

/** Ends a run as a script's runs/update FINISHED would set it (its end event is not the registry's concern here). */
async function endRunDirectly(store: Store, runId: number): Promise<void> {
  const { runs } = store.tables;
  await transact(store, (tx) => exec(tx.update(runs).set({ status: "completed", finishedAt: AT }).where(eq(runs.id, runId))));
}

/** Pending interventions (a "set" and a "stop" on one run, a "pause" on another), written directly (pilot.ts is SQLite only). */
async function requestInterventionsDirectly(store: Store, runId: number, otherRunId: number): Promise<void> {
  const { runInterventions } = store.tables;
  const pending = (id: number, run: number, kind: "set" | "stop" | "pause", changesJson = "[]") => ({
    id,
    runId: run,
    kind,
    changesJson,
    rationale: `${kind}: the loss plateaued`,
    requestedBy: TEST_PEOPLE.engineer.id,
    requestedAt: AT,
  });
  await transact(store, (tx) =>
    exec(
      tx
        .insert(runInterventions)
        .values([
          pending(1, runId, "set", '[{"newValue":"0.0005","oldValue":"0.001","path":"lr"}]'),
          pending(2, runId, "stop"),
          pending(3, otherRunId, "pause"),
        ]),
    ),
  );
}

/** Artifact rows and metric points of a run, written directly (the same rows on either store). */
async function writeFilesAndPoints(store: Store, runId: number): Promise<void> {
  const { metrics, runArtifacts } = store.tables;
  const file = (path: string, bytes: number) => ({
    runId,
    path,
    sha256: sha256Hex(path),
    bytes,
    createdBy: TEST_PEOPLE.engineer.id,
    createdAt: AT,
  });
  const point = (key: string, step: number, value: number) => ({ runId, key, step, epoch: step, value, wallTimeMs: 1764849600000 + step });
  await transact(store, function* (tx) {
    yield* exec(
      tx
        .insert(runArtifacts)
        .values([file("model/weights.bin", 1024), file("model/config.json", 12), file("notes.txt", 3), file("model_card.md", 7)]),
    );
    yield* exec(
      tx
        .insert(metrics)
        .values([
          point("loss", 1, 0.5),
          point("loss", 2, 0.30000000000000004),
          point("loss", 3, 1),
          point("loss", 10, 0.125),
          point("val/loss", 1, 2.5),
        ]),
    );
  });
}

/** Every row the API writes, in id (or key) order, and the ledger. */
async function storedRows(store: Store) {
  const t = store.tables;
  return transact(store, function* (tx) {
    return {
      projects: yield* rows(tx.select().from(t.projects).orderBy(t.projects.id)),
      experiments: yield* rows(tx.select().from(t.experiments).orderBy(t.experiments.id)),
      experimentTags: yield* rows(tx.select().from(t.experimentTags).orderBy(t.experimentTags.experimentId, t.experimentTags.key)),
      runs: yield* rows(tx.select().from(t.runs).orderBy(t.runs.id)),
      decisions: yield* rows(tx.select().from(t.decisions).orderBy(t.decisions.id)),
      runTagValues: yield* rows(tx.select().from(t.runTagValues).orderBy(t.runTagValues.runId, t.runTagValues.key)),
      runInputs: yield* rows(tx.select().from(t.runInputs).orderBy(t.runInputs.id)),
      runArtifacts: yield* rows(tx.select().from(t.runArtifacts).orderBy(t.runArtifacts.id)),
      models: yield* rows(tx.select().from(t.models).orderBy(t.models.id)),
      modelVersions: yield* rows(tx.select().from(t.modelVersions).orderBy(t.modelVersions.id)),
      checkpoints: yield* rows(tx.select().from(t.checkpoints).orderBy(t.checkpoints.id)),
      aliasMoves: yield* rows(tx.select().from(t.modelAliasEvents).orderBy(t.modelAliasEvents.id)),
      metrics: yield* rows(tx.select().from(t.metrics).orderBy(t.metrics.runId, t.metrics.key, t.metrics.step)),
      metricSummaries: yield* rows(tx.select().from(t.metricSummaries).orderBy(t.metricSummaries.runId, t.metricSummaries.key)),
      metricRollups: yield* rows(
        tx.select().from(t.metricRollups).orderBy(t.metricRollups.runId, t.metricRollups.key, t.metricRollups.block),
      ),
      interventions: yield* rows(tx.select().from(t.runInterventions).orderBy(t.runInterventions.id)),
      ledger: yield* rows(tx.select().from(t.auditEvents).orderBy(t.auditEvents.seq)),
    };
  });
}

type Outcome = Awaited<ReturnType<typeof scenario>>;
const outcomes: Partial<Record<Store["dialect"], Outcome>> = {};

const codeOf = (a: Answer | undefined) => [a?.status, (a?.body as { error_code?: string }).error_code];

const payloadOf = (e: { payload: string }) => JSON.parse(e.payload) as Record<string, unknown>;

/** What the metric and run-end part of the scenario must give (on either store; the stores are compared after). */
function expectMetricsAndEnds(outcome: Outcome): void {
  const a = outcome.answers;
  for (const ok of [
    "log batch of points",
    "log metric",
    "log metric again",
    "log batch again",
    "end run",
    "run again",
    "end run as FAILED",
  ])
    expect([ok, ...codeOf(a[ok])]).toEqual([ok, 200, undefined]);
  for (const refused of [
    "log metric other value",
    "log batch with a changed point",
    "log metric NaN",
    "log metric bad key",
    "end run again",
  ])
    expect([refused, ...codeOf(a[refused])]).toEqual([refused, 400, "INVALID_PARAMETER_VALUE"]);
  expect((a["log metric other value"]!.body as { message: string }).message).toBe(
    "Metric 'loss' already has the value 0.2 at step 3 of run 4: Runledger keeps one value per step; log 0.25 at another step",
  );
  expect((a["log batch with a changed point"]!.body as { message: string }).message).toMatch(
    /^Metric 'val\/acc' already has the value 0.1 at step 1/,
  );
  expect(codeOf(a["log metric unknown run"])).toEqual([404, "RESOURCE_DOES_NOT_EXIST"]);
  expect(codeOf(a["log metric as auditor"])).toEqual([403, "PERMISSION_DENIED"]);
  expect((a["log metric to an ended run"]!.body as { message: string }).message).toMatch(/^Run 4 has ended \(completed\)/);
  expect(
    (a["history of logged points"]!.body as { metrics: { step: number; value: number }[] }).metrics.map((m) => [m.step, m.value]),
  ).toEqual([
    [0, 1],
    [1, 0.5],
    [2, 1 / 3],
    [3, 0.2],
    [1025, 1 / 1026],
    [1030, 1 / 1031],
  ]);
  expect(a["end run"]!.body).toMatchObject({ run_info: { status: "FINISHED", end_time: 1764853200000 } });
  expect(a["end run as FAILED"]!.body).toMatchObject({ run_info: { status: "FAILED", end_time: Date.parse(AT) } });
  const run4Points = outcome.stored.metrics.filter((m) => m.runId === 4);
  expect(run4Points).toHaveLength(11); // 4 + 5 of the first batch (one point twice), step 3, then step 5 after running again
  expect(run4Points.some((m) => m.key === "loss" && m.step === 4)).toBe(false); // the refused call wrote nothing
  expect(outcome.stored.metricSummaries.filter((m) => m.runId === 4)).toEqual([
    { runId: 4, key: "loss", last: 1 / 1031, lastStep: 1030, min: 1 / 1031, max: 1, count: 7 },
    { runId: 4, key: "val/acc", last: 103, lastStep: 1030, min: 0, max: 103, count: 4 },
  ]);
  expect(outcome.stored.metricRollups.filter((m) => m.runId === 4).map((r) => [r.key, r.block, r.count])).toEqual([
    ["loss", 0, 5],
    ["loss", 1, 2],
    ["val/acc", 0, 3],
    ["val/acc", 1, 1],
  ]);
  const ends = outcome.stored.ledger.filter((e) => ["run.complete", "run.fail", "run.cancel"].includes(e.action) && e.entityId !== "1");
  expect(ends.map((e) => [e.action, e.entityId, payloadOf(e).metricPoints])).toEqual([
    ["run.complete", "4", 10],
    ["run.fail", "4", 11],
    ["run.cancel", "3", 0],
  ]);
  expect(payloadOf(ends[0]!)).toMatchObject({ finishedAt: "2025-12-04T13:00:00.000Z", finalMetrics: { loss: 1 / 1031, "val/acc": 103 } });
  expect(outcome.stored.interventions.map((i) => [i.id, i.status, i.closeReason])).toEqual([
    [1, "rejected", "the run ended (FINISHED) before the script applied it"],
    [2, "rejected", "the run ended (FINISHED) before the script applied it"],
    [3, "rejected", "the run ended (KILLED) before the script applied it"],
  ]);
  expect(outcome.stored.ledger.filter((e) => e.action === "run.interventionRejected").map((e) => e.entityId)).toEqual(["1", "2", "3"]);
}

function behaviourCases(storeOf: () => Store): void {
  fixedDateForEachTest(AT);

  it("answers experiments, runs, params, tags, inputs, artifact listing, history and registry calls with MLflow's shapes and errors, and writes rows and the ledger", async () => {
    const store = storeOf();
    const outcome = await scenario(store);
    outcomes[store.dialect] = outcome;
    const a = outcome.answers;
    expect(codeOf(a["create iris"])).toEqual([200, undefined]);
    expect(codeOf(a["create iris again"])).toEqual([400, "RESOURCE_ALREADY_EXISTS"]);
    expect(codeOf(a["create as auditor"])).toEqual([403, "PERMISSION_DENIED"]);
    expect(codeOf(a["create without name"])).toEqual([400, "INVALID_PARAMETER_VALUE"]);
    expect(codeOf(a["get unknown"])).toEqual([404, "RESOURCE_DOES_NOT_EXIST"]);
    expect(codeOf(a["rename onto iris"])).toEqual([400, "RESOURCE_ALREADY_EXISTS"]);
    expect(codeOf(a["tag deleted"])).toEqual([400, "INVALID_PARAMETER_VALUE"]);
    expect((a["search all by name"]!.body as { experiments: { name: string }[] }).experiments.map((e) => e.name)).toEqual([
      "renamed",
      "iris",
      "Zeta",
    ]);
    expect((a["search page 3"]!.body as { experiments: { name: string }[] }).experiments.map((e) => e.name)).toEqual(["renamed"]);
    expect((a["search LIKE"]!.body as { experiments: { name: string }[] }).experiments.map((e) => e.name)).toEqual(["iris"]);
    expect((a["search ILIKE"]!.body as { experiments: { name: string }[] }).experiments.map((e) => e.name)).toEqual(["Zeta"]);
    expect(codeOf(a["log other value"])).toEqual([400, "INVALID_PARAMETER_VALUE"]);
    expect((a["log other value"]!.body as { message: string }).message).toMatch(/^Changing param values is not allowed/);
    expect(codeOf(a["log param unknown run"])).toEqual([404, "RESOURCE_DOES_NOT_EXIST"]);
    expect(codeOf(a["delete unknown tag"])).toEqual([404, "RESOURCE_DOES_NOT_EXIST"]);
    expect(codeOf(a["log to deleted run"])).toEqual([400, "INVALID_PARAMETER_VALUE"]);
    expect((a["get run"]!.body as { run: { data: unknown } }).run.data).toEqual({
      params: [
        { key: "epochs", value: "5" },
        { key: "lr", value: "0.01" },
      ],
      tags: [
        { key: "mlflow.runName", value: "lr-0.01-renamed" },
        { key: "note", value: "second" },
        { key: "runledger.rationale", value: "five epochs are enough" },
      ],
    });
    expect((a["search runs by param"]!.body as { runs: unknown[] }).runs).toHaveLength(1);
    expect((a["search runs by name ILIKE"]!.body as { runs: unknown[] }).runs).toHaveLength(1);
    expect((a["search runs across experiments"]!.body as { runs: unknown[] }).runs).toHaveLength(2); // "0" is no experiment id here
    expect(codeOf(a["search runs bad filter"])).toEqual([400, "INVALID_PARAMETER_VALUE"]);
    expect(outcome.stored.decisions.map((d) => [d.runId, d.path, d.newValueJson, d.rationale])).toEqual([
      [1, "lr", '"0.01"', "a smaller learning rate: the last run diverged"],
      [1, "epochs", '"5"', "five epochs are enough"],
      [3, "lr", '"0.1"', 'logged through the MLflow API without a "runledger.rationale" tag'],
      [4, "lr", '"0.001"', 'logged through the MLflow API without a "runledger.rationale" tag'],
    ]);
    expect(outcome.stored.ledger.map((e) => e.seq)).toEqual(outcome.stored.ledger.map((_, i) => i + 1));
    expect(codeOf(a["log inputs"])).toEqual([200, undefined]);
    expect(codeOf(a["log input name too long"])).toEqual([400, "INVALID_PARAMETER_VALUE"]);
    expect(codeOf(a["log inputs as auditor"])).toEqual([403, "PERMISSION_DENIED"]);
    expect(outcome.stored.runInputs.map((i) => [i.name, i.context])).toEqual([
      ["iris", "training"],
      ["iris-val", null],
    ]);
    expect(outcome.stored.ledger.filter((e) => e.action === "run.logInputs")).toHaveLength(1);
    expect(a["list artifacts"]!.body).toMatchObject({
      files: [
        { path: "model", is_dir: true },
        { path: "model_card.md", is_dir: false, file_size: 7 },
        { path: "notes.txt", is_dir: false, file_size: 3 },
      ],
    });
    expect((a["list artifacts of a directory"]!.body as { files: { path: string }[] }).files.map((f) => f.path)).toEqual([
      "model/config.json",
      "model/weights.bin",
    ]);
    expect(codeOf(a["list artifacts bad path"])).toEqual([400, "INVALID_PARAMETER_VALUE"]);
    expect((a["history"]!.body as { metrics: { step: number; value: number }[] }).metrics.map((m) => [m.step, m.value])).toEqual([
      [1, 0.5],
      [2, 0.30000000000000004],
      [3, 1],
      [10, 0.125],
    ]);
    expect((a["history page 2"]!.body as { metrics: { step: number }[] }).metrics.map((m) => m.step)).toEqual([3, 10]);
    expect(a["history page 2"]!.body).not.toHaveProperty("next_page_token");
    expect(a["history of an unknown key"]!.body).toEqual({});
    expect(codeOf(a["history of an unknown run"])).toEqual([404, "RESOURCE_DOES_NOT_EXIST"]);
    expect(codeOf(a["history bad max_results"])).toEqual([400, "INVALID_PARAMETER_VALUE"]);
    expect(codeOf(a["create model"])).toEqual([200, undefined]);
    expect(codeOf(a["create model again"])).toEqual([400, "RESOURCE_ALREADY_EXISTS"]);
    expect(codeOf(a["create model as auditor"])).toEqual([403, "PERMISSION_DENIED"]);
    expect(codeOf(a["delete model"])).toEqual([403, "PERMISSION_DENIED"]);
    expect(codeOf(a["create version of a directory"])).toEqual([400, "INVALID_PARAMETER_VALUE"]);
    expect(codeOf(a["create version of an unlogged file"])).toEqual([404, "RESOURCE_DOES_NOT_EXIST"]);
    expect(codeOf(a["set production"])).toEqual([403, "PERMISSION_DENIED"]);
    expect(codeOf(a["get by deleted alias"])).toEqual([404, "RESOURCE_DOES_NOT_EXIST"]);
    expect(a["get by alias"]!.body).toMatchObject({ model_version: { name: "iris-mlp", version: "1", aliases: ["champion"] } });
    expect(a["get model"]!.body).toMatchObject({
      registered_model: { description: "a small MLP for iris", aliases: [{ alias: "champion", version: "1" }] },
    });
    expect(a["download uri"]!.body).toEqual({ artifact_uri: "mlflow-artifacts:/1/1/artifacts/model/weights.bin" });
    expect(outcome.stored.modelVersions.map((v) => [v.modelId, v.version, v.checkpointId])).toEqual([
      [1, 1, 1],
      [1, 2, 1],
      [2, 1, 2],
    ]);
    expect(outcome.stored.aliasMoves.map((m) => [m.alias, m.modelVersionId])).toEqual([
      ["champion", 1],
      ["challenger", 2],
      ["challenger", null],
    ]);
    expectMetricsAndEnds(outcome);
  });
}

describe("the MLflow API on SQLite", () => {
  const sqlite = sqliteForSuite("rl-mlflow-store-");
  behaviourCases(() => sqlite.store());
});

describePg("the MLflow API on PostgreSQL", () => {
  const pg = twoPgServersForSuite();
  behaviourCases(() => pgStore(pg.a()));

  it("gives the same answers, rows and ledger rows (payloads, seq, chain hashes) as SQLite", () => {
    expect(outcomes.sqlite).toBeDefined();
    expect(outcomes.pg?.answers).toEqual(outcomes.sqlite!.answers);
    expect(outcomes.pg?.stored).toEqual(outcomes.sqlite!.stored);
  });

  it("two servers racing: one run ended many times at once gets one end event (each call answered FINISHED); one point logged at once with different values keeps one", async () => {
    const servers = [pgStore(pg.a()), pgStore(pg.b())];
    const calls = servers.map(caller);
    await seedPeopleAndTokens(servers[0]!);
    const at = (i: number) => calls[i % 2]!;
    const experimentId = idOf(await at(0)("POST", "experiments/create", { name: "raced ends" }), "experiment_id");
    const run = idOf(await at(1)("POST", "runs/create", { experiment_id: experimentId }), "run_id");
    await at(0)("POST", "runs/log-metric", { run_id: run, key: "loss", value: 1, timestamp: 1, step: 0 });

    authBarrier.arm(12);
    const points = await Promise.all(
      Array.from({ length: 12 }, (_, i) =>
        at(i)("POST", "runs/log-metric", { run_id: run, key: "loss", value: i / 10, timestamp: 1, step: 1 }),
      ),
    );
    authBarrier.arm(0);
    expect(points.map((c) => codeOf(c).join(" ")).sort()).toEqual(["200 ", ...Array<string>(11).fill("400 INVALID_PARAMETER_VALUE")]);
    const { metrics, metricSummaries } = servers[0]!.tables;
    const stored = await transact(servers[1]!, (tx) =>
      rows(
        tx
          .select()
          .from(metrics)
          .where(eq(metrics.runId, Number(run))),
      ),
    );
    expect(stored).toHaveLength(2);
    const summary = await transact(servers[0]!, (tx) =>
      rows(
        tx
          .select()
          .from(metricSummaries)
          .where(eq(metricSummaries.runId, Number(run))),
      ),
    );
    expect(summary.map((s) => s.count)).toEqual([2]);

    authBarrier.arm(12);
    const ended = await Promise.all(
      Array.from({ length: 12 }, (_, i) => at(i)("POST", "runs/update", { run_id: run, status: "FINISHED" })),
    );
    authBarrier.arm(0);
    // MLflow's answer to FINISHED for a FINISHED run is the run (no change); only the first call ends it.
    expect(ended.map((c) => codeOf(c).join(" "))).toEqual(Array<string>(12).fill("200 "));
    const ledger = (await storedRows(servers[1]!)).ledger;
    const endEvents = ledger.filter((e) => e.entityId === run && ["run.complete", "run.cancel", "run.fail"].includes(e.action));
    expect(endEvents).toHaveLength(1);
    expect(payloadOf(endEvents[0]!).metricPoints).toBe(2);
    expect(ledger.map((e) => e.seq)).toEqual(ledger.map((_, i) => i + 1));

    // Points logged while the run ends: each call lands wholly before the end (in its digest) or is refused after it.
    const racedRun = idOf(await at(0)("POST", "runs/create", { experiment_id: experimentId }), "run_id");
    authBarrier.arm(12);
    const mixed = await Promise.all(
      Array.from({ length: 12 }, (_, i) =>
        i === 5
          ? at(i)("POST", "runs/update", { run_id: racedRun, status: "FINISHED" })
          : at(i)("POST", "runs/log-batch", {
              run_id: racedRun,
              metrics: Array.from({ length: 50 }, (_, j) => ({ key: `m${j % 5}`, value: j, timestamp: 1, step: i * 100 + j })),
            }),
      ),
    );
    authBarrier.arm(0);
    expect(codeOf(mixed[5])).toEqual([200, undefined]);
    const afterEnd = mixed.filter((c) => c.status === 400);
    expect(afterEnd.every((c) => /^Run \d+ has ended \(completed\)/.test((c.body as { message: string }).message))).toBe(true);
    const racedPoints = await transact(servers[0]!, (tx) =>
      rows(
        tx
          .select()
          .from(metrics)
          .where(eq(metrics.runId, Number(racedRun))),
      ),
    );
    expect(racedPoints).toHaveLength((11 - afterEnd.length) * 50);
    const racedEnd = (await storedRows(servers[1]!)).ledger.filter((e) => e.entityId === racedRun && e.action === "run.complete");
    expect(racedEnd.map((e) => payloadOf(e).metricPoints)).toEqual([racedPoints.length]);
  });

  it("two servers racing: one experiment (or registered model) name created at once gives one; one param logged at once with different values gives one decision", async () => {
    const servers = [pgStore(pg.a()), pgStore(pg.b())];
    const calls = servers.map(caller);
    await seedPeopleAndTokens(servers[0]!);
    const { decisions, experiments } = servers[0]!.tables;
    const at = (i: number) => calls[i % 2]!;

    authBarrier.arm(12);
    const created = await Promise.all(Array.from({ length: 12 }, (_, i) => at(i)("POST", "experiments/create", { name: "raced" })));
    authBarrier.arm(0);
    expect(created.map((c) => c.status).sort()).toEqual([200, ...Array<number>(11).fill(400)]);
    expect(created.filter((c) => c.status === 400).every((c) => codeOf(c)[1] === "RESOURCE_ALREADY_EXISTS")).toBe(true);
    const named = await transact(servers[1]!, (tx) => rows(tx.select().from(experiments)));
    expect(named.filter((e) => e.name === "raced")).toHaveLength(1);

    const experimentId = idOf(
      created.find((c) => c.status === 200)!,
      "experiment_id",
    );
    const run = idOf(await at(0)("POST", "runs/create", { experiment_id: experimentId }), "run_id");
    authBarrier.arm(12);
    const logged = await Promise.all(
      Array.from({ length: 12 }, (_, i) => at(i)("POST", "runs/log-parameter", { run_id: run, key: "lr", value: `0.${i}` })),
    );
    authBarrier.arm(0);
    expect(logged.map((c) => c.status).sort()).toEqual([200, ...Array<number>(11).fill(400)]);
    expect(
      logged
        .filter((c) => c.status === 400)
        .every((c) => /^Changing param values is not allowed/.test((c.body as { message: string }).message)),
    ).toBe(true);
    const params = await transact(servers[0]!, (tx) => rows(tx.select().from(decisions)));
    expect(params.filter((d) => d.runId === Number(run))).toHaveLength(1);

    authBarrier.arm(12);
    const models = await Promise.all(
      Array.from({ length: 12 }, (_, i) => at(i)("POST", "registered-models/create", { name: "raced-model" })),
    );
    authBarrier.arm(0);
    expect(models.map((c) => codeOf(c).join(" ")).sort()).toEqual(["200 ", ...Array<string>(11).fill("400 RESOURCE_ALREADY_EXISTS")]);

    const seqs = (await storedRows(servers[1]!)).ledger.map((e) => e.seq);
    expect(seqs).toEqual(seqs.map((_, i) => i + 1));
  });
});
