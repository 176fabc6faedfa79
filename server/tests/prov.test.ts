/**
 * Lineage and its PROV-JSON export: the graph chains through a fork and a fine-tune back to the raw dataset; the
 * export is a well-formed PROV-JSON document (prefix, entity, activity, agent and relation maps that only refer to
 * declared records); and the CLI commands `train`, `register` and `export-prov` work on a temporary data directory.
 */
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { spawnSync } from "node:child_process";
import fs from "node:fs";
import os from "node:os";
import path from "node:path";
import { eq } from "drizzle-orm";
import { auditEvents, checkpoints } from "@/db/schema";
import { openDatabase } from "@/db/client";
import { validateProvJson, provJsonSchema } from "@/server/lineage/prov-schema";
import type { ProvJson } from "@/server/lineage/prov";
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
