/**
 * `npm start` and `npm run build` entry: runs `next build` only when the production build in .next is missing or
 * was made from other sources, and prints one line saying which (so a warm start skips the ~2.5 min build).
 *
 * Usage: tsx scripts/build-if-stale.ts [--always]   (--always: build even when fresh, then record the stamp)
 *
 * Invariants:
 * - Staleness is decided by content: SHA-256 of every file that can reach the build (see isBuildInput), not
 *   timestamps or git, so it is right on a fresh clone, without git, and after a checkout that restores old mtimes.
 * - The stamp (.next/runledger-build-stamp.json) is written only after `next build` exits 0, records the sources
 *   hashed before that build started, and names the build's BUILD_ID: a build made by a bare `next build` (new
 *   BUILD_ID, no matching stamp) is rebuilt once rather than trusted, so a stale build is never reused.
 * - Node's version and NEXT_PUBLIC_* variables (inlined into the client bundle) are part of the stamp.
 * - When in doubt (no stamp, unreadable stamp, other stamp version) it builds.
 */
import { spawnSync } from "node:child_process";
import { createHash } from "node:crypto";
import fs from "node:fs";
import path from "node:path";
import { fileURLToPath, pathToFileURL } from "node:url";

export const STAMP_FILE = "runledger-build-stamp.json";
const STAMP_VERSION = 1;

// Top-level entries that never reach the production build: dependencies and build output (package-lock.json stands
// for node_modules), runtime data, test and benchmark code, reports, editor and VCS state.
const IGNORED_TOP = new Set([
  "node_modules",
  ".next",
  ".git",
  "data",
  "tmp",
  "e2e",
  "bench",
  "test-results",
  "playwright-report",
  "scripts",
  ".ci",
]);
const IGNORED_NAMES = new Set(["next-env.d.ts", "bench-results.json", "tsconfig.tsbuildinfo"]);
// Configuration of tools other than Next (tests, lint, migrations), at the root.
const IGNORED_ROOT_FILES = new Set(["playwright.config.ts", "vitest.config.mts", "eslint.config.mjs", "drizzle.config.ts"]);

/** Whether a path (relative, "/"-separated) is an input of `next build`. Exported for the test. */
export function isBuildInput(rel: string, isDir: boolean): boolean {
  const parts = rel.split("/");
  const name = parts[parts.length - 1]!;
  if (parts.length === 1 && (IGNORED_TOP.has(name) || (!isDir && IGNORED_ROOT_FILES.has(name)))) return false;
  if (IGNORED_NAMES.has(name)) return false;
  // Dot entries are editor/tool state, except root .env files, which Next loads into the build.
  if (name.startsWith(".")) return !isDir && parts.length === 1 && name.startsWith(".env");
  if (isDir) return name !== "tests" && name !== "node_modules";
  if (/\.test\.(ts|tsx|mts|js|mjs)$/.test(name)) return false;
  if (/\.md$/i.test(name)) return false;
  return true;
}

/** SHA-256 of each build input under `root`, keyed by relative path, sorted. */
export function hashSources(root: string): Record<string, string> {
  const out: [string, string][] = [];
  const walk = (dir: string, relDir: string) => {
    for (const entry of fs.readdirSync(dir, { withFileTypes: true })) {
      const rel = relDir ? `${relDir}/${entry.name}` : entry.name;
      const full = path.join(dir, entry.name);
      if (entry.isDirectory()) {
        if (isBuildInput(rel, true)) walk(full, rel);
      } else if (entry.isFile() && isBuildInput(rel, false)) {
        out.push([rel, createHash("sha256").update(fs.readFileSync(full)).digest("hex")]);
      }
    }
  };
  walk(root, "");
  out.sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0));
  return Object.fromEntries(out);
}

export type Stamp = { version: number; buildId: string; node: string; publicEnv: Record<string, string>; files: Record<string, string> };

function publicEnv(env: Record<string, string | undefined>): Record<string, string> {
  return Object.fromEntries(
    Object.entries(env)
      .filter((e): e is [string, string] => e[0].startsWith("NEXT_PUBLIC_") && typeof e[1] === "string")
      .sort(([a], [b]) => (a < b ? -1 : 1)),
  );
}

export function currentInputs(root: string, env: Record<string, string | undefined> = process.env): Omit<Stamp, "version" | "buildId"> {
  return { node: process.version, publicEnv: publicEnv(env), files: hashSources(root) };
}

function readBuildId(root: string): string | null {
  try {
    return fs.readFileSync(path.join(root, ".next", "BUILD_ID"), "utf8").trim() || null;
  } catch {
    return null;
  }
}

function describeChanges(old: Record<string, string>, now: Record<string, string>): string {
  const changed = [...new Set([...Object.keys(old), ...Object.keys(now)])].filter((f) => old[f] !== now[f]).sort();
  const shown = changed.slice(0, 3).join(", ");
  return `${changed.length} source file${changed.length === 1 ? "" : "s"} changed since the last build (${shown}${changed.length > 3 ? ", …" : ""})`;
}

export type Decision = { build: boolean; reason: string };

/** Whether .next under `root` holds a production build of exactly `inputs`, and why not. */
export function decide(root: string, inputs: Omit<Stamp, "version" | "buildId">): Decision {
  const buildId = readBuildId(root);
  if (!buildId) return { build: true, reason: "no production build in .next" };
  let stamp: Stamp;
  try {
    stamp = JSON.parse(fs.readFileSync(path.join(root, ".next", STAMP_FILE), "utf8")) as Stamp;
  } catch {
    return { build: true, reason: "the build in .next has no source stamp (built by a bare `next build`?)" };
  }
  if (stamp.version !== STAMP_VERSION || typeof stamp.files !== "object" || stamp.files === null)
    return { build: true, reason: "the build's source stamp is from another version of this script" };
  if (stamp.buildId !== buildId)
    return { build: true, reason: "the build in .next is not the one the stamp describes (rebuilt by a bare `next build`?)" };
  if (stamp.node !== inputs.node) return { build: true, reason: `Node changed since the last build (${stamp.node} -> ${inputs.node})` };
  if (JSON.stringify(stamp.publicEnv) !== JSON.stringify(inputs.publicEnv))
    return { build: true, reason: "NEXT_PUBLIC_* environment variables changed since the last build" };
  const a = JSON.stringify(stamp.files);
  const b = JSON.stringify(inputs.files);
  if (a !== b) return { build: true, reason: describeChanges(stamp.files, inputs.files) };
  return {
    build: false,
    reason: `reusing the build in .next (${Object.keys(inputs.files).length} source files unchanged since it was made)`,
  };
}

export function writeStamp(root: string, inputs: Omit<Stamp, "version" | "buildId">): void {
  const buildId = readBuildId(root);
  if (!buildId) throw new Error("next build finished but .next/BUILD_ID is missing");
  const stamp: Stamp = { version: STAMP_VERSION, buildId, ...inputs };
  fs.writeFileSync(path.join(root, ".next", STAMP_FILE), JSON.stringify(stamp) + "\n");
}

function main(): void {
  const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), "..");
  const always = process.argv.includes("--always");
  const inputs = currentInputs(root);
  const decision = always ? { build: true, reason: "a build was requested (npm run build)" } : decide(root, inputs);
  if (!decision.build) {
    console.log(`build-if-stale: ${decision.reason}`);
    return;
  }
  console.log(`build-if-stale: building: ${decision.reason}`);
  // A failed or interrupted build must not leave an old stamp that could match the half-written output.
  fs.rmSync(path.join(root, ".next", STAMP_FILE), { force: true });
  const nextBin = path.join(root, "node_modules", "next", "dist", "bin", "next");
  const result = spawnSync(process.execPath, [nextBin, "build"], { cwd: root, stdio: "inherit" });
  if (result.status !== 0) process.exit(result.status ?? 1);
  writeStamp(root, inputs);
}

if (process.argv[1] && import.meta.url === pathToFileURL(path.resolve(process.argv[1])).href) main();
