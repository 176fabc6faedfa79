/**
 * The app's provenance recorded on each run (server/runs/app-provenance.ts): package.json's version always, the git
 * commit only when known, never "unknown". And a run trained through the orchestrator records them in its
 * environment and its run.start event.
 */
import { execFileSync } from "node:child_process";
import fs from "node:fs";
import os from "node:os";
import path from "node:path";
import { afterAll, describe, expect, it } from "vitest";
import pkg from "@/package.json";
import { eq } from "drizzle-orm";
import { auditEvents, runs } from "@/db/schema";
import { computeAppProvenance, appProvenance } from "@/server/runs/app-provenance";
import { createTestApp, irisConfig } from "./test-app";

const tmp = fs.mkdtempSync(path.join(os.tmpdir(), "runledger-provenance-"));
afterAll(() => fs.rmSync(tmp, { recursive: true, force: true }));
const noEnv = {};

function git(args: string[], cwd: string) {
  return execFileSync("git", args, { cwd, encoding: "utf8", stdio: ["ignore", "pipe", "ignore"] }).trim();
}

describe("app provenance", () => {
  it("is package.json's version, with the checkout's HEAD commit", () => {
    const repo = path.join(tmp, "checkout");
    fs.mkdirSync(repo);
    git(["init", "-q"], repo);
    fs.writeFileSync(path.join(repo, "f"), "x");
    git(["add", "f"], repo);
    git(["-c", "user.name=t", "-c", "user.email=t@t", "commit", "-q", "-m", "x"], repo);
    const head = git(["rev-parse", "HEAD"], repo);
    expect(computeAppProvenance({ root: repo, env: noEnv })).toEqual({ appVersion: pkg.version, appCommit: head });
    expect(pkg.version).toMatch(/^\d+\.\d+\.\d+/);
  });

  it("omits the commit outside a git checkout, or when git fails: never 'unknown'", () => {
    const plain = path.join(tmp, "plain");
    fs.mkdirSync(plain);
    expect(computeAppProvenance({ root: plain, env: noEnv })).toEqual({ appVersion: pkg.version });
    const failing = () => {
      throw new Error("git: not found");
    };
    expect(computeAppProvenance({ root: plain, env: noEnv, git: failing })).toEqual({ appVersion: pkg.version });
  });

  it("omits the commit of another repository the project sits in (not a checkout of the project)", () => {
    const inner = path.join(tmp, "checkout", "vendored-app");
    fs.mkdirSync(inner);
    expect(computeAppProvenance({ root: inner, env: noEnv })).toEqual({ appVersion: pkg.version });
  });

  it("takes RUNLEDGER_COMMIT when given (a deployment without .git)", () => {
    const plain = path.join(tmp, "plain");
    expect(computeAppProvenance({ root: plain, env: { RUNLEDGER_COMMIT: "abc1234" } })).toEqual({
      appVersion: pkg.version,
      appCommit: "abc1234",
    });
  });

  it("in this process: the project's version", () => {
    const p = appProvenance();
    expect(p.appVersion).toBe(pkg.version);
    expect(p.appCommit).not.toBe("unknown");
  });

  it("a run trained here records them in its environment and its run.start event", async () => {
    const app = createTestApp({ backend: "cpu" });
    try {
      const { id } = await app
        .as("engineer")
        .runs.create({ experimentId: app.experimentId, config: irisConfig({ epochs: 1 }), rationale: "provenance" });
      await app.orchestrator.waitFor(id);
      const run = app.db.select().from(runs).where(eq(runs.id, id)).get()!;
      const env = JSON.parse(run.environmentJson!) as Record<string, unknown>;
      expect(env.appVersion).toBe(pkg.version);
      expect(env.appCommit).toEqual(appProvenance().appCommit);
      expect(JSON.stringify(env)).not.toContain("unknown");
      const start = app.db.select().from(auditEvents).where(eq(auditEvents.action, "run.start")).get()!;
      expect((JSON.parse(start.payload) as { environment: Record<string, unknown> }).environment).toEqual(env);
    } finally {
      app.close();
    }
  }, 120_000);
});
