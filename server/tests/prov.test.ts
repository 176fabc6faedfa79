/**
 * Lineage and its PROV-JSON export: the graph chains through a fork and a fine-tune back to the raw dataset; the
 * export is a well-formed PROV-JSON document (prefix, entity, activity, agent and relation maps that only refer to
 * declared records); each run's trainer agent and the graph's Software detail name the build of Runledger that
 * trained it (version, and commit when recorded) and say when it was not recorded; and the CLI commands `train`,
 * `register` and `export-prov` work on a temporary data directory.
 */
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { spawnSync } from "node:child_process";
import fs from "node:fs";
import os from "node:os";
import path from "node:path";
import { eq } from "drizzle-orm";
import { auditEvents, checkpoints, modelVersions, runs } from "@/db/schema";
import { openDatabase } from "@/db/client";
import { validateProvJson, provJsonSchema } from "@/server/lineage/prov-schema";
import { lineageToProvJson, type ProvJson } from "@/server/lineage/prov";
import { collectLineage, recordedSoftware, type LineageFacts } from "@/server/lineage/collect";
import { lineageGraph, softwareText } from "@/server/lineage/graph";
import pkg from "@/package.json";
import { createTestApp, irisConfig, type TestApp } from "./test-app";

const types = (doc: ProvJson, map: "entity" | "activity" | "agent") =>
  Object.values(doc[map]).map((a) => (a["prov:type"] as { $: string }).$);

describe("lineage through a fork and a fine-tune", () => {
  let app: TestApp;
  let doc: ProvJson;
  let baseId: number, forkId: number, tuneId: number;

  beforeAll(async () => {
    app = createTestApp();
    const eng = app.as("engineer");
    baseId = (await eng.runs.create({ experimentId: app.experimentId, config: irisConfig(), rationale: "baseline" })).id;
    await app.orchestrator.waitFor(baseId);
    // The baseline as a run started before Runledger recorded its version: no appVersion, its commit "unknown"
    // (orchestrator.ts before efe10fb). The record is what the lineage reads; it must not turn into a guess.
    const recorded = JSON.parse(app.db.select().from(runs).where(eq(runs.id, baseId)).get()!.environmentJson!) as Record<string, unknown>;
    const { appVersion: _v, appCommit: _c, ...older } = recorded;
    app.db
      .update(runs)
      .set({ environmentJson: JSON.stringify({ ...older, appCommit: "unknown" }) })
      .where(eq(runs.id, baseId))
      .run();
    const base = await eng.runs.get({ id: baseId });
    forkId = (
      await eng.runs.create({
        experimentId: app.experimentId,
        config: { ...base.config, training: { ...base.config.training, batchSize: 8 } },
        rationale: "smaller batches",
        changeRationales: { "training.batchSize": "noisier gradients may help on 100 rows" },
        origin: "fork",
        parentRunId: baseId,
      })
    ).id;
    await app.orchestrator.waitFor(forkId);
    const fork = await eng.runs.get({ id: forkId });
    const best = fork.checkpoints.find((c) => c.isBest)!;
    tuneId = (
      await eng.runs.create({
        experimentId: app.experimentId,
        config: {
          ...fork.config,
          training: { ...fork.config.training, epochs: 3, learningRate: 0.005 },
          fineTune: { parentCheckpointId: String(best.id), freezeLayers: 1, replaceHead: false },
        },
        rationale: "fine-tune the fork gently",
      })
    ).id;
    await app.orchestrator.waitFor(tuneId);
    expect((await eng.runs.get({ id: tuneId })).status).toBe("completed");
    await eng.models.register({ runId: tuneId, modelName: "tuned" });
    await eng.models.requestPromotion({ modelName: "tuned", version: 1, acknowledgeMissingDocumentation: true, rationale: "ship it" });
    const req = (await eng.models.get({ name: "tuned" })).promotionRequests[0]!;
    await app.as("reviewer").models.sign({ requestId: req.id, meaning: "approval", password: "reviewer-demo-pass" });
    doc = (await app.as("auditor").models.exportProv({ modelName: "tuned", version: 1 })).document;
  }, 60_000);
  afterAll(() => app.close());

  it("the graph goes from raw dataset to the production alias move, through every run on the chain", async () => {
    const { graph } = await app.as("auditor").models.lineage({ modelName: "tuned", version: 1 });
    const ids = new Set(graph.nodes.map((n) => n.id));
    for (const id of [`run:${baseId}`, `run:${forkId}`, `run:${tuneId}`]) expect(ids).toContain(id);
    for (const kind of [
      "dataset",
      "datasetVersion",
      "split",
      "decision",
      "checkpoint",
      "evaluation",
      "modelVersion",
      "promotionRequest",
      "signature",
      "aliasMove",
    ])
      expect(graph.nodes.some((n) => n.kind === kind)).toBe(true);
    const edge = (label: string) => graph.edges.filter((e) => e.label === label);
    expect(edge("forked into").map((e) => [e.source, e.target])).toEqual([[`run:${baseId}`, `run:${forkId}`]]);
    expect(edge("fine-tuned from")).toHaveLength(1);
    expect(edge("fine-tuned from")[0]!.target).toBe(`run:${tuneId}`);
    for (const e of graph.edges) {
      expect(ids).toContain(e.source);
      expect(ids).toContain(e.target);
    }
    const change = graph.nodes.find((n) => n.title === "Changed training.batchSize")!;
    expect(change.lines.join(" ")).toContain("16 → 8");
    expect(change.details.find((d) => d.label === "Rationale")!.value).toBe("noisier gradients may help on 100 rows");
  });

  it("shows every time in the graph as the app does, date and time apart ('2026-01-31 12:00:00Z'), never a raw ISO string", async () => {
    const { graph } = await app.as("auditor").models.lineage({ modelName: "tuned", version: 1 });
    const shown = graph.nodes.flatMap((n) => [...n.lines, ...n.details.map((d) => d.value)]);
    const times = shown.filter((v) => /\d{4}-\d\d-\d\d[T ]\d\d:\d\d/.test(v));
    // Run (trained from → to), model version, promotion request, signature and alias move all carry times.
    expect(times.length).toBeGreaterThanOrEqual(6);
    for (const v of times) expect(v).not.toMatch(/\d{4}-\d\d-\d\dT\d\d:/);
    const mv = graph.nodes.find((n) => n.kind === "modelVersion")!;
    expect(mv.details.find((d) => d.label === "When")!.value).toMatch(/^\d{4}-\d\d-\d\d \d\d:\d\d:\d\dZ$/);
  });

  it("exports a valid PROV-JSON document with entities, activities, agents and the five relations", () => {
    expect(provJsonSchema.safeParse(doc).success).toBe(true);
    expect(validateProvJson(doc)).toEqual([]);
    expect(doc.prefix).toMatchObject({ prov: "http://www.w3.org/ns/prov#", runledger: expect.any(String), rl: expect.any(String) });
    expect(types(doc, "entity")).toEqual(
      expect.arrayContaining([
        "runledger:RawDataset",
        "runledger:CleanedData",
        "runledger:Split",
        "runledger:TrainingConfig",
        "runledger:Decision",
        "runledger:Checkpoint",
        "runledger:EvaluationResult",
        "runledger:ModelVersion",
        "runledger:PromotionRequest",
        "runledger:Signature",
      ]),
    );
    expect(types(doc, "activity")).toEqual(
      expect.arrayContaining(["runledger:TrainingRun", "runledger:Evaluation", "runledger:Registration", "runledger:AliasMove"]),
    );
    expect(types(doc, "agent")).toEqual(expect.arrayContaining(["prov:Person", "prov:SoftwareAgent"]));
    for (const rel of ["used", "wasGeneratedBy", "wasDerivedFrom", "wasAssociatedWith", "wasAttributedTo"] as const)
      expect(Object.keys(doc[rel]).length).toBeGreaterThan(0);
    // The fine-tune used its parent checkpoint; the model version derives from the tuned run's checkpoint.
    const usedParent = Object.values(doc.used).find(
      (u) => u["prov:activity"] === `rl:run-${tuneId}` && String(u["prov:entity"]).startsWith("rl:checkpoint-"),
    );
    expect(usedParent).toBeDefined();
    expect(
      Object.values(doc.wasDerivedFrom).some(
        (d) => d["prov:generatedEntity"] === `rl:config-${forkId}` && d["prov:usedEntity"] === `rl:config-${baseId}`,
      ),
    ).toBe(true);
    expect(
      Object.values(doc.wasAttributedTo).some(
        (a) => String(a["prov:entity"]).startsWith("rl:signature-") && doc.agent[String(a["prov:agent"])]!["prov:label"] === "Rui Reviewer",
      ),
    ).toBe(true);
  });

  it("each run's trainer agent and Software detail name the Runledger build that trained it, or say it was not recorded", async () => {
    const env = (id: number) =>
      JSON.parse(app.db.select().from(runs).where(eq(runs.id, id)).get()!.environmentJson!) as { appCommit?: string; tfjs: string };
    const trainerOf = (runId: number) => {
      const assoc = Object.values(doc.wasAssociatedWith).find(
        (a) => a["prov:activity"] === `rl:run-${runId}` && (a["prov:role"] as { $: string } | undefined)?.$ === "runledger:trainer",
      )!;
      return { id: String(assoc["prov:agent"]), agent: doc.agent[String(assoc["prov:agent"])]! };
    };
    const { graph } = await app.as("auditor").models.lineage({ modelName: "tuned", version: 1 });
    const detail = (runId: number, label: string) =>
      graph.nodes.find((n) => n.id === `run:${runId}`)!.details.find((d) => d.label === label)?.value;

    // Started by this build: package.json's version, and the commit the run recorded (none when this is no checkout).
    const commit = env(forkId).appCommit;
    const tfjs = env(forkId).tfjs;
    const backend = app.db.select().from(runs).where(eq(runs.id, forkId)).get()!.backend!;
    const fork = trainerOf(forkId);
    expect(fork.agent["runledger:appVersion"]).toBe(pkg.version);
    expect(fork.agent["runledger:appCommit"]).toBe(commit);
    expect(fork.agent["prov:label"]).toBe(
      `Runledger ${pkg.version} trainer, commit ${commit ? commit.slice(0, 12) : "not recorded"} (TensorFlow.js ${tfjs}, ${backend} backend)`,
    );
    expect(trainerOf(tuneId).id).toBe(fork.id); // same build, TensorFlow.js and backend: the same agent
    expect(detail(forkId, "Software")).toBe(
      `Runledger ${pkg.version} (commit ${commit ? commit.slice(0, 12) : "not recorded"}) · TensorFlow.js ${tfjs} on ${backend}`,
    );
    expect(detail(forkId, "Runledger commit")).toBe(commit);

    // The baseline recorded no version and "unknown" as its commit: neither is claimed, and it is another agent.
    const base = trainerOf(baseId);
    expect(base.id).not.toBe(fork.id);
    expect(base.agent).not.toHaveProperty("runledger:appVersion");
    expect(base.agent).not.toHaveProperty("runledger:appCommit");
    expect(base.agent["prov:label"]).toBe(`Runledger trainer, version not recorded (TensorFlow.js ${tfjs}, ${backend} backend)`);
    expect(detail(baseId, "Software")).toBe(`Runledger version not recorded · TensorFlow.js ${tfjs} on ${backend}`);
    expect(detail(baseId, "Runledger commit")).toBeUndefined();
    expect(JSON.stringify(doc)).not.toContain('"unknown"');
  });

  it("the checker catches a dangling reference and an undeclared prefix (it can fail)", () => {
    const broken = structuredClone(doc);
    broken.used["_:bad"] = { "prov:activity": "rl:run-999999", "prov:entity": "nope:thing" };
    const problems = validateProvJson(broken);
    expect(problems.join("\n")).toMatch(/rl:run-999999 is not a declared activity/);
    expect(problems.join("\n")).toMatch(/prefix "nope"/);
    const { entity: _omit, ...noEntities } = doc;
    expect(validateProvJson(noEntities).length).toBeGreaterThan(0);
  });

  it("records the export in the audit ledger, attributed to the auditor", () => {
    const ev = app.db.select().from(auditEvents).where(eq(auditEvents.action, "lineage.export")).all();
    expect(ev).toHaveLength(1);
    expect(ev[0]!.actorName).toBe("Alex Auditor");
  });
});

describe("the Runledger build in the lineage, from the facts", () => {
  const COMMIT_A = "335fb6b7c61a56cded969136bbab3de159a3b97c";
  const COMMIT_B = "a1b2c3d4e5f60718293a4b5c6d7e8f9001122334";
  let app: TestApp;
  let facts: LineageFacts;

  beforeAll(async () => {
    app = createTestApp({ backend: "cpu" });
    const eng = app.as("engineer");
    const runId = (await eng.runs.create({ experimentId: app.experimentId, config: irisConfig({ epochs: 2 }), rationale: "one run" })).id;
    await app.orchestrator.waitFor(runId);
    await eng.models.register({ runId, modelName: "software" });
    facts = collectLineage(app.db, app.db.select().from(modelVersions).get()!.id);
  }, 60_000);
  afterAll(() => app.close());

  /** The collected facts with the version's run as `run`, and copies of it as earlier runs on its chain. */
  const withRuns = (...variants: Partial<LineageFacts["runs"][number]>[]): LineageFacts => {
    const [own] = facts.runs;
    return { ...facts, runs: variants.map((v, i) => ({ ...own!, id: own!.id + 100 * i, ...(i ? { parentRunId: null } : {}), ...v })) };
  };

  it("reads the environment as recorded: null for what it lacks, never 'unknown' as a commit", () => {
    expect(recordedSoftware({ tfjs: "4.22.0", node: "v22", appVersion: "0.1.0", appCommit: COMMIT_A })).toEqual({
      appVersion: "0.1.0",
      appCommit: COMMIT_A,
      tfjsVersion: "4.22.0",
    });
    expect(recordedSoftware({ tfjs: "4.22.0", node: "v22", appVersion: "0.1.0" })).toEqual({
      appVersion: "0.1.0",
      appCommit: null,
      tfjsVersion: "4.22.0",
    });
    expect(recordedSoftware({ tfjs: "4.22.0", node: "v22", appCommit: "unknown" })).toEqual({
      appVersion: null,
      appCommit: null,
      tfjsVersion: "4.22.0",
    });
    // A run logged through the MLflow-compatible API has no environment at all.
    expect(recordedSoftware(null)).toEqual({ appVersion: null, appCommit: null, tfjsVersion: null });
  });

  it("one trainer agent per (Runledger version, commit, TensorFlow.js version, backend); the document stays valid", () => {
    const doc = lineageToProvJson(
      withRuns(
        { appVersion: "0.2.0", appCommit: COMMIT_A, tfjsVersion: "4.22.0", backend: "cpu" },
        { appVersion: "0.2.0", appCommit: COMMIT_A, tfjsVersion: "4.22.0", backend: "cpu" },
        { appVersion: "0.2.0", appCommit: COMMIT_B, tfjsVersion: "4.22.0", backend: "cpu" },
        { appVersion: "0.2.0", appCommit: null, tfjsVersion: "4.22.0", backend: "cpu" },
        { appVersion: "0.1.0-beta", appCommit: null, tfjsVersion: "4.22.0", backend: "cpu" },
        { appVersion: null, appCommit: null, tfjsVersion: "4.22.0", backend: "wasm" },
        { appVersion: null, appCommit: null, tfjsVersion: null, backend: null, origin: "api" },
      ),
    );
    expect(validateProvJson(doc)).toEqual([]);
    const trainers = Object.entries(doc.agent).filter(([, a]) => (a["prov:type"] as { $: string }).$ === "prov:SoftwareAgent");
    expect(trainers.map(([, a]) => a)).toEqual([
      {
        "prov:type": { $: "prov:SoftwareAgent", type: "prov:QUALIFIED_NAME" },
        "prov:label": "Runledger 0.2.0 trainer, commit 335fb6b7c61a (TensorFlow.js 4.22.0, cpu backend)",
        "runledger:appVersion": "0.2.0",
        "runledger:appCommit": COMMIT_A,
        "runledger:backend": "cpu",
        "runledger:tfjs": "4.22.0",
      },
      expect.objectContaining({ "runledger:appCommit": COMMIT_B }),
      {
        "prov:type": { $: "prov:SoftwareAgent", type: "prov:QUALIFIED_NAME" },
        "prov:label": "Runledger 0.2.0 trainer, commit not recorded (TensorFlow.js 4.22.0, cpu backend)",
        "runledger:appVersion": "0.2.0",
        "runledger:backend": "cpu",
        "runledger:tfjs": "4.22.0",
      },
      expect.objectContaining({ "runledger:appVersion": "0.1.0-beta" }),
      {
        "prov:type": { $: "prov:SoftwareAgent", type: "prov:QUALIFIED_NAME" },
        "prov:label": "Runledger trainer, version not recorded (TensorFlow.js 4.22.0, wasm backend)",
        "runledger:backend": "wasm",
        "runledger:tfjs": "4.22.0",
      },
    ]);
    expect(trainers.map(([id]) => id)).toEqual([
      `rl:trainer-runledger-0.2.0-${COMMIT_A}-tfjs-4.22.0-cpu`,
      `rl:trainer-runledger-0.2.0-${COMMIT_B}-tfjs-4.22.0-cpu`,
      "rl:trainer-runledger-0.2.0-tfjs-4.22.0-cpu",
      "rl:trainer-runledger-0.1.0_2d_beta-tfjs-4.22.0-cpu",
      "rl:trainer-runledger-_unrecorded-tfjs-4.22.0-wasm",
    ]);
    // The two runs of the same build train under the same agent; the API run has no trainer agent.
    const trainerOf = (i: number) =>
      Object.values(doc.wasAssociatedWith).find(
        (a) =>
          a["prov:activity"] === `rl:run-${facts.runs[0]!.id + 100 * i}` &&
          (a["prov:role"] as { $: string } | undefined)?.$ === "runledger:trainer",
      )?.["prov:agent"];
    expect(trainerOf(1)).toBe(trainerOf(0));
    expect(trainerOf(6)).toBeUndefined();
  });

  it("the graph's Software detail names the Runledger version and short commit, and says what was not recorded", () => {
    const graph = lineageGraph(
      withRuns(
        { appVersion: "0.2.0", appCommit: COMMIT_A, tfjsVersion: "4.22.0", backend: "cpu" },
        { appVersion: "0.2.0", appCommit: null, tfjsVersion: "4.22.0", backend: "tensorflow" },
        { appVersion: null, appCommit: null, tfjsVersion: "4.22.0", backend: "wasm" },
        { appVersion: null, appCommit: null, tfjsVersion: null, backend: null, origin: "api" },
      ),
    );
    const details = (i: number) => graph.nodes.find((n) => n.id === `run:${facts.runs[0]!.id + 100 * i}`)!.details;
    const value = (i: number, label: string) => details(i).find((d) => d.label === label)?.value;
    expect(value(0, "Software")).toBe("Runledger 0.2.0 (commit 335fb6b7c61a) · TensorFlow.js 4.22.0 on cpu");
    expect(details(0).find((d) => d.label === "Runledger commit")).toEqual({ label: "Runledger commit", value: COMMIT_A, hash: true });
    expect(value(1, "Software")).toBe("Runledger 0.2.0 (commit not recorded) · TensorFlow.js 4.22.0 on tensorflow");
    expect(value(1, "Runledger commit")).toBeUndefined();
    expect(value(2, "Software")).toBe("Runledger version not recorded · TensorFlow.js 4.22.0 on wasm");
    expect(value(3, "Software")).toBe("not recorded (logged by a script through the MLflow-compatible API)");
    // An older run whose commit was recorded without a version: the commit is still shown.
    expect(softwareText({ appVersion: null, appCommit: COMMIT_B, tfjsVersion: "4.22.0", backend: "cpu", origin: "new" })).toBe(
      "Runledger version not recorded (commit a1b2c3d4e5f6) · TensorFlow.js 4.22.0 on cpu",
    );
  });
});

describe("CLI: train, register, export-prov", () => {
  const dataDir = fs.mkdtempSync(path.join(os.tmpdir(), "runledger-cli-"));
  const keyDir = fs.mkdtempSync(path.join(os.tmpdir(), "runledger-cli-keys-"));
  const env = { ...process.env, RUNLEDGER_KEY_DIR: keyDir };
  const cli = (...args: string[]) =>
    spawnSync(
      process.execPath,
      [path.join("node_modules", "tsx", "dist", "cli.mjs"), "server/cli/main.ts", ...args, "--data-dir", dataDir],
      { encoding: "utf8", timeout: 50_000, env },
    );
  afterAll(() => {
    fs.rmSync(dataDir, { recursive: true, force: true });
    fs.rmSync(keyDir, { recursive: true, force: true });
  });

  it("registers a trained run's best checkpoint and prints its lineage as PROV-JSON", () => {
    const trained = cli("train", "--config", "examples/iris-mlp.json", "--json");
    expect(trained.status, trained.stderr).toBe(0);
    const { runId } = JSON.parse(trained.stdout) as { runId: number };

    const reg = cli("register", "--run", String(runId), "--model", "iris-cli", "--json");
    expect(reg.status, reg.stderr).toBe(0);
    const out = JSON.parse(reg.stdout) as { model: string; version: number; weightsSha256: string };
    expect(Object.keys(out).sort()).toEqual(["model", "version", "weightsSha256"]);
    const db = openDatabase(dataDir);
    const best = db
      .select()
      .from(checkpoints)
      .where(eq(checkpoints.runId, runId))
      .all()
      .find((c) => c.isBest)!;
    db.$client.close();
    expect(out).toEqual({ model: "iris-cli", version: 1, weightsSha256: best.sha256 });

    const second = cli("register", "--run", String(runId), "--model", "iris-cli", "--checkpoint", "3", "--json");
    expect(JSON.parse(second.stdout)).toMatchObject({ version: 2 });
    const bad = cli("register", "--run", String(runId), "--model", "iris-cli", "--checkpoint", "9999");
    expect(bad.status).not.toBe(0);
    expect(bad.stderr).toMatch(/no checkpoint at epoch 9999/);

    const prov = cli("export-prov", "--model", "iris-cli", "--version", "1");
    expect(prov.status, prov.stderr).toBe(0);
    const doc = JSON.parse(prov.stdout) as ProvJson;
    expect(validateProvJson(doc)).toEqual([]);
    expect(
      Object.values(doc.entity).find((e) => (e["prov:type"] as { $: string }).$ === "runledger:ModelVersion")!["runledger:weightsSha256"],
    ).toBe(best.sha256);
    const missing = cli("export-prov", "--model", "iris-cli", "--version", "7");
    expect(missing.status).not.toBe(0);
    expect(missing.stderr).toMatch(/version 7 of model "iris-cli" was not found/);
  }, 60_000);
});
