/**
 * Group commit of log-batch calls: the calls waiting together are written in ONE SQLite transaction (one COMMIT, one
 * WAL append), each in a savepoint of its own with its own run.log event (logging.ts writeBatch, unchanged: its
 * `db.transaction` nests as a SAVEPOINT inside the group's). A call refused by its checks (limits, write-once param,
 * conflicting point, unknown or ended run) rolls back only its savepoint and is answered with MLflow's error; the
 * others commit. Every answer is given only after the group's COMMIT returned: when the COMMIT (or anything outside
 * a call's savepoint) fails, no call of the group is acknowledged (each gets 500 INTERNAL_ERROR) and nothing of the
 * group is stored.
 *
 * Runs in the ingest worker (ingest-worker.ts) on its own connection; tests call it in-process too.
 */
import type { Db } from "@/db/client";
import { callBody, errorAnswer, type MlflowAnswer } from "./call-body";
import type { MlflowCtx } from "./common";
import { logBatch } from "./logging";

/** One log-batch call: the authenticated caller (a writer: the main thread checked the token and role) and the body. */
export type IngestJob = { id: number; actor: MlflowCtx["actor"]; body: Uint8Array };

const NO_QUERY = new URLSearchParams();

function bodyText(body: Uint8Array): string {
  return Buffer.from(body.buffer, body.byteOffset, body.byteLength).toString("utf8");
}

/** The answer of one call, as the dispatcher would give it (its body parsed and refused alike). */
function answerLogBatch(ctx: MlflowCtx, body: Uint8Array): MlflowAnswer {
  try {
    return { status: 200, body: logBatch(ctx, callBody({ method: "POST", query: NO_QUERY, bodyText: bodyText(body) })) };
  } catch (err) {
    return errorAnswer(err);
  }
}

/**
 * Writes the jobs in one transaction (see above) and returns their answers, in order, after the COMMIT. `db` is a
 * connection of openDatabase (WAL, synchronous = NORMAL, busy timeout): the group takes the write lock at BEGIN
 * (IMMEDIATE), as every service transaction does.
 */
export function logBatchGroup(db: Db, jobs: IngestJob[]): MlflowAnswer[] {
  const sqlite = db.$client;
  const answers: MlflowAnswer[] = new Array(jobs.length);
  try {
    sqlite
      .transaction(() => {
        for (let i = 0; i < jobs.length; i++) {
          // log-batch reads the connection and the caller only (no artifacts, no keys).
          const ctx = { db, actor: jobs[i]!.actor } as unknown as MlflowCtx;
          answers[i] = answerLogBatch(ctx, jobs[i]!.body);
          // SQLite rolls a whole transaction back on some errors (SQLITE_FULL, IOERR, NOMEM): then the calls before
          // this one are gone too, and the group must not answer them as written.
          if (!sqlite.inTransaction) throw new Error("SQLite rolled the group's transaction back");
        }
      })
      .immediate();
  } catch (err) {
    const failed = errorAnswer(err);
    return jobs.map(() => failed);
  }
  return answers;
}
