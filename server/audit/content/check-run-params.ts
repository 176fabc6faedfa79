/**
 * Values derived from a run's config, checked against the config (itself checked against the ledger's
 * configSha256): the seed column and the run_params rows (the flattened config the runs explorer filters and sorts
 * by). The run_params rows are streamed once in (run, key) order; each run's config is parsed once.
 *
 * Invariant: only runs whose run.create event was found are judged (the config of any other run is unverified).
 */
import type Database from "better-sqlite3";
import { flattenConfig } from "@/contracts/training-config";
import { runParamValue } from "./records";
import type { ContentChecker } from "./checker";
import type { Created } from "./creations";
import type { Tables } from "./tables";

export type RunParamRow = [runId: number, key: string, valueText: string | null, valueNum: number | null];

export function sqliteRunParams(sqlite: Database.Database): Iterable<RunParamRow> {
  return sqlite.prepare("SELECT run_id, key, value_text, value_num FROM run_params ORDER BY run_id, key").raw(true).iterate() as IterableIterator<RunParamRow>;
}

type Param = { valueText: string | null; valueNum: number | null };

/** `rows` null: the source holds no run_params (a bundle); only the seed is checked then. */
export function checkRunDerivedValues(c: ContentChecker, t: Tables, created: Created, rows: Iterable<RunParamRow> | null): void {
  const expectedOf = (runId: number): { params: Map<string, Param>; seq: number } | null => {
    const run = t.runs.get(runId);
    const ev = created.get(runId)?.ev;
    if (!run || !ev) return null;
    let config: unknown;
    try {
      config = JSON.parse(run.configJson) as unknown;
    } catch {
      return null; // the config hash check already failed
    }
    const seed = (config as { training?: { seed?: unknown } } | null)?.training?.seed ?? null;
    c.checked++;
    if (seed !== run.seed) c.derived("run", runId, "seed", "its config gives", seed, run.seed, ev.seq);
    const params = new Map<string, Param>();
    for (const [key, v] of Object.entries(flattenConfig(config))) params.set(key, runParamValue(v));
    return { params, seq: ev.seq };
  };
  const missing = (runId: number, e: { params: Map<string, Param>; seq: number }) => {
    for (const [key, want] of e.params) c.derived("run", runId, `run_params ${key}`, "its config gives", want, null, e.seq);
  };
  const done = new Set<number>();
  if (rows !== null) {
    let runId = -1;
    let e: { params: Map<string, Param>; seq: number } | null = null;
    for (const [r, key, valueText, valueNum] of rows) {
      if (r !== runId) {
        if (e) missing(runId, e);
        runId = r;
        done.add(r);
        e = expectedOf(r);
      }
      if (!e) continue;
      const want = e.params.get(key);
      e.params.delete(key);
      c.checked++;
      if (want ? want.valueText === valueText && want.valueNum === valueNum : valueText === null && valueNum === null) continue; // (null, null): an undefined config value, dropped from the canonical text
      c.derived("run", r, `run_params ${key}`, "its config gives", want ?? null, { valueText, valueNum }, e.seq);
    }
    if (e) missing(runId, e);
  }
  for (const runId of created.keys()) {
    if (done.has(runId)) continue;
    const e = expectedOf(runId);
    if (e && rows !== null) missing(runId, e);
  }
}
