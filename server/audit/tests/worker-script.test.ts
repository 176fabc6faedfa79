/**
 * Worker scripts (worker-script.ts): a TypeScript worker entry is bundled once into the cache, reused while its
 * sources are unchanged, rebuilt when one changes (never a stale bundle), and the tsx bootstrap is the fallback.
 */
import fs from "node:fs";
import os from "node:os";
import path from "node:path";
import { Worker } from "node:worker_threads";
import { afterEach, describe, expect, it } from "vitest";
import { bundledWorker, startWorker, workerCacheDir, workerExecArgv, workerScript } from "../worker-script";

const dirs: string[] = [];
afterEach(() => {
  for (const d of dirs.splice(0)) fs.rmSync(d, { recursive: true, force: true });
  delete process.env.RUNLEDGER_WORKER_BUNDLE;
});

function tempDir(): string {
  const d = fs.mkdtempSync(path.join(os.tmpdir(), "runledger-worker-script-"));
  dirs.push(d);
  return d;
}

/** Runs a worker script and resolves with its first message. */
function firstMessage(script: string, workerData?: unknown, execArgv?: string[]): Promise<unknown> {
  return new Promise((resolve, reject) => {
    const w = new Worker(script, { workerData, stdout: false, stderr: false, ...(execArgv ? { execArgv } : {}) });
    w.once("message", (m) => {
      resolve(m);
      void w.terminate();
    });
    w.once("error", reject);
  });
}

describe("worker scripts", () => {
  it("bundles an entry with its imports, reuses the bundle, and rebuilds when an import changes", async () => {
    const src = tempDir();
    const cache = tempDir();
    fs.writeFileSync(path.join(src, "dep.ts"), `export const answer: number = 41;\n`);
    fs.writeFileSync(
      path.join(src, "entry.ts"),
      `import { parentPort } from "node:worker_threads";\nimport { answer } from "./dep";\nparentPort?.postMessage(answer + 1);\n`,
    );
    const entry = path.join(src, "entry.ts");
    // Sources written just now count as "edited during the build" (no manifest kept): date them a minute back.
    const past = new Date(Date.now() - 60_000);
    for (const f of ["dep.ts", "entry.ts"]) fs.utimesSync(path.join(src, f), past, past);
    const out = bundledWorker(entry, process.cwd(), cache);
    expect(path.dirname(out)).toBe(cache);
    expect(await firstMessage(out)).toBe(42);

    const builtAt = fs.statSync(out).mtimeMs;
    expect(bundledWorker(entry, process.cwd(), cache)).toBe(out);
    expect(fs.statSync(out).mtimeMs).toBe(builtAt); // reused, not rebuilt

    // An edited import (new size and mtime) is never served from the old bundle.
    const dep = path.join(src, "dep.ts");
    fs.writeFileSync(dep, `export const answer: number = 99;\n`);
    const later = new Date(Date.now() + 5000);
    fs.utimesSync(dep, later, later);
    expect(await firstMessage(bundledWorker(entry, process.cwd(), cache))).toBe(100);
  });

  it("a source that does not compile throws (the caller falls back to the tsx bootstrap)", () => {
    const src = tempDir();
    fs.writeFileSync(path.join(src, "bad.ts"), `import { nothing } from "./missing-module";\nconsole.log(nothing);\n`);
    expect(() => bundledWorker(path.join(src, "bad.ts"), process.cwd(), tempDir())).toThrow();
  });

  it("the range worker runs from a bundle in the project cache; RUNLEDGER_WORKER_BUNDLE=0 selects the tsx bootstrap", async () => {
    const script = workerScript("verify-worker");
    expect(script.startsWith(workerCacheDir())).toBe(true);
    expect(script.endsWith("verify-worker.cjs")).toBe(true);
    // The bundled range worker answers like the TypeScript one: a missing database is an error it reports.
    const input = { file: path.join(tempDir(), "none.sqlite"), spec: {}, maxSeq: 0 };
    expect(await firstMessage(script, input)).toMatchObject({ ok: false });
    process.env.RUNLEDGER_WORKER_BUNDLE = "0";
    expect(workerScript("verify-worker")).toBe(path.join(process.cwd(), "server", "audit", "verify-worker-bootstrap.cjs"));
  });

  it("a bundle's thread starts without the parent's tsx hooks; every other option, and the bootstrap's, are kept", async () => {
    const tsxArgs = ["--require", "/p/node_modules/tsx/dist/preflight.cjs", "--import", "file:///p/node_modules/tsx/dist/loader.mjs"];
    const parent = ["--max-old-space-size=4096", ...tsxArgs, "--import=tsx", "-r", "./other-hook.cjs", "--enable-source-maps"];
    const bundle = path.join(workerCacheDir(), "verify-worker.cjs");
    expect(workerExecArgv(bundle, parent)).toEqual(["--max-old-space-size=4096", "-r", "./other-hook.cjs", "--enable-source-maps"]);
    const bootstrap = path.join(process.cwd(), "server", "audit", "verify-worker-bootstrap.cjs");
    expect(workerExecArgv(bootstrap, parent)).toEqual(parent);

    // For real: a tsx hook that cannot load would stop the thread before it runs; the bundle's thread never loads it.
    const script = workerScript("verify-worker");
    const input = { file: path.join(tempDir(), "none.sqlite"), spec: {}, maxSeq: 0 };
    const missingTsx = ["--require", path.join(tempDir(), "tsx", "dist", "preflight.cjs")];
    expect(await firstMessage(script, input, workerExecArgv(script, missingTsx))).toMatchObject({ ok: false });
    await expect(firstMessage(script, input, missingTsx)).rejects.toThrow(/preflight\.cjs/);
  });
  it("a parent started with V8 options still starts its workers (Node refuses them in execArgv; a thread has them anyway)", async () => {
    const script = workerScript("verify-worker");
    const input = { file: path.join(tempDir(), "none.sqlite"), spec: {}, maxSeq: 0 };
    const parent = ["--max-old-space-size=4096", "--single-threaded-gc", "--stack-trace-limit=20", "--enable-source-maps"];
    // What the parent's options would do as they are: no thread at all.
    expect(() => new Worker(script, { workerData: input, execArgv: workerExecArgv(script, parent) })).toThrow(
      expect.objectContaining({ code: "ERR_WORKER_INVALID_EXEC_ARGV" }) as Error,
    );
    const w = startWorker(script, { workerData: input, stdout: false, stderr: false }, parent);
    const answer = await new Promise((resolve, reject) => {
      w.once("message", resolve);
      w.once("error", reject);
    });
    await w.terminate();
    expect(answer).toMatchObject({ ok: false }); // the bundled range worker ran: a missing database is an error it reports
  });
});
