/**
 * The script a verification worker thread runs: its TypeScript entry bundled into one CommonJS file by esbuild
 * (a dependency of tsx, so present wherever tsx is), built at first use and kept in a cache directory of the
 * project (node_modules/.cache/runledger-workers, never the data directory). A worker then starts without tsx
 * compiling each module in the thread (about 100 ms of CPU for a range worker, 300 ms for a content worker).
 *
 * Invariants:
 * - The bundle is the entry's own source: it is rebuilt whenever any file esbuild read for it (listed with its size
 *   and mtime in a manifest next to it) or esbuild's version changed, so a stale bundle is never run.
 * - Files are written to a temporary name and renamed into place, so a concurrent reader sees a whole file or none.
 * - Anything that goes wrong (no esbuild, a read-only directory, a build error) falls back to the tsx bootstrap
 *   (`<entry>-bootstrap.cjs`), which runs the same TypeScript; RUNLEDGER_WORKER_BUNDLE=0 forces that fallback.
 * - Native packages (better-sqlite3) stay external and load from the project's node_modules.
 * - A bundle is plain CommonJS: its thread is started without the tsx hooks the parent may run under
 *   (workerExecArgv), which a thread otherwise inherits and sets up before it runs anything.
 */
import fs from "node:fs";
import { createRequire } from "node:module";
import path from "node:path";
import { Worker, type WorkerOptions } from "node:worker_threads";

type Manifest = { esbuild: string; entry: string; inputs: [file: string, size: number, mtimeMs: number][] };
type Esbuild = {
  version: string;
  buildSync(o: Record<string, unknown>): { metafile?: { inputs: Record<string, unknown> } };
};

/** Where bundles live (outside any data directory). */
export function workerCacheDir(root = process.cwd()): string {
  return path.join(root, "node_modules", ".cache", "runledger-workers");
}

function loadEsbuild(root: string): Esbuild {
  // Resolved at run time from the project (not followed by Next.js' bundler, which must not pull esbuild in).
  return createRequire(path.join(root, "package.json"))("esbuild") as Esbuild;
}

function readManifest(file: string): Manifest | null {
  try {
    return JSON.parse(fs.readFileSync(file, "utf8")) as Manifest;
  } catch {
    return null;
  }
}

/** True when every input still has the size and mtime recorded at build time. */
function inputsUnchanged(m: Manifest): boolean {
  for (const [file, size, mtimeMs] of m.inputs) {
    let st: fs.Stats;
    try {
      st = fs.statSync(file);
    } catch {
      return false;
    }
    if (st.size !== size || st.mtimeMs !== mtimeMs) return false;
  }
  return true;
}

function writeAtomically(file: string, text: string): void {
  const tmp = `${file}.${process.pid}.${Math.random().toString(36).slice(2)}.tmp`;
  fs.writeFileSync(tmp, text);
  fs.renameSync(tmp, file);
}

/**
 * Bundles `entryTs` (absolute path) into the cache unless an up-to-date bundle is there; returns the bundle's path.
 * Throws when it cannot (callers fall back to the tsx bootstrap).
 */
export function bundledWorker(entryTs: string, root = process.cwd(), dir = workerCacheDir(root)): string {
  const esbuild = loadEsbuild(root);
  const name = path.basename(entryTs, ".ts");
  const out = path.join(dir, `${name}.cjs`);
  const manifestFile = path.join(dir, `${name}.json`);
  const m = readManifest(manifestFile);
  if (m && m.esbuild === esbuild.version && m.entry === entryTs && fs.existsSync(out) && inputsUnchanged(m)) return out;

  fs.mkdirSync(dir, { recursive: true });
  const tmpOut = `${out}.${process.pid}.${Math.random().toString(36).slice(2)}.tmp`;
  const started = Date.now();
  const result = esbuild.buildSync({
    entryPoints: [entryTs],
    outfile: tmpOut,
    bundle: true,
    platform: "node",
    format: "cjs",
    target: "node20",
    tsconfig: path.join(root, "tsconfig.json"),
    external: ["better-sqlite3"],
    metafile: true,
    logLevel: "silent",
    write: true,
  });
  const inputs: Manifest["inputs"] = Object.keys(result.metafile?.inputs ?? {}).map((rel) => {
    const file = path.resolve(root, rel);
    const st = fs.statSync(file);
    return [file, st.size, st.mtimeMs];
  });
  if (inputs.length === 0) throw new Error("esbuild reported no inputs");
  fs.renameSync(tmpOut, out);
  // A file edited while esbuild ran may be in the bundle in either version: then no manifest, so the next use rebuilds.
  const editedMeanwhile = inputs.some(([, , mtimeMs]) => mtimeMs >= started - 1000);
  if (editedMeanwhile) fs.rmSync(manifestFile, { force: true });
  else writeAtomically(manifestFile, JSON.stringify({ esbuild: esbuild.version, entry: entryTs, inputs } satisfies Manifest));
  return out;
}

/**
 * The script for a worker whose TypeScript entry is server/audit/<name>.ts: the bundle when it can be had, else the
 * tsx bootstrap server/audit/<name>-bootstrap.cjs. Paths from the project root (Next.js bundles server code).
 */
export function workerScript(name: string, root = process.cwd()): string {
  const bootstrap = path.join(root, "server", "audit", `${name}-bootstrap.cjs`);
  if (process.env.RUNLEDGER_WORKER_BUNDLE === "0") return bootstrap;
  try {
    return bundledWorker(path.join(root, "server", "audit", `${name}.ts`), root);
  } catch {
    return bootstrap;
  }
}

/** Options that take the next argument as their value, as Node accepts them for preloading code. */
const PRELOAD_OPTIONS = new Set(["--require", "-r", "--import", "--loader", "--experimental-loader"]);
const isTsx = (value: string) => /[\\/]tsx[\\/]/.test(value) || value === "tsx" || value.startsWith("tsx/");

/**
 * The execArgv for a worker thread running `script`: the parent's, except that a bundle (not the tsx bootstrap) is
 * started without tsx's preload and loader hooks (`tsx` adds `--require …/tsx/dist/preflight.cjs --import
 * …/tsx/dist/loader.mjs`). A thread inherits them by default and sets tsx up before it runs anything: ~130 ms per
 * thread measured here (a content worker's start to "ready": 200 ms with them, 70-100 ms without), for code that
 * needs no compiling. Every other option is kept.
 */
export function workerExecArgv(script: string, parent: readonly string[] = process.execArgv): string[] {
  if (script.endsWith("-bootstrap.cjs")) return [...parent];
  const out: string[] = [];
  for (let i = 0; i < parent.length; i++) {
    const arg = parent[i]!;
    const eq = arg.indexOf("=");
    if (eq > 0 && PRELOAD_OPTIONS.has(arg.slice(0, eq)) && isTsx(arg.slice(eq + 1))) continue;
    if (PRELOAD_OPTIONS.has(arg) && i + 1 < parent.length && isTsx(parent[i + 1]!)) {
      i++;
      continue;
    }
    out.push(arg);
  }
  return out;
}

/**
 * new Worker(script, options) with workerExecArgv(script). Node refuses V8 options in a worker's execArgv
 * (ERR_WORKER_INVALID_EXEC_ARGV for --max-old-space-size, --single-threaded-gc, ...), which a thread has anyway: they
 * are process-wide. So a parent started with one would start no verification worker (the verification then ran
 * without them, 2.5 times slower). The thread is started again without the options Node names in its refusal, and,
 * should that be refused too, with Node's default (the parent's execArgv as it is, tsx hooks included).
 */
export function startWorker(
  script: string,
  options: Omit<WorkerOptions, "execArgv">,
  parent: readonly string[] = process.execArgv,
): Worker {
  const execArgv = workerExecArgv(script, parent);
  try {
    return new Worker(script, { ...options, execArgv });
  } catch (err) {
    if (!refusedExecArgv(err)) throw err;
    const refused = new Set(/flags: (.*)$/.exec((err as Error).message)?.[1]?.split(", ") ?? []);
    try {
      return new Worker(script, { ...options, execArgv: execArgv.filter((arg) => !refused.has(arg)) });
    } catch (again) {
      if (!refusedExecArgv(again)) throw again;
      return new Worker(script, options);
    }
  }
}

const refusedExecArgv = (err: unknown) => (err as { code?: unknown } | null)?.code === "ERR_WORKER_INVALID_EXEC_ARGV";
