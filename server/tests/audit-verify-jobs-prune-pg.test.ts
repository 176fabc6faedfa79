/**
 * "Verify now" jobs on PostgreSQL do not pile up (server/audit/verify-jobs-pg.ts): a start deletes, in its own
 * transaction, the ended jobs that are neither among the KEEP_ENDED_JOBS latest ended ones nor younger than
 * KEEP_ENDED_JOBS_FOR_MS. Running jobs are never deleted; the page still reads the latest job; a start that finds a
 * job running prunes too and returns that job.
 */
import { afterAll, beforeAll, expect, it } from "vitest";
import { asc, eq } from "drizzle-orm";
import { migratePg, openPgDatabase, type PgDb } from "@/db/pg-client";
import { pgStore, type Store } from "@/db/store";
import { auditVerifyJobs } from "@/db/schema-pg/audit-verify-jobs";
import type { Actor } from "@/server/audit/ledger";
import {
  currentPgVerifyJob,
  KEEP_ENDED_JOBS,
  KEEP_ENDED_JOBS_FOR_MS,
  startPgVerifyJob,
  waitForPgVerifyJob,
} from "@/server/audit/verify-jobs-pg";
import { createScratchPgDatabase, describePg, type ScratchPgDatabase } from "./pg-test-env";

const auditor: Actor = { id: null, name: "Alex Auditor", role: "auditor" };
const DAY = 24 * 3600_000;

describePg("[verify jobs] ended Verify now jobs are pruned at each start (PostgreSQL)", () => {
  let scratch: ScratchPgDatabase;
  let db: PgDb;
  let store: Store;

  beforeAll(async () => {
    scratch = await createScratchPgDatabase();
    db = openPgDatabase(scratch.url, { max: 2 });
    await migratePg(db);
    store = pgStore(db);
  }, 60_000);

  afterAll(async () => {
    await db?.$client.end();
    await scratch?.drop();
  });

  /** Ended rows as earlier jobs left them: `endedAgoMs` before now (heartbeat_at is the end's database time). */
  async function endedJobs(n: number, endedAgoMs: number): Promise<number[]> {
    const at = Date.now() - endedAgoMs;
    const rows = await db
      .insert(auditVerifyJobs)
      .values(
        Array.from({ length: n }, (_, i) => ({
          status: i % 3 === 0 ? ("failed" as const) : ("finished" as const),
          startedAt: new Date(at - 1000).toISOString(),
          startedBy: "Earlier",
          owner: "elsewhere:1",
          heartbeatAt: at,
          finishedAt: new Date(at).toISOString(),
          checked: 1,
          total: 1,
        })),
      )
      .returning({ id: auditVerifyJobs.id });
    return rows.map((r) => r.id);
  }

  const ids = async () =>
    (await db.select({ id: auditVerifyJobs.id }).from(auditVerifyJobs).orderBy(asc(auditVerifyJobs.id))).map((r) => r.id);

  /** A start whose worker fails at once (no trusted key): cheap, and it ends the job so the next start makes one. */
  async function startAndEnd(): Promise<number> {
    const { job, alreadyRunning } = await startPgVerifyJob(store, auditor, { publicKeyPem: "" }, "no key");
    expect(alreadyRunning).toBe(false);
    expect((await waitForPgVerifyJob(store))!).toMatchObject({ id: job.id, status: "failed" });
    return job.id;
  }

  it("keeps the latest ended jobs and the young ones, deletes the rest, never a running one", async () => {
    expect(KEEP_ENDED_JOBS).toBe(20);
    expect(KEEP_ENDED_JOBS_FOR_MS).toBe(7 * DAY);
    // Few and old: all kept (the latest 20).
    const old = await endedJobs(15, 30 * DAY);
    const first = await startAndEnd();
    expect(await ids()).toEqual([...old, first]);

    // 15 old, then the first job and 12 young ones, ended before the start (28): the latest 20 ended are the 13 young
    // and the 7 latest old ones. Deleted: the 8 oldest.
    const young = await endedJobs(12, 6 * DAY);
    const ended = [...old, first, ...young];
    const second = await startAndEnd();
    expect(await ids()).toEqual([...ended.slice(-KEEP_ENDED_JOBS), second]);
    expect((await currentPgVerifyJob(store))!.id).toBe(second);

    // Many young ones: all kept however many; no old one survives beyond the latest 20 ended.
    const many = await endedJobs(25, DAY);
    const third = await startAndEnd();
    expect(await ids()).toEqual([first, ...young, second, ...many, third]);

    // A running job (another server's, alive) is never deleted, even old-started; the start returns it.
    const [running] = await db
      .insert(auditVerifyJobs)
      .values({
        status: "running",
        startedAt: new Date(Date.now() - 30 * DAY).toISOString(),
        startedBy: "Busy",
        owner: "elsewhere:2",
        heartbeatAt: Date.now() + 60_000,
        checked: 0,
        total: 1,
      })
      .returning({ id: auditVerifyJobs.id });
    await db
      .update(auditVerifyJobs)
      .set({ heartbeatAt: Date.now() - 40 * DAY })
      .where(eq(auditVerifyJobs.id, young[0]!));
    const again = await startPgVerifyJob(store, auditor, { publicKeyPem: "" }, "no key");
    expect(again).toMatchObject({ alreadyRunning: true, job: { id: running!.id, status: "running" } });
    // The latest 20 ended are the last of `many` and `third`; the older ended ones stay while younger than 7 days,
    // the one made old is deleted.
    expect(await ids()).toEqual([first, ...young.slice(1), second, ...many, third, running!.id]);
  }, 120_000);
});
