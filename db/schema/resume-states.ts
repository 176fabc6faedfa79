/**
 * Exact-resume pointers (server/runs/resume-states.ts owns the table): which resume state (trainer/resume-state.ts,
 * stored in the artifact store under its SHA-256) continues a run from its checkpoint at an epoch. In the store, not
 * in a file of the data directory, so a run paused or interrupted on one machine of a cluster resumes exactly on
 * another (issue 16); installations from before this table still have pointer files, which loading falls back to.
 *
 * Operational state, not a recorded fact: outside the ledger, no protective trigger (the pointers of epochs after a
 * run's last checkpoint row are deleted before it resumes); the trainer re-checks the state's hash before using it.
 * One pointer per checkpoint (run, epoch), created once.
 */
import { sqliteTable, text, integer, primaryKey } from "drizzle-orm/sqlite-core";
import { runs } from "./runs";

export const resumeStates = sqliteTable(
  "resume_states",
  {
    runId: integer("run_id")
      .notNull()
      .references(() => runs.id),
    epoch: integer("epoch").notNull(),
    /** SHA-256 (hex) of the state's bytes in the artifact store. */
    stateSha256: text("state_sha256").notNull(),
  },
  (t) => [primaryKey({ columns: [t.runId, t.epoch] })],
);
