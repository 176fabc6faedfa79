/** Test harness: a real app on a fresh temporary data directory and its own temporary key directory, with tRPC callers acting as the demo users. */
import fs from "node:fs";
import os from "node:os";
import path from "node:path";
import { count, eq, ne } from "drizzle-orm";
import { createAppServices, type AppServices } from "@/server/app-context/app-services";
import { ensureDemoUsersAndProject, DEMO_USERS } from "@/server/demo/seed";
import { createCaller } from "@/server/trpc/root";
import { actorOf } from "@/server/users/service";
import { auditEvents, runs, users } from "@/db/schema";
import type { TrainingConfigInput } from "@/contracts/training-config";

export type TestApp = AppServices & {
  experimentId: number;
  projectId: number;
  as: (role: "admin" | "engineer" | "reviewer" | "auditor" | "reviewer2") => ReturnType<typeof createCaller>;
  anonymous: ReturnType<typeof createCaller>;
  close: () => void;
};

export function createTestApp(opts: { backend?: "cpu" | "wasm" | "auto" } = {}): TestApp {
  const dataDir = fs.mkdtempSync(path.join(os.tmpdir(), "runledger-test-"));
  const keyDir = fs.mkdtempSync(path.join(os.tmpdir(), "runledger-test-keys-"));
  const services = createAppServices(dataDir, { backend: opts.backend ?? "auto", keyDir });
  const seed = ensureDemoUsersAndProject(services);
  const as = (role: "admin" | "engineer" | "reviewer" | "auditor" | "reviewer2") => {
    const email = role === "reviewer2" ? DEMO_USERS[4]!.email : DEMO_USERS.find((u) => u.role === role)!.email;
    const user = services.db.select().from(users).where(eq(users.email, email)).get()!;
    return createCaller({ services, user: actorOf(user), sessionToken: undefined });
  };
  return {
    ...services,
    experimentId: seed.experimentId,
    projectId: seed.projectId,
    as,
    anonymous: createCaller({ services, user: null, sessionToken: undefined }),
    close: () => {
      services.db.$client.close();
      fs.rmSync(dataDir, { recursive: true, force: true });
      fs.rmSync(keyDir, { recursive: true, force: true });
    },
  };
}

/** A small, fast Iris config. */
export function irisConfig(overrides: { epochs?: number; seed?: number; learningRate?: number } = {}): TrainingConfigInput {
  return {
    data: {
      dataset: { builtin: "iris" },
      normalization: "standard",
      split: { strategy: "stratified", train: 0.7, validation: 0.15, test: 0.15, seed: 3 },
    },
    model: { layers: [{ type: "dense", units: 12, activation: "relu" }] },
    training: {
      optimizer: { name: "adam" },
      learningRate: overrides.learningRate ?? 0.03,
      batchSize: 16,
      epochs: overrides.epochs ?? 5,
      seed: overrides.seed ?? 1,
    },
  };
}

/**
 * What a refused launch must leave unchanged: the run rows and the audit events (without the server's periodic
 * audit.checkpoint, which a background timer may append at any time).
 */
export function recordedCounts(app: TestApp): { runs: number; events: number } {
  return {
    runs: app.db.select({ n: count() }).from(runs).get()!.n,
    events: app.db.select({ n: count() }).from(auditEvents).where(ne(auditEvents.action, "audit.checkpoint")).get()!.n,
  };
}
