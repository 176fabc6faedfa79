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
 */
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
