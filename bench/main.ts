/**
 * `npm run bench [-- PART]`: prints each figure as `name: value unit (target: …)` and writes them all to
 * bench-results.json. Parts: trainer (throughput and tracking overhead), overhead (the overhead alone), audit, runs, pilot
 * (live piloting on a real small run, and crash recovery: resume_overhead_s),
 * security (a production server under abuse; needs `npm run build` first; not in the default set),
 * mlflow (the tracking API over HTTP on a production server: ingest, get-history, runs/search; needs `npm run build`; not
 * in the default set), sweeps (sweep_overhead_pct: a sweep's trials through the sweep driver vs the same runs queued by
 * hand; several minutes; not in the default set), compress (size ratio and accuracy delta of each compression method on
 * the digits CNN; not in the default set), workers (queue_dispatch_ms and queue_to_start_ms: queued runs taken by an idle
 * training worker process, on SQLite and, with RUNLEDGER_BENCH_PG_URL, on PostgreSQL as the same names with _pg; not in
 * the default set)
 * (default: trainer, audit, runs). Speed targets live here, not in timed tests.
 *
 * The PostgreSQL figures (runs, audit and workers parts, named *_pg) run on RUNLEDGER_BENCH_PG_URL; when it is not
 * set, the bench starts the throwaway loopback cluster the tests use (scripts/pg-cluster.sh start: PostgreSQL 15+
 * from Debian's packages, installed if missing) and uses that. RUNLEDGER_BENCH_PG=0 skips them instead.
 */
import { spawnSync } from "node:child_process";
import fs from "node:fs";
import { printFigure, type Figure } from "./figures";

const PARTS: Record<string, () => Promise<Figure[]>> = {
  trainer: async () => {
    const t = await import("./trainer");
    return [...(await t.benchTrainerThroughput()), ...(await t.benchTrackingOverhead())];
  },
  overhead: async () => (await import("./trainer")).benchTrackingOverhead(),
  audit: async () => [...(await (await import("./audit")).benchAudit()), ...(await (await import("./witness")).benchWitness())],
  runs: async () => (await import("./runs")).benchRuns(),
  security: async () => (await import("./security")).benchSecurity(),
  pilot: async () => (await import("./pilot")).benchPilot(),
  mlflow: async () => (await import("./mlflow")).benchMlflow(),
  sweeps: async () => (await import("./sweeps")).benchSweeps(),
  compress: async () => (await import("./compress")).benchCompress(),
  workers: async () => (await import("./workers")).benchWorkers(),
};
/** The parts with PostgreSQL figures (*_pg), measured on RUNLEDGER_BENCH_PG_URL. */
const PARTS_WITH_PG = ["runs", "audit", "workers"];

/**
 * RUNLEDGER_BENCH_PG_URL for the parts that measure PostgreSQL too: as given, else the tests' throwaway cluster
 * (started here when it does not run). Without PostgreSQL the *_pg figures are reported as skipped, with the reason.
 */
function ensureBenchPgUrl(parts: string[]): void {
  if (process.env.RUNLEDGER_BENCH_PG_URL?.trim() || process.env.RUNLEDGER_BENCH_PG === "0") return;
  if (!parts.some((p) => PARTS_WITH_PG.includes(p))) return;
  process.stdout.write("# PostgreSQL: RUNLEDGER_BENCH_PG_URL is not set, starting the throwaway cluster (scripts/pg-cluster.sh start)\n");
  const started = spawnSync("bash", ["scripts/pg-cluster.sh", "start"], { encoding: "utf8", stdio: ["ignore", "pipe", "inherit"] });
  const url = started.stdout?.trim();
  if (started.status === 0 && url) process.env.RUNLEDGER_BENCH_PG_URL = url;
  else process.stdout.write(`# PostgreSQL: the cluster did not start (exit ${started.status}); the *_pg figures are skipped\n`);
}

/** Parts run only when named: they need a production build, or take minutes of training. */
const NOT_BY_DEFAULT = ["overhead", "security", "mlflow", "sweeps", "compress", "workers"];

async function main() {
  const wanted = process.argv.slice(2).filter((a) => !a.startsWith("-"));
  const unknown = wanted.filter((p) => !PARTS[p]);
  if (unknown.length) {
    process.stderr.write(`unknown part(s): ${unknown.join(", ")}; parts are: ${Object.keys(PARTS).join(", ")}\n`);
    process.exit(2);
  }
  const parts = wanted.length ? wanted : Object.keys(PARTS).filter((p) => !NOT_BY_DEFAULT.includes(p));
  ensureBenchPgUrl(parts);
  const previous = fs.existsSync("bench-results.json")
    ? ((JSON.parse(fs.readFileSync("bench-results.json", "utf8")) as { figures?: Figure[] }).figures ?? [])
    : [];
  const results: Figure[] = [];
  for (const part of parts) {
    process.stdout.write(`# ${part}\n`);
    for (const f of await PARTS[part]!()) {
      printFigure(f);
      results.push(f);
    }
  }
  // Keep figures of parts not run this time, so one file holds the latest of each.
  const merged = [...previous.filter((f) => !results.some((r) => r.name === f.name)), ...results];
  fs.writeFileSync(
    "bench-results.json",
    `${JSON.stringify({ measuredAt: new Date().toISOString(), machine: { cpus: (await import("node:os")).cpus().length, node: process.version }, figures: merged }, null, 2)}\n`,
  );
  process.exit(0);
}

void main();
