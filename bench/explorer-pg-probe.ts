/**
 * Probe for issue 16's `runs_filter_10k_ms_pg` / `compare_20_runs_ms_pg` (not a bench part, not those figures):
 * how far the SQL of the runs explorer is from running on PostgreSQL, and what it costs there. It seeds bench/runs.ts's
 * data set on SQLite (10,000 runs; `--long-runs N` runs of 1M points, default 2), copies it with migrate-store into a
 * scratch database on the cluster RUNLEDGER_TEST_PG_URL names, ANALYZEs it, records the statements that searchRuns,
 * compareRuns and fetchSeries send (drizzle's logger), and replays each on PostgreSQL (`?` → `$n`, same parameters).
 * Per case it prints: statements, SQLite time of the whole call, PostgreSQL time of the statements alone (no row
 * mapping), the statements PostgreSQL rejects, and whether the first statement's rows agree.
 * What it found is in ARCHITECTURE.md ("The runs explorer on PostgreSQL").
 *
 *   export RUNLEDGER_TEST_PG_URL=$(bash scripts/pg-cluster.sh start)
 *   npx tsx bench/explorer-pg-probe.ts [--long-runs N]
 */
import fs from "node:fs";
import os from "node:os";
import path from "node:path";
import pg from "pg";
import { drizzle } from "drizzle-orm/better-sqlite3";
import { openDatabase, schema, type Db } from "@/db/client";
import { createScratchPgDatabase } from "@/db/pg-client";
import { generateAuditKeys } from "@/server/audit/keys";
import { migrateStore } from "@/server/backup/migrate-store";
import { searchRuns } from "@/server/runs/explore/runs-search";
import { compareRuns } from "@/server/runs/explore/compare";
import { fetchSeries } from "@/server/runs/explore/downsample";
import { seedRunsBench } from "./runs";

type Statement = { query: string; params: unknown[] };
const REPS = 5;
const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]!;
const pgText = (q: string) => {
  let n = 0;
  return q.replace(/\?/g, () => `$${++n}`);
};

async function main() {
  const base = process.env.RUNLEDGER_TEST_PG_URL;
  if (!base) throw new Error("RUNLEDGER_TEST_PG_URL is not set (export RUNLEDGER_TEST_PG_URL=$(bash scripts/pg-cluster.sh start))");
  const longArg = process.argv.indexOf("--long-runs");
  const longRuns = longArg >= 0 ? Number(process.argv[longArg + 1]) : 2;

  const dir = fs.mkdtempSync(path.join(os.tmpdir(), "runledger-explorer-pg-probe-"));
  const scratch = await createScratchPgDatabase(base, "rl_probe");
  const client = new pg.Client({ connectionString: scratch.url });
  try {
    const seeding = openDatabase(dir);
    seeding.$client.pragma("synchronous = OFF");
    let t = performance.now();
    const { shortRunIds, longRunIds } = seedRunsBench(seeding, longRuns);
    seeding.$client.close();
    console.log(`seeded SQLite in ${((performance.now() - t) / 1000).toFixed(1)} s (${longRuns} long runs)`);
    fs.writeFileSync(path.join(dir, "audit-ed25519.pub"), generateAuditKeys().publicKeyPem); // migrate-store's check reads it
    t = performance.now();
    await migrateStore({ dataDir: dir, url: scratch.url });
    await client.connect();
    await client.query("ANALYZE"); // a fresh copy has no statistics: the planner then guesses 2 rows where thousands match
    console.log(`copied to PostgreSQL and analyzed in ${((performance.now() - t) / 1000).toFixed(1)} s`);

    const sqlite = openDatabase(dir);
    const captured: Statement[] = [];
    const logged = drizzle(sqlite.$client, {
      schema,
      logger: { logQuery: (query, params) => void captured.push({ query, params }) },
    }) as Db;
    const filter =
      '(params.optimizer = "adam" OR params.optimizer = "rmsprop") AND (metrics.val_accuracy > 0.7 OR params.lr >= 1e-2) AND NOT status = "failed"';
    const series = (ids: number[], keys: string[]) => async () => {
      for (const runId of ids) for (const key of keys) await fetchSeries(logged, { runId, key, xAxis: "step", maxPoints: 1000 });
    };
    const cases: Record<string, () => Promise<unknown>> = {
      // bench/runs.ts's runs_filter_10k_ms call
      runs_filter_10k: () =>
        searchRuns(logged, {
          filter,
          sort: [{ field: "metrics.val_accuracy", dir: "desc" }],
          columns: ["params.optimizer", "params.lr", "params.batchSize", "metrics.val_accuracy", "metrics.val_loss"],
          offset: 0,
          limit: 50,
        }),
      compare_20_runs: () => compareRuns(logged, shortRunIds.slice(0, 20)),
      [`series_${longRunIds.length}_long_runs_2_keys`]: series(longRunIds, ["batch_loss", "val_loss"]),
      series_20_short_runs_2_keys: series(shortRunIds.slice(0, 20), ["val_loss", "val_accuracy"]),
      sort_by_duration: () => searchRuns(logged, { sort: [{ field: "duration", dir: "desc" }], limit: 50 }),
      sort_by_name: () => searchRuns(logged, { sort: [{ field: "name", dir: "asc" }], limit: 50 }),
      filter_contains: () => searchRuns(logged, { filter: 'author ~ "ADA" AND params.optimizer ~ "prop"', limit: 50 }),
    };
    for (const [label, call] of Object.entries(cases)) {
      captured.length = 0;
      await call();
      const statements = [...captured];
      const sqliteMs: number[] = [];
      for (let i = 0; i < REPS; i++) {
        const s = performance.now();
        await call();
        sqliteMs.push(performance.now() - s);
      }
      const errors = new Set<string>();
      const pgMs: number[] = [];
      let firstRowsAgree: boolean | null = null;
      for (let rep = 0; rep <= REPS; rep++) {
        let sum = 0;
        for (const [i, st] of statements.entries()) {
          const s = performance.now();
          try {
            const r = await client.query({ text: pgText(st.query), values: st.params, rowMode: "array" });
            if (rep === 0 && i === 0) {
              const lite = sqlite.$client
                .prepare(st.query)
                .raw(true)
                .all(...(st.params as unknown[])) as unknown[][];
              // Compare the first column (ids, steps): PostgreSQL returns bigint as text through the raw client.
              firstRowsAgree = JSON.stringify(lite.map((row) => Number(row[0]))) === JSON.stringify(r.rows.map((row) => Number(row[0])));
            }
          } catch (e) {
            errors.add(`${(e as Error).message}: ${pgText(st.query).slice(0, 160)}`);
          }
          sum += performance.now() - s;
        }
        if (rep > 0) pgMs.push(sum); // rep 0 warms the caches on both sides
      }
      console.log(
        JSON.stringify({
          case: label,
          statements: statements.length,
          sqlite_call_ms: Number(median(sqliteMs).toFixed(2)),
          pg_statements_ms: Number(median(pgMs).toFixed(2)),
          first_statement_rows_agree: errors.size ? null : firstRowsAgree,
          pg_errors: [...errors],
        }),
      );
    }
    sqlite.$client.close();
  } finally {
    await client.end().catch(() => undefined);
    await scratch.drop();
    fs.rmSync(dir, { recursive: true, force: true });
  }
}

main().then(
  () => process.exit(0),
  (e) => {
    console.error(e);
    process.exit(1);
  },
);
