/**
 * PostgreSQL form of db/schema/sweeps.ts: the same tables, columns, keys and indexes (db/tests/schema-dialects.test.ts
 * keeps the two in step; db/schema-pg/README.md gives the type mapping). What each column means is documented there.
 */
import { pgTable, text, primaryKey, uniqueIndex, index, bigint } from "drizzle-orm/pg-core";
import { SWEEP_STATUSES } from "../schema/sweeps";
import { users } from "./users";
import { experiments } from "./projects";
import { runs } from "./runs";

export const sweeps = pgTable(
  "sweeps",
  {
    id: bigint("id", { mode: "number" }).primaryKey().generatedByDefaultAsIdentity(),
    experimentId: bigint("experiment_id", { mode: "number" })
      .notNull()
      .references(() => experiments.id),
    name: text("name").notNull(),
    specJson: text("spec_json").notNull(),
    specSha256: text("spec_sha256").notNull(),
    method: text("method").notNull(),
    maxTrials: bigint("max_trials", { mode: "number" }).notNull(),
    status: text("status", { enum: SWEEP_STATUSES }).notNull(),
    createdBy: bigint("created_by", { mode: "number" })
      .notNull()
      .references(() => users.id),
    createdAt: text("created_at").notNull(),
    winnerRunId: bigint("winner_run_id", { mode: "number" }).references(() => runs.id),
    winnerChosenBy: bigint("winner_chosen_by", { mode: "number" }).references(() => users.id),
    winnerRationale: text("winner_rationale"),
    winnerChosenAt: text("winner_chosen_at"),
  },
  (t) => [index("sweeps_experiment").on(t.experimentId)],
);

export const sweepTrials = pgTable(
  "sweep_trials",
  {
    sweepId: bigint("sweep_id", { mode: "number" })
      .notNull()
      .references(() => sweeps.id),
    trialIndex: bigint("trial_index", { mode: "number" }).notNull(),
    runId: bigint("run_id", { mode: "number" })
      .notNull()
      .references(() => runs.id),
    paramsJson: text("params_json").notNull(),
    stoppedAtRung: bigint("stopped_at_rung", { mode: "number" }),
  },
  (t) => [primaryKey({ columns: [t.sweepId, t.trialIndex] }), uniqueIndex("sweep_trials_run").on(t.runId)],
);
