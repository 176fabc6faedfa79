/**
 * Every example config in examples/ trains to completion, as it is, through the CLI's train command on a fresh data
 * directory; the fine-tune example resolves its parent ("config:examples/digits-cnn.json@best") to the digits run
 * trained just before in the same directory. Two independent chains run side by side to keep the file quick
 * (about 45 s of CPU in all).
 */
import fs from "node:fs";
import os from "node:os";
import path from "node:path";
import { afterAll, beforeAll, describe, expect, it, vi } from "vitest";
import { asc } from "drizzle-orm";
import { openDatabase } from "@/db/client";
import { runs, evaluations } from "@/db/schema";
import { trainCommand } from "@/server/cli/train";

const dirs: string[] = [];
const lines: string[] = [];
beforeAll(() => {
  // --json prints exactly one JSON object per command on stdout; keep those, drop the rest.
  const write = process.stdout.write.bind(process.stdout);
  vi.spyOn(process.stdout, "write").mockImplementation((chunk: string | Uint8Array, ...rest: unknown[]) => {
    const text = typeof chunk === "string" ? chunk : Buffer.from(chunk).toString("utf8");
    if (text.startsWith('{"runId"')) lines.push(text.trim());
    else return write(chunk, ...(rest as []));
    return true;
  });
  vi.spyOn(process.stderr, "write").mockImplementation(() => true);
});
afterAll(() => {
  vi.restoreAllMocks();
  for (const d of dirs) fs.rmSync(d, { recursive: true, force: true });
});

async function trainChain(files: string[]) {
  const dataDir = fs.mkdtempSync(path.join(os.tmpdir(), "runledger-examples-"));
  const keyDir = fs.mkdtempSync(path.join(os.tmpdir(), "runledger-examples-keys-"));
  dirs.push(dataDir, keyDir);
  const codes: number[] = [];
  for (const f of files)
    codes.push(
      await trainCommand([
        "--config",
        `examples/${f}.json`,
        "--data-dir",
        dataDir,
        "--key-dir",
        keyDir,
        "--experiment",
        "examples",
        "--json",
      ]),
    );
  const db = openDatabase(dataDir);
  try {
    const rows = db.select().from(runs).orderBy(asc(runs.id)).all();
    const evals = db.select().from(evaluations).all();
    return { codes, rows, evals };
  } finally {
    db.$client.close();
  }
}

describe("[examples] train as they are through the CLI", () => {
  it("iris-mlp, iris-mlp-cleaned, sentences-lstm, digits-cnn and digits-cnn-finetune all complete", async () => {
    const [tabularAndText, digits] = await Promise.all([
      trainChain(["iris-mlp", "iris-mlp-cleaned", "sentences-lstm"]),
      trainChain(["digits-cnn", "digits-cnn-finetune"]),
    ]);
    expect(tabularAndText.codes).toEqual([0, 0, 0]);
    expect(digits.codes).toEqual([0, 0]);

    const all = [...tabularAndText.rows, ...digits.rows];
    expect(all.map((r) => r.name).sort()).toEqual(["digits-cnn", "digits-cnn-finetune", "iris-mlp", "iris-mlp-cleaned", "sentences-lstm"]);
    for (const r of all) {
      expect(r.status, `${r.name}: ${r.error ?? ""}`).toBe("completed");
      expect(r.finalWeightsSha256).toMatch(/^[0-9a-f]{64}$/);
    }
    // Each run was evaluated on its test partition.
    expect(new Set(tabularAndText.evals.map((e) => e.runId)).size).toBe(3);
    expect(new Set(digits.evals.map((e) => e.runId)).size).toBe(2);

    // The fine-tune used the digits run's best checkpoint (trained once, not twice), froze two layers and replaced the head.
    const parent = digits.rows.find((r) => r.name === "digits-cnn")!;
    const child = digits.rows.find((r) => r.name === "digits-cnn-finetune")!;
    expect(digits.rows).toHaveLength(2);
    expect(child).toMatchObject({ origin: "finetune", parentRunId: parent.id });
    expect(child.parentCheckpointId).not.toBeNull();
    expect(parent.backend).toBe("cpu"); // conv layers train on cpu (wasm has no Conv2DBackpropFilter)
    expect(JSON.parse(child.environmentJson!).fineTune).toEqual({
      frozenLayers: ["l0_conv2d", "l1_maxpooling2d"],
      replacedLayers: ["head"],
    });

    // --json printed one parseable summary per command, each "completed".
    expect(lines).toHaveLength(5);
    for (const l of lines) expect(JSON.parse(l)).toMatchObject({ status: "completed", error: null });
  }, 300_000); // about 45 s of CPU; allow for a busy 2-core machine
});
