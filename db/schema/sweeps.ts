/**
 * Hyperparameter sweeps (issue 17, server/sweeps/). A sweep row holds the spec as an engineer decided it (canonical
 * JSON and its sha256, recorded by sweep.create: the spec never changes; extending the budget is a sweep.extend
 * decision that moves max_trials), its state, and the winner an engineer chose (sweep.chooseWinner). Each trial is an
 * ordinary run of origin "sweep", linked here by its trial index and the parameter values the sweep generated.
 * Every column change is a ledger event of server/sweeps/service.ts; audit verify re-derives them
 * (server/audit/content/check-sweeps.ts).
 */
import { sqliteTable, text, integer, primaryKey, uniqueIndex, index } from "drizzle-orm/sqlite-core";
import { users } from "./users";
import { experiments } from "./projects";
import { runs } from "./runs";

/** running: generating and training trials; paused: no new trials (running ones finish); stopped / completed: final. */
export const SWEEP_STATUSES = ["running", "paused", "stopped", "completed"] as const;
export type SweepStatus = (typeof SWEEP_STATUSES)[number];

export const sweeps = sqliteTable(
  "sweeps",
  {
    id: integer("id").primaryKey({ autoIncrement: true }),
    experimentId: integer("experiment_id")
      .notNull()
      .references(() => experiments.id),
    name: text("name").notNull(),
    /** Canonical JSON of the parsed spec (contracts/sweep-spec.ts). Immutable. */
    specJson: text("spec_json").notNull(),
    specSha256: text("spec_sha256").notNull(),
    method: text("method").notNull(),
    /** The budget in force: the spec's maxTrials, raised by each sweep.extend. */
    maxTrials: integer("max_trials").notNull(),
    status: text("status", { enum: SWEEP_STATUSES }).notNull(),
    createdBy: integer("created_by")
      .notNull()
      .references(() => users.id),
    createdAt: text("created_at").notNull(),
    winnerRunId: integer("winner_run_id").references(() => runs.id),
    winnerChosenBy: integer("winner_chosen_by").references(() => users.id),
    winnerRationale: text("winner_rationale"),
    winnerChosenAt: text("winner_chosen_at"),
  },
  (t) => [index("sweeps_experiment").on(t.experimentId)],
);

export const sweepTrials = sqliteTable(
  "sweep_trials",
  {
    sweepId: integer("sweep_id")
      .notNull()
      .references(() => sweeps.id),
    /** 0-based, in generation order (the order that makes a seeded sweep reproducible). */
    trialIndex: integer("trial_index").notNull(),
    runId: integer("run_id")
      .notNull()
      .references(() => runs.id),
    /** Canonical JSON: config path → the value the sweep generated for this trial. */
    paramsJson: text("params_json").notNull(),
    /** Set when early termination stopped the trial (sweep.stopTrial): the rung epoch at which it was judged. */
    stoppedAtRung: integer("stopped_at_rung"),
  },
  (t) => [primaryKey({ columns: [t.sweepId, t.trialIndex] }), uniqueIndex("sweep_trials_run").on(t.runId)],
);
