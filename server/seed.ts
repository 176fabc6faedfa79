/**
 * First-start seeding: demo users (one per role), a demo project and experiment, and optionally one
 * completed demo run on Iris. Idempotent: it only adds what is missing, so every start may call it.
 * The demo passwords are public (README): change or disable these users before real use.
 */
import { eq } from "drizzle-orm";
import { users, projects, experiments, runs } from "@/db/schema";
import type { Role } from "@/db/schema";
import { insertUser, actorOf } from "@/server/services/users";
import { createProject, createExperiment } from "@/server/services/projects";
import { createRun } from "@/server/services/runs";
import { SYSTEM_ACTOR } from "@/server/audit/ledger";
import type { AppServices } from "./app-services";
import type { TrainingConfigInput } from "@/contracts/training-config";

export const DEMO_USERS: { email: string; name: string; role: Role; password: string }[] = [
  { email: "admin@runledger.local", name: "Ada Admin", role: "admin", password: "admin-demo-pass" },
  { email: "engineer@runledger.local", name: "Erin Engineer", role: "engineer", password: "engineer-demo-pass" },
  { email: "reviewer@runledger.local", name: "Rui Reviewer", role: "reviewer", password: "reviewer-demo-pass" },
  { email: "auditor@runledger.local", name: "Alex Auditor", role: "auditor", password: "auditor-demo-pass" },
  { email: "reviewer2@runledger.local", name: "Rita Second-Reviewer", role: "reviewer", password: "reviewer2-demo-pass" },
];

export const DEMO_PROJECT = "Demo: flower classifier";
export const DEMO_EXPERIMENT = "iris-mlp";

export const DEMO_CONFIG: TrainingConfigInput = {
  name: "iris baseline",
  data: { dataset: { builtin: "iris" }, task: "classification", cleaning: [], normalization: "standard", split: { strategy: "stratified", train: 0.7, validation: 0.15, test: 0.15, seed: 7 } },
  model: { layers: [{ type: "dense", units: 16, activation: "relu" }, { type: "dense", units: 8, activation: "relu" }] },
  training: { optimizer: { name: "adam" }, learningRate: 0.02, batchSize: 16, epochs: 40, seed: 7 },
};

export type SeedResult = { createdUsers: typeof DEMO_USERS; projectId: number; experimentId: number; demoRunId: number | null };

export function ensureDemoUsersAndProject(services: AppServices): SeedResult {
  const { db } = services;
  const createdUsers = DEMO_USERS.filter((u) => !db.select({ id: users.id }).from(users).where(eq(users.email, u.email)).get());
  for (const u of createdUsers) insertUser(db, SYSTEM_ACTOR, u);
  const engineer = db.select().from(users).where(eq(users.email, DEMO_USERS[1]!.email)).get()!;
  const ctx = { ...services, actor: actorOf(engineer) };
  const project = db.select().from(projects).where(eq(projects.name, DEMO_PROJECT)).get() ?? createProject(ctx, { name: DEMO_PROJECT, description: "A small MLP on Fisher's Iris data, seeded on first start so there is something to look at." });
  const experiment = db.select().from(experiments).where(eq(experiments.name, DEMO_EXPERIMENT)).get() ?? createExperiment(ctx, { projectId: project.id, name: DEMO_EXPERIMENT, description: "Baseline MLPs on Iris." });
  return { createdUsers, projectId: project.id, experimentId: experiment.id, demoRunId: null };
}

/** Seeds everything, training the demo run to completion when the demo experiment has no run yet. */
export async function ensureDemoSeed(services: AppServices): Promise<SeedResult> {
  const base = ensureDemoUsersAndProject(services);
  const { db } = services;
  if (db.select({ id: runs.id }).from(runs).where(eq(runs.experimentId, base.experimentId)).get()) return base;
  const engineer = db.select().from(users).where(eq(users.email, DEMO_USERS[1]!.email)).get()!;
  const run = createRun({ ...services, actor: actorOf(engineer) }, { experimentId: base.experimentId, config: DEMO_CONFIG, rationale: "Baseline: two small hidden layers, Adam, standardised features, stratified 70/15/15 split." });
  services.orchestrator.launch(run.id);
  await services.orchestrator.waitFor(run.id);
  return { ...base, demoRunId: run.id };
}
