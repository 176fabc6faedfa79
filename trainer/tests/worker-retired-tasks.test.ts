/**
 * The trainer worker does only what it is for (train, evaluate): a retired or unknown first message, such as the
 * old per-request "estimate" (estimates now run in the one long-lived estimate worker, estimate-pool.ts), is
 * answered with one taskFailed naming it, and the worker exits instead of building a TF.js model.
 */
import { Worker } from "node:worker_threads";
import { describe, expect, it } from "vitest";
import { loadBuiltin } from "../data/builtin";
import { WORKER_BOOTSTRAP, type WorkerTaskReply } from "../worker-client";
import { config } from "./synthetic";

describe("[trainer/worker] retired tasks", () => {
  it('answers an "estimate" message with taskFailed, and exits', async () => {
    const iris = loadBuiltin("iris");
    const job = {
      config: config({ data: { normalization: "standard" } }),
      dataset: { bytes: iris.bytes, schema: iris.schema, sha256: iris.sha256 },
    };
    const worker = new Worker(WORKER_BOOTSTRAP, { stdout: false, stderr: false });
    const replies: WorkerTaskReply[] = [];
    const exited = new Promise<number>((resolve) => worker.on("exit", resolve));
    worker.on("message", (m: WorkerTaskReply) => replies.push(m));
    worker.postMessage({ type: "estimate", job });
    const timeout = setTimeout(() => void worker.terminate(), 60_000);
    await exited;
    clearTimeout(timeout);
    expect(replies).toHaveLength(1);
    expect(replies[0]).toMatchObject({ type: "taskFailed", message: expect.stringMatching(/has no task "estimate"/) });
  });
});
