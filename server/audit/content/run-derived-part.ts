/**
 * The run-derived part of the content check (verify-content.ts checkRunDerivedPart: the seed and run_params rows
 * against each run's config, the metric series against the end events) as the content worker runs it
 * (verify-content-worker.ts): the run configs are not loaded up front but read with each run's run_params rows
 * (check-run-params-json.ts; with the native extension, compared inside SQLite first), so only the run ids are kept.
 *
 * Invariant: the same result as checkRunDerivedPart on the same snapshot (findings, their order, facts counted,
 * notCovered; run-derived-part.test.ts compares them on tampered databases). Statements are prepared in the order
 * checkRunDerivedPart first reads each table, so a table or column that is not there stops the part with the same
 * message.
 */
import type Database from "better-sqlite3";
import { ContentChecker, couldNotFinish, type EventRef } from "./checker";
import { DerivedRunLedgerBuilder, type RunLedger } from "./check-runs";
import { replayRunEvents, type RecordedRunEvents } from "./run-events-feed";
import { streamEvents } from "./ledger-events";
import { checkRunDerivedValuesInDatabase, type RunParamsVia } from "./check-run-params-json";
import { checkMetrics, sqliteMetricSource } from "./check-metrics";
import { prefetchRunMetrics, type PrefetchedRunMetrics } from "./check-metrics-native";
import { loadAuditNative } from "../native-range";
import type { RunDerivedPartResult } from "./verify-content";

/** Actions the run-derived part reads. */
const RUN_DERIVED_ACTIONS: readonly string[] = ["run.create", "run.complete", "run.cancel", "run.fail"];

/**
 * `via`: how each run's run_params rows are compared first (checkRunDerivedValuesInDatabase; tests set it). `fed`:
 * waits for the run.create and end events the main thread's log scan read (run-events-feed.ts) and replays them;
 * null, or no `fed`, and the events are read here.
 */
export function checkRunDerivedPartStreaming(
  sqlite: Database.Database,
  uptoSeq: number,
  via: RunParamsVia = "native",
  fed?: () => RecordedRunEvents | null,
): RunDerivedPartResult {
  const c = new ContentChecker(false);
  try {
    sqlite.prepare("SELECT id, config_json, seed FROM runs LIMIT 0").all(); // (the columns checkRunDerivedPart loads first)
    // Run ids in table order (the order the metric series are judged in); checkMetrics reads only the keys.
    const runIds = new Map<number, null>();
    for (const id of sqlite.prepare("SELECT id FROM runs").pluck().iterate() as IterableIterator<number>) runIds.set(id, null);
    // run.create payloads SQLite finds certainly JSON objects are not read (all the builder needs to know of them).
    const native = (via === "native" || via === "native-indexed") && loadAuditNative(sqlite);
    const read = (events: RecordedRunEvents | null): RunLedger => {
      const b = new DerivedRunLedgerBuilder(runIds);
      const add = (ev: EventRef, knownObject: boolean) => b.add(ev, knownObject);
      if (events) replayRunEvents(events, add);
      else streamEvents(sqlite, uptoSeq, RUN_DERIVED_ACTIONS, add, native ? ["run.create"] : []);
      return b.ledger();
    };
    // Not fed: the events are read first, as always. Fed: the run_params pass over its table runs while the main
    // thread's log scan reads them, and they are asked for only then (or, null, read here then).
    // The metric series are digested inside SQLite meanwhile too.
    let runs: RunLedger | null = fed ? null : read(null);
    let metrics: PrefetchedRunMetrics | null = null;
    const ledger = (): RunLedger => {
      if (runs) return runs;
      if (native) metrics = prefetchRunMetrics(sqlite);
      return (runs = read(fed!()));
    };
    checkRunDerivedValuesInDatabase(c, sqlite, () => ledger().created, via);
    checkMetrics(c, { runs: runIds }, ledger(), sqliteMetricSource(sqlite, native, metrics));
  } catch (err) {
    couldNotFinish(c, err);
    return { state: c.exportState(), aborted: true };
  }
  return { state: c.exportState(), aborted: false };
}
