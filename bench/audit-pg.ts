/**
 * `audit verify --database` on a PostgreSQL store (issue 16; server/audit/verify-pg.ts), on the audit bench's
 * 100k-event ledger moved there with migrate-store: one snapshot copied into SQLite, proved equal to it, then every
 * level verified on the copy. Needs RUNLEDGER_BENCH_PG_URL (a PostgreSQL 15+ cluster the bench may create a scratch
 * database on); without it the figures are printed as skipped, with the reason. Median of 3, wall and CPU of the whole
 * process (the PostgreSQL server's own CPU is not counted), with the load average.
 */
import os from "node:os";
import { createScratchPgDatabase } from "@/db/pg-client";
import { migrateStore } from "@/server/backup/migrate-store";
import { verifyPgStore, type VerifyPgResult } from "@/server/audit/verify-pg";
import { median, type Figure as BenchFigure } from "./figures";

const BENCH_PG_URL_VAR = "RUNLEDGER_BENCH_PG_URL";
const seconds = (ms: number) => Math.round(ms) / 1000;

export async function benchAuditPg(dataDir: string, label: string, publicKeyPem: string, events: number): Promise<BenchFigure[]> {
  const names = [`audit_verify_pg_${label}_events_s`, `audit_verify_pg_${label}_events_cpu_s`, `audit_verify_pg_${label}_snapshot_copy_s`];
  const base = process.env[BENCH_PG_URL_VAR]?.trim();
  if (!base) {
    const why = `${BENCH_PG_URL_VAR} is not set (a PostgreSQL 15+ cluster URL, e.g. $(bash scripts/pg-cluster.sh start))`;
    return names.map((name) => ({ name, value: Number.NaN, unit: "s", skipped: why }));
  }
  const scratch = await createScratchPgDatabase(base, "rl_bench_audit");
  try {
    await migrateStore({ dataDir, url: scratch.url });
    const load = os.loadavg()[0]!;
    const runs: { wallMs: number; cpuMs: number; result: VerifyPgResult }[] = [];
    for (let i = 0; i < 3; i++) {
      const cpu0 = process.cpuUsage();
      const t0 = performance.now();
      const result = await verifyPgStore(scratch.url, { publicKeyPem, workers: "auto" });
      const wallMs = performance.now() - t0;
      const cpu = process.cpuUsage(cpu0);
      if (!result.ok) throw new Error(`bench audit (PostgreSQL): the store did not verify: ${result.problem}`);
      if (result.eventsChecked !== events) throw new Error(`bench audit (PostgreSQL): checked ${result.eventsChecked} of ${events} events`);
      if (result.levels.content.checked === 0) throw new Error("bench audit (PostgreSQL): content verification did no work");
      runs.push({ wallMs, cpuMs: (cpu.user + cpu.system) / 1000, result });
    }
    return [
      { name: names[0]!, value: seconds(median(runs.map((r) => r.wallMs))), unit: "s" },
      { name: names[1]!, value: seconds(median(runs.map((r) => r.cpuMs))), unit: "s" },
      { name: names[2]!, value: seconds(median(runs.map((r) => r.result.store.snapshot.copyMs))), unit: "s" },
      {
        name: `audit_verify_pg_${label}_load_avg`,
        value: Math.round(((load + os.loadavg()[0]!) / 2) * 100) / 100,
        unit: "load (1 min, 2 cores)",
      },
    ];
  } finally {
    await scratch.drop();
  }
}
