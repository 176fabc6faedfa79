/**
 * Content check of runs: each run row against run.create (config hash recomputed from the stored config text, name,
 * origin, parents, experiment, author, time), run.start (backend, environment, memory, data), the end event
 * (status, final weights, time) and run.fail (error); the row's status against the latest lifecycle event; the
 * seed and run_params rows derived from the config; the name and description against the latest run.annotate of
 * each field (server/runs/annotate.ts), the name at creation being the first annotate's `from`.
 *
 * Invariant: the config hash is sha256 of the stored canonical text; a stored text that is not canonical but
 * denotes the same value is accepted (its canonical form is hashed).
 */
import { sha256Canonical } from "@/contracts/canonical";
import { isCanonicalJsonText } from "../canonical-scan";
import { sha256Hex } from "./records";
import { decisionRecordSha256 } from "./records";
import { CanonicalText, type ContentChecker, type EventRef, parsePayload } from "./checker";
import { changedLater, checkCreations, compareActor, type Created } from "./creations";
import { ParsedEndEvent, RowMatchedEvent } from "./matched-events";
import { RunIdKeyed } from "./run-id-keyed";
import type { EventSource } from "./ledger-events";
import type { DecisionRow, RunRow, Tables } from "./tables";

export type RunEnd = { ev: EventRef; payload: Record<string, unknown> };
export type RunLedger = {
  /** run.create events whose run row exists (payload null: it matched the row's text exactly, decisions included). */
  created: Created;
  /** Every run.create event, by run id (also of runs whose row is gone). */
  createEvents: Map<number, { ev: EventRef; payload: Record<string, unknown> | null }>;
  /** The run.complete / run.cancel / run.fail event of each run that has one (the last). */
  ends: Map<number, RunEnd>;
};

const j = JSON.stringify;

/** The initial and change decisions of a run, in id order (decisionsCreatedWithRuns, or the same computed on demand). */
export type RunDecisions = { get(runId: number): readonly DecisionRow[] | undefined };

/**
 * decisionsCreatedWithRuns(t), computed when first asked for: the decisions table is then read only if a check
 * needs it (tables.ts `decisions: "onDemand"`; not when check-decisions-sql.ts judges them inside SQLite).
 */
export function decisionsCreatedWithRunsOnDemand(t: Pick<Tables, "decisions">): RunDecisions {
  let byRun: Map<number, DecisionRow[]> | null = null;
  return { get: (runId) => (byRun ??= decisionsCreatedWithRuns(t)).get(runId) };
}

/** Initial and change decisions of each run (written with its run.create), in id order. */
export function decisionsCreatedWithRuns(t: Pick<Tables, "decisions">): Map<number, DecisionRow[]> {
  const out = new Map<number, DecisionRow[]>();
  for (const d of t.decisions.values()) {
    if (d.kind !== "initial" && d.kind !== "change") continue;
    const l = out.get(d.runId);
    if (l) l.push(d);
    else out.set(d.runId, [d]);
  }
  for (const l of out.values()) l.sort((a, b) => a.id - b.id);
  return out;
}

/**
 * The run.create payload text the row calls for (current format), given the run's name at creation and its
 * recomputed config hash (the name comes apart: rows may be lazy-texts.ts rows, whose getters a spread would drop).
 */
function runCreateText(r: RunRow, name: string, configSha256: string, decisions: readonly DecisionRow[]): string {
  const refs = decisions
    .map((d) => `{"id":${d.id},"kind":${j(d.kind)},"path":${j(d.path)},"sha256":"${decisionRecordSha256(d)}"}`)
    .join(",");
  return `{"configSha256":"${configSha256}","createdAt":${j(r.createdAt)},"decisions":[${refs}],"experimentId":${r.experimentId},"name":${j(name)},"origin":${j(r.origin)},"parentCheckpointId":${r.parentCheckpointId},"parentRunId":${r.parentRunId}}`;
}

export function runStartText(r: RunRow): string {
  return `{"backend":${j(r.backend)},"backendReason":${j(r.backendReason)},"datasetVersionId":${r.datasetVersionId},"environment":${r.environmentJson ?? "null"},"memorySha256":${r.memoryJson === null ? "null" : `"${sha256Hex(r.memoryJson)}"`},"paramCount":${r.paramCount},"splitId":${r.splitId},"startedAt":${j(r.startedAt)}}`;
}

function configHash(configJson: string): { text: string; config: unknown } {
  const text = sha256Hex(configJson);
  try {
    return { text, config: JSON.parse(configJson) as unknown };
  } catch {
    return { text, config: undefined };
  }
}

function checkConfig(c: ContentChecker, run: RunRow, ev: EventRef, recorded: unknown): unknown {
  const h = configHash(run.configJson);
  let found = h.text;
  if (recorded !== found && h.config !== undefined) {
    const canonical = sha256Canonical(h.config);
    if (canonical === recorded) found = canonical; // same value, other spelling
  }
  c.compare("run", run.id, "config (sha256 of the stored config)", recorded, found, ev.seq);
  c.compare("run", run.id, "config_sha256 column", recorded, run.configSha256, ev.seq);
  return h.config;
}

export const END_ACTIONS = ["run.complete", "run.cancel", "run.fail"] as const;
const ANNOTATE = ["run.annotate"] as const;
export const LIFECYCLE_ACTIONS = ["run.start", "run.interrupted", ...END_ACTIONS] as const;

/** Per "runId:field", the first `from` and the last `to` of the run.annotate events (in seq order). */
type Annotation = { firstFrom: unknown; lastTo: unknown; lastSeq: number };
export type RunAnnotations = Map<string, Annotation>;
export function annotations(c: ContentChecker, events: EventSource): RunAnnotations {
  const out = new Map<string, Annotation>();
  for (const ev of events.byAction("run.annotate")) {
    const p = parsePayload(c, "run", ev.entityId, ev);
    if (!p || typeof p.field !== "string") continue;
    const key = `${ev.entityId}:${p.field}`;
    const a = out.get(key);
    if (a) Object.assign(a, { lastTo: p.to, lastSeq: ev.seq });
    else out.set(key, { firstFrom: p.from, lastTo: p.to, lastSeq: ev.seq });
  }
  return out;
}

/** The name run.create recorded: before any rename, the row's; after, the first rename's `from`. */
function nameAtCreate(annotated: RunAnnotations, run: RunRow): string {
  const a = annotated.get(`${run.id}:name`);
  return a && typeof a.firstFrom === "string" ? a.firstFrom : run.name;
}

/** run.create's fast path: the stored config hashes to its column and the payload is exactly the text the row calls for. */
export function runCreateMatches(run: RunRow, payload: string, annotated: RunAnnotations, withRun: RunDecisions): boolean {
  const sha = sha256Hex(run.configJson);
  return sha === run.configSha256 && payload === runCreateText(run, nameAtCreate(annotated, run), sha, withRun.get(run.id) ?? []);
}

export function checkRuns(c: ContentChecker, events: EventSource, t: Tables, withRun: RunDecisions): RunLedger {
  const annotated = annotations(c, events);
  // (the row's current name is judged against the last rename below)
  const created = checkCreations(c, events, {
    entityType: "run",
    action: "run.create",
    rows: t.runs,
    complete: t.complete,
    fast: (run, ev) => {
      // A RowMatchedEvent passed this same test when the log was read (bulk-events.ts).
      if (!(ev instanceof RowMatchedEvent) && !runCreateMatches(run, ev.payload, annotated, withRun)) return false;
      c.checked += 8;
      return true;
    },
    always: (run, ev) => compareActor(c, "run", run.id, ev, run.createdBy),
    check: (run, ev, p) => {
      checkConfig(c, run, ev, p.configSha256);
      c.compareFields("run", run.id, ev, p, [
        ["experimentId", run.experimentId, "experiment"],
        ["name", nameAtCreate(annotated, run), "run name"],
        ["origin", run.origin, "origin"],
        ["parentRunId", run.parentRunId, "parent run"],
        ["parentCheckpointId", run.parentCheckpointId, "parent checkpoint"],
        ["createdAt", run.createdAt, "run creation time"],
      ]);
    },
  });

  // The last run.start of each run (by entity id), the only one compared below.
  const lastStart = new RunIdKeyed<EventRef>();
  for (const ev of events.byAction("run.start")) lastStart.setText(ev.entityId, ev);
  const lifecycle = [
    ...END_ACTIONS.flatMap((a) => events.byAction(a)),
    ...events.byAction("run.start"),
    ...events.byAction("run.interrupted"),
    ...events.byAction("run.interventionApplied"),
  ].sort((a, b) => a.seq - b.seq);
  const lastStatus = new RunIdKeyed<{ status: string; seq: number }>();
  for (const [id, { ev }] of created) lastStatus.setId(id, { status: "queued", seq: ev.seq });
  const ends = new Map<number, RunEnd>();
  for (const ev of lifecycle) {
    if (ev.action === "run.start") {
      lastStatus.setText(ev.entityId, { status: "running", seq: ev.seq });
      continue;
    }
    if (ev.action === "run.interrupted") {
      // The process training it died (server/runs/orchestrator/orchestrator.ts recoverInterrupted); a resume is a run.start.
      lastStatus.setText(ev.entityId, { status: "interrupted", seq: ev.seq });
      continue;
    }
    if (ev.action === "run.interventionApplied") {
      // A pause taking effect parks a queued or running run as "paused" (server/runs/pilot.ts); its resume is a run.start.
      const p = ev.payload.includes('"kind":"pause"') ? parsePayload(c, "intervention", ev.entityId, ev) : null;
      const runId = p && typeof p.runId === "number" ? p.runId : null;
      const last = runId === null ? undefined : lastStatus.getId(runId);
      if (runId !== null && p?.kind === "pause" && (last?.status === "running" || last?.status === "queued"))
        lastStatus.setId(runId, { status: "paused", seq: ev.seq });
      continue;
    }
    const p = ev instanceof ParsedEndEvent ? ev.parsed : parsePayload(c, "run", ev.entityId, ev);
    if (!p) continue;
    lastStatus.setText(ev.entityId, { status: ev.action === "run.fail" ? "failed" : String(p.status), seq: ev.seq });
    ends.set(Number(ev.entityId), { ev, payload: p }); // also for a run whose row is gone: its checkpoints' best flags still follow it
  }
  // Every run.create event, also of runs whose row is gone (their decisions are still judged against it).
  const createEvents: RunLedger["createEvents"] = new Map();
  for (const ev of events.byAction("run.create")) {
    const hit = created.get(Number(ev.entityId));
    if (hit) createEvents.set(Number(ev.entityId), hit);
    else {
      const payload = parsePayload(c, "run", ev.entityId, ev);
      if (payload) createEvents.set(Number(ev.entityId), { ev, payload });
    }
  }

  for (const run of t.runs.values()) {
    // Name and description: the latest run.annotate of each field, else run.create's name (checked above) and "".
    if (!changedLater(events, ANNOTATE, run.id)) {
      // (no key text made per run when nothing was annotated)
      const name = annotated.size === 0 ? undefined : annotated.get(`${run.id}:name`);
      if (name) c.compare("run", run.id, "run name (latest run.annotate)", name.lastTo, run.name, name.lastSeq);
      const description = annotated.size === 0 ? undefined : annotated.get(`${run.id}:description`);
      c.compare("run", run.id, "run description", description ? description.lastTo : "", run.description, description?.lastSeq ?? null);
    }
    if (changedLater(events, LIFECYCLE_ACTIONS, run.id)) continue; // the row shows a state the verified events do not reach
    const start = lastStart.getId(run.id);
    if (start && (start instanceof RowMatchedEvent || start.payload === runStartText(run))) {
      c.cover("run", run.id, start.seq);
      c.checked += 8;
    } else if (start) {
      const p = parsePayload(c, "run", run.id, start);
      if (p) {
        c.compareFields("run", run.id, start, p, [
          ["backend", run.backend, "backend"],
          ["backendReason", run.backendReason, "backend reason"],
          ["environment", run.environmentJson === null ? null : new CanonicalText(run.environmentJson), "training environment"],
          ["paramCount", run.paramCount, "parameter count"],
          ["memorySha256", run.memoryJson === null ? null : sha256Hex(run.memoryJson), "memory estimate"],
          ["datasetVersionId", run.datasetVersionId, "dataset version of the run"],
          ["splitId", run.splitId, "split of the run"],
          ["startedAt", run.startedAt, "start time"],
        ]);
      }
    } else if (t.complete && created.has(run.id) && (run.startedAt !== null || run.backend !== null)) {
      c.problem({
        entityType: "run",
        entityId: String(run.id),
        field: "start",
        recorded: null,
        found: run.startedAt,
        seq: null,
        message: `run ${run.id} shows a start (${run.startedAt ?? run.backend}) but the ledger has no run.start event`,
      });
    }
    const end = ends.get(run.id);
    if (end) {
      const { ev, payload: p } = end;
      if (ev.action === "run.fail") {
        c.compareFields("run", run.id, ev, p, [
          ["error", run.error === null ? null : run.error.slice(0, 2000), "error message"],
          ["errorSha256", run.error === null ? null : sha256Hex(run.error), "full error message"],
          ["finishedAt", run.finishedAt, "end time"],
        ]);
      } else {
        c.compareFields("run", run.id, ev, p, [
          ["weightsSha256", run.finalWeightsSha256, "final weights sha256"],
          ["finishedAt", run.finishedAt, "end time"],
        ]);
      }
    }
    const status = lastStatus.getId(run.id);
    if (status) c.compare("run", run.id, "status", status.status, run.status, status.seq);
  }
  return { created, createEvents, ends };
}

/**
 * The end event fields read where the run-derived checks do not run (verify-content.ts with the run-derived part
 * elsewhere): checkRuns' status and compared fields, and bestCheckpointId for check-checkpoints*.ts.
 */
export const CHECKED_END_FIELDS = ["bestCheckpointId", "error", "errorSha256", "finishedAt", "status", "weightsSha256"] as const;

/** The members of an end payload `o` named in `keys`, each present only where `o` has it (checks tell a missing member from a null one). */
export function membersOf(o: Record<string, unknown>, keys: readonly string[]): Record<string, unknown> {
  const kept: Record<string, unknown> = {};
  for (const key of keys) if (Object.hasOwn(o, key)) kept[key] = o[key];
  return kept;
}

/** The end event fields the run-derived checks read (check-metrics.ts; bestCheckpointId for check-checkpoints*.ts). */
const DERIVED_END_FIELDS = ["metricsSha256", "metricPointsSha256", "metricPoints", "finalMetrics", "bestCheckpointId"] as const;

/**
 * The parts of checkRuns' RunLedger that the run-derived checks (run_params, metric series) need, rebuilt from the
 * events and run rows alone, without comparing anything: so those checks can run in a worker thread of their own
 * (verify-content-parts.ts) while checkRuns runs elsewhere. Same values as checkRuns returns:
 * - created: per run row, its first run.create event whose payload is a JSON object (checkCreations takes the first
 *   such event; its fast path only accepts payloads that are exactly the canonical text, which are objects);
 * - ends: per run id, the last run.complete / run.cancel / run.fail event (in seq order) whose payload is an object.
 * Problems (unreadable payloads) are not reported here: checkRuns reports them.
 *
 * Fed one event at a time (run.create and end events, each kind in seq order), so a reader can stream the events
 * without keeping them (ledger-events.ts streamEvents). A created run keeps its event without the payload text (the
 * derived checks read only its seq; not keeping ~400 bytes per run saves the garbage collector copying them); an
 * end keeps the fields of its parsed payload those checks read (DERIVED_END_FIELDS).
 */
export class DerivedRunLedgerBuilder {
  private readonly created: Created = new Map();
  private readonly ends = new Map<number, RunEnd>();

  constructor(private readonly runs: ReadonlyMap<number, unknown>) {}

  /**
   * `ev.action` is run.create or an end action; others are ignored. `knownObject`: the payload was found certainly
   * canonical JSON of an object without being read (ledger-events.ts streamEvents; ev.payload is "" then). `ev` must
   * be the caller's own fresh object, as streamEvents hands them: it may be kept, with its payload cleared.
   */
  add(ev: EventRef, knownObject = false): void {
    if (ev.action === "run.create") {
      const id = Number(ev.entityId);
      if (!this.runs.has(id) || this.created.has(id)) return;
      // Canonical text that opens with "{" is a JSON object (JSON.parse would give one); anything else is parsed.
      const p = ev.payload;
      // (`ev` is the caller's fresh object: kept as it is when its payload is unread, "" already.)
      // (A payload stored as a BLOB comes as a Buffer: JSON.parse reads its text, as checkRuns' parse does.)
      if (knownObject || (typeof p === "string" && p.charCodeAt(0) === 0x7b && isCanonicalJsonText(p)) || parsedObject(ev))
        this.created.set(id, { ev: knownObject ? ev : { ...ev, payload: "" }, payload: null });
    } else if ((END_ACTIONS as readonly string[]).includes(ev.action)) {
      if (knownObject) throw new Error("DerivedRunLedgerBuilder: an end event's payload is needed"); // (never asked unread)
      const payload = parsedObject(ev);
      if (!payload) return;
      // Only the fields the derived checks read are kept (a key's presence too: older events lack some); `ev` is
      // the caller's fresh object, kept without its text.
      ev.payload = "";
      this.ends.set(Number(ev.entityId), { ev, payload: membersOf(payload, DERIVED_END_FIELDS) });
    }
  }

  ledger(): RunLedger {
    return { created: this.created, createEvents: new Map(), ends: this.ends };
  }
}

function parsedObject(ev: EventRef): Record<string, unknown> | null {
  try {
    const v = JSON.parse(ev.payload) as unknown;
    return v && typeof v === "object" && !Array.isArray(v) ? (v as Record<string, unknown>) : null;
  } catch {
    return null;
  }
}
