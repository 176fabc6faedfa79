/**
 * Content-verification benchmark: builds a content-consistent ledger (bench-ledger.ts) of about `events` events with
 * a valid hash chain in a temporary data directory, then times checkContent alone (the chain pass is verify-core's
 * figure). Composition per run (default): 20 checkpoints (one per epoch), 40 metric points, 26 run_params rows,
 * 25 events; so 1M events = 40k runs, 800k checkpoints, 1.6M metric points, 1M run_params rows, 256 weight files. Returns bench figures; the temp directory is removed. A clean result is asserted, so a fast but wrong
 * check cannot pass. Run alone: `npx tsx server/audit/content/bench-content.ts 1000000`; per part on a kept database
 * (e.g. one bench/audit.ts built): `npx tsx server/audit/content/bench-content.ts --parts DIR`; the floors of a full verification
 * on such a database (what SQLite alone, reading the log into JavaScript and hashing it cost): `--floors DIR`.
 */
import Database from "better-sqlite3";
import crypto from "node:crypto";
import fs from "node:fs";
import os from "node:os";
import path from "node:path";
import { openDatabase } from "@/db/client";
import { canonicalJson } from "@/contracts/canonical";
import { ChainHasher, recomputeLeafHash } from "@/server/audit/event-hashing";
import { GENESIS_CHAIN_HASH } from "@/server/audit/ledger";
import { scanDatabaseRange, VERIFY_MMAP_BYTES } from "@/server/audit/verify-range";
import { loadAuditNative } from "@/server/audit/native-range";
import { buildBenchContentLedger, eventsPerBenchRun, type BenchEvent } from "./bench-ledger";
import { checkContent } from "./verify-content";
import { checkRunDerivedPartStreaming } from "./run-derived-part";
import { ContentChecker } from "./checker";
import { ArtifactHasher, storeArtifactPath } from "./artifact-files";
import { sqliteEventSource } from "./ledger-events";
import { bulkEventCompactor } from "./bulk-events";
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
  sqlite.pragma(`mmap_size = ${VERIFY_MMAP_BYTES}`); // as verifyDatabase reads
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
  const native = loadAuditNative(sqlite);
  const t = loadTables(sqlite, { checkpoints: "referenced", evaluations: "cited", texts: native ? "lazy" : "eager" });
  const withRun = decisionsCreatedWithRuns(t);
  lap("tables");
  const events = sqliteEventSource(
    sqlite,
    n,
    ["checkpoint.create", "evaluation.create"],
    (source) => bulkEventCompactor(t, withRun, source),
    native,
  );
  lap("events (by action, matched)");
  checkPeople(c, events, t);
  checkData(c, events, t, files);
  lap("people, data");
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
  const { state } = checkRunDerivedPartStreaming(sqlite, n); // as the content worker runs it
  lap("(content worker's part alone)");
  sqlite.prepare("COMMIT").run();
  process.stdout.write(`${n} events: content ${c.level().ok ? "intact" : "FAILED"}, ${c.checked} facts (worker part ${state.checked})\n`);
} else if (process.argv[1]?.endsWith("bench-content.ts") && process.argv[2] === "--floors") {
  // CPU floors of a full verification on a kept database, one thread, read-only: --floors DIR. What SQLite alone costs
  // to read the rows the content check reads (aggregates: no JavaScript value per row), what reading the log into
  // JavaScript costs as the range scan reads it, the range scan itself (chain, leaf and tree hashes, canonical form),
  // and the SHA-256 calls a chain needs (a leaf per event, a chain link per event, about one tree node per event).
  const sqlite = new Database(path.join(process.argv[3]!, "runledger.sqlite"), { readonly: true, fileMustExist: true });
  sqlite.pragma(`mmap_size = ${VERIFY_MMAP_BYTES}`);
  sqlite.prepare("BEGIN").run();
  const n = sqlite.prepare("SELECT max(seq) FROM audit_events").pluck().get() as number;
  const lap = (name: string, f: () => unknown) => {
    const cpu = process.cpuUsage();
    const out = f();
    const c = process.cpuUsage(cpu);
    process.stdout.write(`${name.padEnd(52)} cpu ${((c.user + c.system) / 1e6).toFixed(2).padStart(6)} s  ${JSON.stringify(out)}\n`);
  };
  const agg = (sql: string) => () => sqlite.prepare(sql).raw(true).get();
  lap(
    "sql: audit_events (all columns)",
    agg("SELECT count(*), sum(length(payload) + length(at) + length(action) + length(leaf_hash)) FROM audit_events"),
  );
  lap("sql: runs", agg("SELECT count(*), sum(length(config_json) + ifnull(length(environment_json), 0) + length(name)) FROM runs"));
  lap("sql: run_params", agg("SELECT count(*), sum(length(key)), sum(length(value_text)), sum(value_num) FROM run_params"));
  lap("sql: metrics, summaries, rollups", () => [
    agg("SELECT count(*), sum(value) FROM metrics")(),
    agg("SELECT count(*), sum(last) FROM metric_summaries")(),
    agg("SELECT count(*), sum(min_value) FROM metric_rollups")(),
  ]);
  lap("sql: checkpoints, evaluations, decisions", () => [
    agg("SELECT count(*), sum(length(sha256) + length(metrics_json)) FROM checkpoints")(),
    agg("SELECT count(*), sum(length(metrics_json)) FROM evaluations")(),
    agg("SELECT count(*), sum(length(rationale)) FROM decisions")(),
  ]);
  lap("js: the log read as the range scan reads it", () => {
    const chunk = sqlite
      .prepare(
        "SELECT seq, at, actor_id, actor_name, role, action, entity_type, entity_id, payload, leaf_hash, chain_hash FROM audit_events WHERE seq >= ? ORDER BY seq LIMIT 1024",
      )
      .raw(true);
    let rows = 0;
    for (let from = 1; ;) {
      const got = chunk.all(from) as [number][];
      rows += got.length;
      if (got.length < 1024) return rows;
      from = got[got.length - 1]![0] + 1;
    }
  });
  lap("js: the range scan (one thread, whole log)", () => {
    const r = scanDatabaseRange(
      sqlite,
      { from: 1, to: n, prevChainHex: null, sizes: [], checkpoints: [], coveredUpTo: n, watchActions: [], watchSeqs: [] },
      n,
    );
    return { leaves: r.leaves, problem: r.problem };
  });
  const avgBody = Math.round((sqlite.prepare("SELECT avg(length(payload)) FROM audit_events").pluck().get() as number) + 170);
  lap(`js: ${n} sha256 of ${avgBody}-char strings + ${2 * n} of 64 bytes`, () => {
    const body = "\u0000" + "x".repeat(avgBody - 8);
    const pair = Buffer.alloc(64);
    let h = "";
    for (let i = 0; i < n; i++) {
      h = crypto.hash("sha256", body + String(i).padStart(7, "0"), "hex");
      pair[0] = i & 0xff;
      h = crypto.hash("sha256", pair, "hex");
      pair[1] = i & 0xff;
      h = crypto.hash("sha256", pair, "hex");
    }
    return h.length;
  });
  sqlite.prepare("COMMIT").run();
  sqlite.close();
} else if (process.argv[1]?.endsWith("bench-content.ts")) {
  const sizes = process.argv
    .slice(2)
    .map(Number)
    .filter((x) => x > 0);
  for (const f of benchContent(sizes.length ? sizes : undefined)) process.stdout.write(`${f.name}: ${f.value} ${f.unit}\n`);
}
