/**
 * Content check of sweeps (server/sweeps/): each sweeps row against its sweep.create (the spec's sha256 recomputed
 * from the stored spec text, experiment, name, method, author, time), max_trials against the last sweep.extend,
 * status against the last status event (create → running; pause, resume, stop, extend, complete: `to`), the winner
 * columns against the last sweep.chooseWinner; each sweep_trials row against its run's run.create (which names the
 * sweep and the trial index) and stopped_at_rung against sweep.stopTrial; a run of origin "sweep" without its
 * trial row. Live database only. Invariants: read only; a sweep with an event after the verified range is not judged.
 */
import type Database from "better-sqlite3";
import { sha256Canonical, sha256Hex } from "@/contracts/canonical";
import { type ContentChecker, type EventRef, parsePayload } from "./checker";
import { compareActor } from "./creations";
import type { EventSource } from "./ledger-events";

type Payload = Record<string, unknown>;
const STATUS_ACTIONS = ["sweep.pause", "sweep.resume", "sweep.stop", "sweep.extend", "sweep.complete"] as const;
const SWEEP_ACTIONS = ["sweep.create", ...STATUS_ACTIONS, "sweep.stopTrial", "sweep.chooseWinner"] as const;

type SweepRow = [
  id: number,
  experimentId: number,
  name: string,
  specJson: string,
  specSha256: string,
  method: string,
  maxTrials: number,
  status: string,
  createdBy: number,
  createdAt: string,
  winnerRunId: number | null,
  winnerChosenBy: number | null,
  winnerRationale: string | null,
  winnerChosenAt: string | null,
];

/** sha256 of the stored spec: of its canonical form when it parses (the column holds canonical text), else of the text. */
function specHash(text: string): string {
  try {
    return sha256Canonical(JSON.parse(text));
  } catch {
    return sha256Hex(text);
  }
}

export function checkSweeps(c: ContentChecker, events: EventSource, sqlite: Database.Database): void {
  const hasTable = sqlite.prepare("SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = 'sweeps'").get();
  if (!hasTable) return;
  const rows = sqlite
    .prepare(
      "SELECT id, experiment_id, name, spec_json, spec_sha256, method, max_trials, status, created_by, created_at, winner_run_id, winner_chosen_by, winner_rationale, winner_chosen_at FROM sweeps",
    )
    .raw(true)
    .all() as SweepRow[];
  const later = new Set(SWEEP_ACTIONS.flatMap((a) => [...events.laterEntityIds(a)]));
  const parse = (list: readonly EventRef[]) =>
    list.flatMap((ev) => {
      const p = parsePayload(c, "sweep", ev.entityId, ev);
      return p ? [{ ev, p }] : [];
    });
  const created = new Map(parse(events.byAction("sweep.create")).map((x) => [Number(x.ev.entityId), x]));
  const statusEvents = parse(STATUS_ACTIONS.flatMap((a) => events.byAction(a))).sort((a, b) => a.ev.seq - b.ev.seq);
  const winners = parse(events.byAction("sweep.chooseWinner")).sort((a, b) => a.ev.seq - b.ev.seq);
  const ids = new Set<number>();

  for (const [
    id,
    experimentId,
    name,
    specJson,
    specSha256,
    method,
    maxTrials,
    status,
    createdBy,
    createdAt,
    winnerRunId,
    winnerChosenBy,
    winnerRationale,
    winnerChosenAt,
  ] of rows) {
    ids.add(id);
    if (later.has(String(id))) continue;
    const cr = created.get(id);
    if (!cr) {
      c.rowWithoutEvent("sweep", id, "sweep.create");
      continue;
    }
    compareActor(c, "sweep", id, cr.ev, createdBy);
    c.compareFields("sweep", id, cr.ev, cr.p, [
      ["specSha256", specHash(specJson), "spec (sha256 of the stored spec)"],
      ["experimentId", experimentId, "experiment"],
      ["name", name, "sweep name"],
      ["method", method, "search method"],
      ["createdAt", createdAt, "sweep creation time"],
    ]);
    c.compare("sweep", id, "spec_sha256 column", cr.p.specSha256, specSha256, cr.ev.seq);
    let recordedStatus: unknown = "running";
    let recordedMax: unknown = cr.p.maxTrials;
    let seq = cr.ev.seq;
    for (const { ev, p } of statusEvents) {
      if (Number(ev.entityId) !== id) continue;
      recordedStatus = p.to;
      seq = ev.seq;
      if (ev.action === "sweep.extend") recordedMax = p.maxTrials;
    }
    c.compare("sweep", id, "status", recordedStatus, status, seq);
    c.compare("sweep", id, "budget (max trials)", recordedMax, maxTrials, seq);
    const w = winners.filter((x) => Number(x.ev.entityId) === id).at(-1);
    c.compare("sweep", id, "winner run", w ? w.p.runId : null, winnerRunId, w?.ev.seq ?? cr.ev.seq);
    c.compare("sweep", id, "winner rationale", w ? w.p.rationale : null, winnerRationale, w?.ev.seq ?? cr.ev.seq);
    c.compare("sweep", id, "winner chosen at", w ? w.p.chosenAt : null, winnerChosenAt, w?.ev.seq ?? cr.ev.seq);
    c.compare("sweep", id, "winner chosen by", w ? w.ev.actorId : null, winnerChosenBy, w?.ev.seq ?? cr.ev.seq);
  }
  for (const [id, { ev }] of created) if (!ids.has(id) && !later.has(String(id))) c.eventWithoutRow("sweep", id, ev);

  // Trials: each link row is what its run's run.create said (sweep, index); early stops are what sweep.stopTrial said.
  const trials = sqlite.prepare("SELECT sweep_id, trial_index, run_id, stopped_at_rung FROM sweep_trials").raw(true).all() as [
    number,
    number,
    number,
    number | null,
  ][];
  const runCreates = new Map<number, { ev: EventRef; p: Payload }>();
  for (const ev of events.byAction("run.create")) {
    if (!ev.payload.includes('"sweepId"')) continue;
    const p = parsePayload(c, "run", ev.entityId, ev);
    if (p) runCreates.set(Number(ev.entityId), { ev, p });
  }
  const stops = new Map(parse(events.byAction("sweep.stopTrial")).map((x) => [Number(x.p.runId), x]));
  const linked = new Set<number>();
  for (const [sweepId, trialIndex, runId, stoppedAtRung] of trials) {
    linked.add(runId);
    if (later.has(String(sweepId))) continue;
    const rc = runCreates.get(runId);
    if (!rc) {
      c.problem({
        entityType: "sweep",
        entityId: String(sweepId),
        field: `trial ${trialIndex}`,
        recorded: null,
        found: `run ${runId}`,
        seq: null,
        message: `sweep ${sweepId} lists run ${runId} as trial ${trialIndex}, but no run.create event says the sweep generated that run`,
      });
      continue;
    }
    c.compare("sweep", sweepId, `trial ${trialIndex} (run ${runId}): sweep`, rc.p.sweepId, sweepId, rc.ev.seq);
    c.compare("sweep", sweepId, `trial ${trialIndex} (run ${runId}): index`, rc.p.trialIndex, trialIndex, rc.ev.seq);
    const st = stops.get(runId);
    c.compare(
      "sweep",
      sweepId,
      `trial ${trialIndex} (run ${runId}): early stop rung`,
      st ? st.p.rung : null,
      stoppedAtRung,
      st?.ev.seq ?? rc.ev.seq,
    );
  }
  for (const [runId, { ev }] of runCreates)
    if (!linked.has(runId))
      c.problem({
        entityType: "run",
        entityId: String(runId),
        field: "sweep trial",
        recorded: ev.payload.length > 0 ? `sweep ${String((JSON.parse(ev.payload) as Payload).sweepId)}` : null,
        found: null,
        seq: ev.seq,
        message: `run ${runId} was generated by a sweep (event #${ev.seq}), but its sweep_trials row is missing`,
      });
}
