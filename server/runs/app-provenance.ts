/**
 * Which build of Runledger trained a run, recorded in its environment when it starts (persist-events.ts
 * recordStartedTx): `appVersion`, package.json's version (imported, so the Next.js bundle, tsx (CLI, workers) and
 * the tests all read the same file), and `appCommit`, the git commit, only when it is known: RUNLEDGER_COMMIT, else
 * `git rev-parse HEAD` when the project directory (process.cwd(), as everywhere in the server) is the top of a git
 * checkout of this project. Anything else (no git, not a checkout, the project inside another repository, git
 * refusing the directory) leaves `appCommit` out: a run never records a guess such as "unknown".
 */
import { execFileSync } from "node:child_process";
import fs from "node:fs";
import path from "node:path";
import pkg from "@/package.json";

export type AppProvenance = { appVersion: string; appCommit?: string };

type Git = (args: string[], cwd: string) => string;
const runGit: Git = (args, cwd) =>
  execFileSync("git", args, { cwd, encoding: "utf8", stdio: ["ignore", "pipe", "ignore"], timeout: 5_000 }).trim();

const COMMIT = /^[0-9a-f]{40}([0-9a-f]{24})?$/;

function commitOf(root: string, env: Record<string, string | undefined>, git: Git): string | undefined {
  const given = env.RUNLEDGER_COMMIT?.trim();
  if (given) return given;
  try {
    const top = git(["rev-parse", "--show-toplevel"], root);
    if (fs.realpathSync(top) !== fs.realpathSync(root)) return undefined;
    const head = git(["rev-parse", "HEAD"], root);
    return COMMIT.test(head) ? head : undefined;
  } catch {
    return undefined;
  }
}

export function computeAppProvenance(
  opts: { root?: string; env?: Record<string, string | undefined>; git?: Git; version?: string } = {},
): AppProvenance {
  const root = path.resolve(opts.root ?? process.cwd());
  const appCommit = commitOf(root, opts.env ?? process.env, opts.git ?? runGit);
  return { appVersion: opts.version ?? pkg.version, ...(appCommit ? { appCommit } : {}) };
}

let cached: AppProvenance | undefined;
/** This process's provenance, computed once (the commit cannot change under a running process). */
export function appProvenance(): AppProvenance {
  return (cached ??= computeAppProvenance());
}
