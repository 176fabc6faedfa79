/**
 * Every legitimate writer keeps the checkpoint promise `audit verify` checks (no event unsigned for longer than
 * CHECKPOINT_EVERY_MINUTES while newer events exist): the run orchestrator after persisting trainer events (no
 * request, no timer in a CLI run) and the command-line writers. Real app, real training worker, real CLI command;
 * the clock is moved by stating the last checkpoint's time in the past (policy `now`) or faking Date.
 */
import { afterEach, describe, expect, it, vi } from "vitest";
import { eq } from "drizzle-orm";
import { auditEvents, users } from "@/db/schema";
import { createRun } from "@/server/runs/service";
import { actorOf } from "@/server/users/service";
import { usersCommand } from "@/server/cli/users";
import { createTestApp, irisConfig } from "@/server/tests/test-app";
import { applyCheckpointPolicy } from "../checkpoint-policy";
import { latestAuditCheckpoint } from "../checkpoints";
import { verifyDatabase } from "../verify";

afterEach(() => {
  vi.useRealTimers();
  vi.unstubAllEnvs();
});

describe("writers apply the checkpoint policy", () => {
  it("the orchestrator signs a checkpoint after trainer events once the interval has passed (no request involved)", async () => {
    const app = createTestApp();
    try {
      const t0 = Date.now();
      expect(applyCheckpointPolicy(app)).toMatchObject({ checkpointed: true, reason: "first events" });
      const before = latestAuditCheckpoint(app.db)!;
      vi.useFakeTimers({ toFake: ["Date"], now: t0 + 15 * 60_000 }); // a quarter of an hour later, as in a long run
      const engineer = app.db.select().from(users).where(eq(users.role, "engineer")).get()!;
      const run = createRun(
        { ...app, actor: actorOf(engineer) },
        { experimentId: app.experimentId, config: irisConfig({ epochs: 2 }), rationale: "writer test" },
      );
      await app.orchestrator.launch(run.id);
      await app.orchestrator.waitFor(run.id);
      const after = latestAuditCheckpoint(app.db)!;
      expect(after.id).toBeGreaterThan(before.id);
      expect(after.reason).toBe("every 10 minutes");
      // Signed right after the first trainer event was persisted: it covers events after the run's creation.
      const created = app.db.select().from(auditEvents).where(eq(auditEvents.action, "run.create")).get()!;
      expect(after.treeSize).toBeGreaterThan(created.seq);
      vi.useRealTimers();
      const r = await verifyDatabase(app.dataDir, { publicKeyPem: app.auditKeys.publicKeyPem });
      expect(r.ok, r.problem ?? "").toBe(true);
    } finally {
      app.close();
    }
  }, 120_000);

  it("a command-line write signs a checkpoint when the last one is older than the interval", async () => {
    const app = createTestApp();
    try {
      applyCheckpointPolicy(app, { now: new Date(Date.now() - 60 * 60_000) }); // the last checkpoint: an hour ago
      const before = latestAuditCheckpoint(app.db)!;
      vi.stubEnv("RUNLEDGER_KEY_DIR", app.keyDir);
      const out = vi.spyOn(process.stdout, "write").mockImplementation(() => true);
      const code = await usersCommand([
        "create",
        "--email",
        "new@example.org",
        "--name",
        "New Person",
        "--role",
        "auditor",
        "--data-dir",
        app.dataDir,
      ]);
      out.mockRestore();
      expect(code).toBe(0);
      const after = latestAuditCheckpoint(app.db)!;
      expect(after.id).toBe(before.id + 1);
      const created = app.db.select().from(auditEvents).where(eq(auditEvents.action, "user.create")).all().at(-1)!;
      expect(after.treeSize).toBe(created.seq);
    } finally {
      app.close();
    }
  });
});
