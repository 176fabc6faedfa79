/**
 * Content-verification benchmark: builds a content-consistent ledger (bench-ledger.ts) of about `events` events with
 * a valid hash chain in a temporary data directory, then times checkContent alone (the chain pass is verify-core's
 * figure). Composition per run (default): 20 checkpoints (one per epoch), 40 metric points, 26 run_params rows,
 * 25 events; so 1M events = 40k runs, 800k checkpoints, 1.6M metric points, 1M run_params rows, 256 weight files. Returns bench figures; the temp directory is removed. A clean result is asserted, so a fast but wrong
 * check cannot pass. Run alone: `npx tsx server/audit/content/bench-content.ts 1000000`; per part on a kept database
 * (e.g. one bench/audit.ts built): `npx tsx server/audit/content/bench-content.ts --parts DIR`.
 */
import fs from "node:fs";
import os from "node:os";
import path from "node:path";
import { openDatabase } from "@/db/client";
import { canonicalJson } from "@/contracts/canonical";
import { ChainHasher, recomputeLeafHash } from "@/server/audit/event-hashing";
import { GENESIS_CHAIN_HASH } from "@/server/audit/ledger";
import { buildBenchContentLedger, eventsPerBenchRun, type BenchEvent } from "./bench-ledger";
import { checkContent, checkRunDerivedPart } from "./verify-content";
import { ContentChecker } from "./checker";
import { ArtifactHasher, storeArtifactPath } from "./artifact-files";
import { sqliteEventSource } from "./ledger-events";
import { loadTables } from "./tables";
import { checkPeople } from "./check-people";
import { checkData } from "./check-data";
import { checkRuns, decisionsCreatedWithRuns } from "./check-runs";
import { checkDecisions } from "./check-decisions";
import { checkRunDerivedValues, sqliteRunParams } from "./check-run-params";
import { checkMetrics, sqliteMetricSource } from "./check-metrics";
import { checkCheckpointsInSql } from "./check-checkpoints-sql";
import { checkEvaluationsInSql } from "./check-evaluations-sql";
import { checkDocuments } from "./check-documents";
import { checkRegistry } from "./check-registry";
import { checkApprovals } from "./check-approvals";

export type ContentFigure = { name: string; value: number; unit: string; target?: string };

/** Writes the bench ledger into `dataDir` (runledger.sqlite + artifacts/), chaining events as the ledger does. */
export function buildBenchContentDatabase(
  dataDir: string,
  events: number,
  opts: { checkpointsPerRun?: number; weightFiles?: number } = {},
): number {
  const db = openDatabase(dataDir);
  const sqlite = db.$client;
  // Throwaway bench data: no fsync, a large cache, a commit every 500 runs (one WAL transaction of a million events
  // slows to a crawl), foreign keys checked by the content check instead.
  sqlite.pragma("synchronous = OFF");
  sqlite.pragma("cache_size = -262144");
  sqlite.pragma("foreign_keys = OFF");
  const insert = sqlite.prepare(
    "INSERT INTO audit_events (seq, at, actor_id, actor_name, role, action, entity_type, entity_id, payload, leaf_hash, chain_hash) VALUES (?,?,?,?,?,?,?,?,?,?,?)",
  );
  const chain = new ChainHasher();
  chain.reset(GENESIS_CHAIN_HASH);
  let seq = 0;
  const append = (e: BenchEvent) => {
    const row = { seq: ++seq, ...e, payload: canonicalJson(e.payload) };
    const leaf = recomputeLeafHash(row)!;
    const chained = chain.next(leaf);
    chain.advance(chained);
    insert.run(row.seq, row.at, row.actorId, row.actorName, row.role, row.action, row.entityType, row.entityId, row.payload, leaf, chained);
  };
  const k = opts.checkpointsPerRun ?? 20;
  sqlite.exec("BEGIN");
  buildBenchContentLedger(
    sqlite,
    {
      runs: Math.max(1, Math.floor(events / eventsPerBenchRun(k))),
      checkpointsPerRun: k,
      weightFiles: opts.weightFiles ?? 256,
      artifactsDir: path.join(dataDir, "artifacts"),
      onRun: (r) => r % 500 === 0 && sqlite.exec("COMMIT; BEGIN"),
    },
    append,
  );
  sqlite.exec("COMMIT");
  sqlite.close();
  return seq;
}

export function benchContent(sizes: readonly number[] = [100_000, 1_000_000]): ContentFigure[] {
  const figures: ContentFigure[] = [];
  for (const size of sizes) {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), "runledger-bench-content-"));
    try {
      const built = performance.now();
      const n = buildBenchContentDatabase(dir, size);
      const buildS = (performance.now() - built) / 1000;
      const db = openDatabase(dir);
      const sqlite = db.$client;
      const cpu0 = process.cpuUsage();
      const r = sqlite.transaction(() =>
        checkContent(sqlite, { artifactsDir: path.join(dir, "artifacts"), uptoSeq: n, coverage: false }),
      )();
      const cpu = process.cpuUsage(cpu0);
      sqlite.close();
      if (!r.level.ok)
        throw new Error(
          `bench content: the ${n}-event ledger did not verify: ${r.level.problems
            .slice(0, 3)
            .map((p) => p.message)
            .join("; ")}`,
        );
      const label = n >= 1_000_000 ? `${Math.round(n / 100_000) / 10}m` : `${Math.round(n / 1000)}k`;
      figures.push({ name: `audit_content_${label}_events_s`, value: Math.round(r.durationMs) / 1000, unit: "s" });
      figures.push({ name: `audit_content_${label}_events_cpu_s`, value: Math.round((cpu.user + cpu.system) / 1000) / 1000, unit: "s" });
      figures.push({ name: `audit_content_${label}_facts_checked`, value: r.level.checked, unit: "facts" });
      process.stderr.write(`(built ${n} events in ${buildS.toFixed(1)} s; ${r.filesHashed} artifact files hashed)\n`);
    } finally {
      fs.rmSync(dir, { recursive: true, force: true });
    }
  }
  return figures;
}

if (process.argv[1]?.endsWith("bench-content.ts") && process.argv[2] === "--build") {
  // Keep a bench database to experiment with: --build DIR EVENTS [CHECKPOINTS_PER_RUN]
  const [dir, n, k] = process.argv.slice(3);
  const t = performance.now();
  const seq = buildBenchContentDatabase(dir!, Number(n), { checkpointsPerRun: Number(k ?? 20) });
  process.stdout.write(`built ${seq} events in ${((performance.now() - t) / 1000).toFixed(1)} s\n`);
} else if (process.argv[1]?.endsWith("bench-content.ts") && process.argv[2] === "--check") {
  // Time the content check alone on a kept bench database: --check DIR
  const dir = process.argv[3]!;
  const db = openDatabase(dir);
  const n = (db.$client.prepare("SELECT max(seq) AS n FROM audit_events").get() as { n: number }).n;
  const cpu0 = process.cpuUsage();
  const r = db.$client.transaction(() => checkContent(db.$client, { artifactsDir: path.join(dir, "artifacts"), uptoSeq: n }))();
  const cpu = process.cpuUsage(cpu0);
  process.stdout.write(
    `${n} events: content ${r.level.ok ? "intact" : "FAILED"} in ${(r.durationMs / 1000).toFixed(2)} s (cpu ${((cpu.user + cpu.system) / 1e6).toFixed(2)} s), ${r.level.checked} facts, ${r.filesHashed} files\n`,
  );
  for (const p of r.level.problems.slice(0, 5)) process.stdout.write(`- ${p.message}\n`);
} else if (process.argv[1]?.endsWith("bench-content.ts") && process.argv[2] === "--parts") {
  // Wall and CPU time of each part of the content check, in checkContent's order, on a kept database: --parts DIR
  // (the one-thread figures; verifyDatabase with workers runs run_params + metrics in a content worker).
  const dir = process.argv[3]!;
  const db = openDatabase(dir);
  const sqlite = db.$client;
  const n = (sqlite.prepare("SELECT max(seq) AS n FROM audit_events").get() as { n: number }).n;
  sqlite.prepare("BEGIN").run();
  let wall = performance.now();
  let cpu = process.cpuUsage();
  const lap = (name: string) => {
    const c = process.cpuUsage(cpu);
    process.stdout.write(
      `${name.padEnd(28)} ${((performance.now() - wall) / 1000).toFixed(2).padStart(7)} s  cpu ${((c.user + c.system) / 1e6).toFixed(2).padStart(6)} s\n`,
    );
    wall = performance.now();
    cpu = process.cpuUsage();
  };
  const c = new ContentChecker(false);
  const files = new ArtifactHasher(storeArtifactPath(path.join(dir, "artifacts")));
  const events = sqliteEventSource(sqlite, n, ["checkpoint.create", "evaluation.create"]);
  lap("events (by action)");
  const t = loadTables(sqlite, { checkpoints: "referenced", evaluations: "cited" });
  lap("tables");
  checkPeople(c, events, t);
  checkData(c, events, t, files);
  lap("people, data");
  const withRun = decisionsCreatedWithRuns(t);
  const runs = checkRuns(c, events, t, withRun);
  lap("runs");
  checkDecisions(c, events, t, runs.createEvents, withRun);
  lap("decisions");
  checkRunDerivedValues(c, t, runs.created, sqliteRunParams(sqlite));
  lap("run_params, seed");
  checkMetrics(c, t, runs, sqliteMetricSource(sqlite));
  lap("metrics");
  checkCheckpointsInSql(c, sqlite, events, t, runs, files, n);
  lap("checkpoints (SQL), files");
  checkEvaluationsInSql(c, sqlite, events, t, n);
  lap("evaluations (SQL)");
  checkDocuments(c, events, t);
  checkRegistry(c, events, t, files);
  checkApprovals(c, events, t);
  lap("documents, registry, approvals");
  const { state } = checkRunDerivedPart(sqlite, n);
  lap("(content worker's part alone)");
  sqlite.prepare("COMMIT").run();
  process.stdout.write(`${n} events: content ${c.level().ok ? "intact" : "FAILED"}, ${c.checked} facts (worker part ${state.checked})\n`);
} else if (process.argv[1]?.endsWith("bench-content.ts")) {
  const sizes = process.argv
    .slice(2)
    .map(Number)
    .filter((x) => x > 0);
  for (const f of benchContent(sizes.length ? sizes : undefined)) process.stdout.write(`${f.name}: ${f.value} ${f.unit}\n`);
}
