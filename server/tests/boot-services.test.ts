/**
 * instrumentation.ts register() starts the witness pusher and the checkpoint timer when the server process starts,
 * not on its first request: with a real witness process on loopback, a checkpoint signed before the start (as the
 * `seed` step leaves one) is cosigned with no request made. Once per process; nothing during `next build`.
 * (The same with a real `next start`: e2e/witness-boot.spec.ts.)
 */
import fs from "node:fs";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { createTestApp, type TestApp } from "@/server/tests/test-app";
import { createAuditCheckpoint, type AuditCheckpointRow } from "@/server/audit/checkpoints";
import { appendAuditEvent, SYSTEM_ACTOR } from "@/server/audit/ledger";
import { logOrigin, logVerifierKey } from "@/server/audit/witness/checkpoint-note";
import { fetchWitnessCheckpoint } from "@/server/audit/witness/client";
import { parseVerifierKey } from "@/server/audit/witness/note";
import { startWitnessProcess, type WitnessProcess } from "@/server/audit/witness/witness-process";
import { uninstallPeerAddressHook } from "@/server/http/client-address";
import { startServicesAtBoot } from "@/server/app-context/boot-services";
import { register } from "@/instrumentation";

type Globals = {
  __runledger?: { db: { $client: { close: () => void } } };
  __runledgerWitnessPusher?: { pusher: unknown; stop: () => void };
};
const g = globalThis as unknown as Globals;
const saved = { ...process.env };
let app: TestApp;
let w: WitnessProcess;
let cp: AuditCheckpointRow;

beforeAll(async () => {
  app = createTestApp();
  w = await startWitnessProcess({
    logKey: logVerifierKey(logOrigin(app.auditKeys.fingerprint), app.auditKeys.publicKey).vkey,
    name: "witness.test/boot",
  });
  app.db.transaction((tx) =>
    appendAuditEvent(tx, {
      actor: SYSTEM_ACTOR,
      action: "audit.verify",
      entityType: "auditLedger",
      entityId: "live",
      payload: { ok: true },
    }),
  );
  cp = createAuditCheckpoint(app.db, app.auditKeys, "signed before the server starts").checkpoint; // nobody pushes it
  Object.assign(process.env, {
    RUNLEDGER_DATA_DIR: app.dataDir,
    RUNLEDGER_KEY_DIR: app.keyDir,
    RUNLEDGER_WITNESSES: `${w.url}=${w.vkey}`,
    NEXT_RUNTIME: "nodejs",
  });
  delete process.env.NEXT_PHASE;
  delete process.env.RUNLEDGER_TRUST_PROXY;
}, 90_000);

afterAll(async () => {
  g.__runledgerWitnessPusher?.stop();
  g.__runledger?.db.$client.close();
  delete g.__runledger;
  delete g.__runledgerWitnessPusher;
  uninstallPeerAddressHook();
  for (const k of Object.keys(process.env)) if (!(k in saved)) delete process.env[k];
  Object.assign(process.env, saved);
  await w?.stop();
  if (w) fs.rmSync(w.keyDir, { recursive: true, force: true });
  app?.close();
});

describe("services started by instrumentation.ts register()", () => {
  it("not during next build", async () => {
    expect(await startServicesAtBoot({ ...process.env, NEXT_PHASE: "phase-production-build" })).toBe(false);
    expect(g.__runledger).toBeUndefined();
    expect(g.__runledgerWitnessPusher).toBeUndefined();
  });

  it("at start: the witness cosigns a checkpoint signed before the start, with no request; once per process", async () => {
    await register();
    const services = g.__runledger;
    const pusher = g.__runledgerWitnessPusher?.pusher;
    expect(services).toBeDefined();
    expect(pusher).toBeDefined();
    const key = parseVerifierKey(w.vkey);
    const origin = logOrigin(app.auditKeys.fingerprint);
    const started = Date.now();
    await expect
      .poll(async () => (await fetchWitnessCheckpoint(w.url, key, origin, { timeoutMs: 2000 }).catch(() => null))?.treeSize ?? 0, {
        timeout: 5_000,
        interval: 100,
      })
      .toBe(cp.treeSize);
    expect(Date.now() - started).toBeLessThan(5_000);

    await register(); // a second call (another bundle copy of the hook) starts nothing new
    expect(g.__runledger).toBe(services);
    expect(g.__runledgerWitnessPusher?.pusher).toBe(pusher);
  });
});
