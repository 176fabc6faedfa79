/**
 * A separate process appending to the PostgreSQL ledger (ledger-pg.test.ts starts several at once):
 *   tsx server/audit/tests/pg-append-child.ts URL LABEL COUNT PARALLEL
 * appends COUNT events, PARALLEL transactions at a time on their own connections, each in its own transaction, and
 * prints the seqs of its committed events as JSON on stdout. Every fifth transaction rolls back after appending: its
 * seq must go to a later event, never leave a gap.
 */
import { appendAuditEventPg } from "../ledger-pg";
import { openPgDatabase } from "@/db/pg-client";

const [url, label, countText, parallelText] = process.argv.slice(2);
const count = Number(countText);
const parallel = Number(parallelText);
if (!url || !label || !Number.isInteger(count) || !Number.isInteger(parallel)) {
  console.error("usage: pg-append-child.ts URL LABEL COUNT PARALLEL");
  process.exit(2);
}

class Rollback extends Error {}

const db = openPgDatabase(url, { max: parallel });
const committed: number[] = [];
let next = 0;
async function lane(): Promise<void> {
  while (next < count) {
    const i = next++;
    try {
      const row = await db.transaction(async (tx) => {
        const appended = await appendAuditEventPg(tx, {
          actor: { id: null, name: `child ${label}`, role: "system" },
          action: "run.log",
          entityType: "run",
          entityId: `${label}-${i}`,
          payload: { label, i, pid: process.pid, note: "ünïcödé ✓", value: i / 3 },
        });
        if (i % 5 === 4) throw new Rollback();
        return appended;
      });
      committed.push(row.seq);
    } catch (e) {
      if (!(e instanceof Rollback)) throw e;
    }
  }
}

async function main(): Promise<void> {
  await Promise.all(Array.from({ length: parallel }, lane));
  await db.$client.end();
  process.stdout.write(JSON.stringify({ label, committed }) + "\n");
}

main().catch((e: unknown) => {
  console.error(e);
  process.exit(1);
});
