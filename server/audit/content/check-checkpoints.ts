/**
 * Content check of checkpoints and of the artifact files the ledger names: each checkpoint row against its
 * checkpoint.create event (run, epoch, step, sha256, bytes, metrics, time), its best flag against its run's end
 * event (bestCheckpointId), and the weights file's SHA-256 recomputed from its bytes (missing file = failure).
 * Datasets' stored bytes are checked the same way (check-data.ts uses `checkArtifact`).
 *
 * Speed: checkpoint.create is the most frequent content event, so the payload the row calls for is built as
 * canonical text and compared with the stored payload as a string; only a mismatch parses the payload.
 */
import { CanonicalText, type ContentChecker, type EventRef } from "./checker";
import { changedLater, checkCreations } from "./creations";
import { LIFECYCLE_ACTIONS } from "./check-runs";
import type { ArtifactHasher } from "./artifact-files";
import type { RunLedger } from "./check-runs";
import type { EventSource } from "./ledger-events";
import type { CheckpointRow, Tables } from "./tables";

/** The file named by `sha256` must exist and hash to it. */
export function checkArtifact(
  c: ContentChecker,
  files: ArtifactHasher | null,
  entityType: string,
  id: number,
  field: string,
  sha256: unknown,
  bytes: unknown,
  seq: number | null,
): void {
  if (!files || typeof sha256 !== "string" || !files.holds(sha256)) return;
  const d = files.digest(sha256);
  c.checked++;
  if (!d) {
    c.problem({
      entityType,
      entityId: String(id),
      field,
      recorded: sha256,
      found: null,
      seq,
      message: `${entityType} ${id}: ${field} ${sha256.slice(0, 12)}… is missing from the artifact store (deleted?)`,
    });
    return;
  }
  if (d.sha256 !== sha256) {
    c.problem({
      entityType,
      entityId: String(id),
      field,
      recorded: sha256,
      found: d.sha256,
      seq,
      message: `${entityType} ${id}: ${field} was replaced: the ledger${seq !== null ? ` (event #${seq})` : ""} recorded sha256 ${sha256}, the file's bytes hash to ${d.sha256}`,
    });
    return;
  }
  if (typeof bytes === "number" && d.bytes !== bytes) c.compare(entityType, id, `${field} size`, bytes, d.bytes, seq);
}

export function payloadText(r: CheckpointRow, withCreatedAt: boolean): string {
  return `{"bytes":${r.bytes},${withCreatedAt ? `"createdAt":${JSON.stringify(r.createdAt)},` : ""}"epoch":${r.epoch},"metrics":${r.metricsJson},"runId":${r.runId},"sha256":${JSON.stringify(r.sha256)},"step":${r.step}}`;
}

export const FIELDS = 7;

/** checkpoint.create events against their rows (fast text path, then field by field); rows without an event when `rows` is complete. */
export function checkCheckpointEvents(
  c: ContentChecker,
  events: EventSource,
  eventList: readonly EventRef[],
  rowsById: Map<number, CheckpointRow>,
  complete: boolean,
  judgeOrphans: boolean,
  files: ArtifactHasher | null,
): Map<number, EventRef> {
  const created = new Map<number, EventRef>();
  // Fast path: events whose payload is exactly what the row calls for.
  const slow: EventRef[] = [];
  for (const ev of eventList) {
    const r = rowsById.get(Number(ev.entityId));
    if (r && !created.has(r.id) && ev.payload === payloadText(r, true)) {
      created.set(r.id, ev);
      c.cover("checkpoint", r.id, ev.seq);
      c.checked += FIELDS + 1;
      checkArtifact(c, files, "checkpoint", r.id, "weights file", r.sha256, r.bytes, ev.seq);
    } else if (r && !created.has(r.id) && ev.payload === payloadText(r, false)) {
      created.set(r.id, ev);
      c.checked += FIELDS;
      c.gap(ev.action, "checkpoint creation time", ev.seq, "checkpoint", r.id);
      checkArtifact(c, files, "checkpoint", r.id, "weights file", r.sha256, r.bytes, ev.seq);
    } else slow.push(ev);
  }
  // Slow path: name the field that differs (and the missing rows / events).
  const rest = new Map([...rowsById].filter(([id]) => !created.has(id)));
  const slowSource: EventSource = { byAction: () => slow, laterEntityIds: (a) => events.laterEntityIds(a) };
  const checked = checkCreations(c, slowSource, {
    entityType: "checkpoint",
    action: "checkpoint.create",
    rows: rest,
    complete,
    judgeOrphans,
    check: (r, ev, p) => {
      c.compareFields("checkpoint", r.id, ev, p, [
        ["runId", r.runId, "run"],
        ["epoch", r.epoch, "epoch"],
        ["step", r.step, "step"],
        ["sha256", r.sha256, "weights sha256"],
        ["bytes", r.bytes, "weights size"],
        ["metrics", new CanonicalText(r.metricsJson), "metrics at the checkpoint"],
        ["createdAt", r.createdAt, "checkpoint creation time"],
      ]);
      checkArtifact(c, files, "checkpoint", r.id, "weights file", p.sha256, p.bytes, ev.seq);
    },
  });
  for (const [id, { ev }] of checked) created.set(id, ev);
  return created;
}

/** The best checkpoint each run's end event named (null: a run that has not ended, or failed, has none). */
export function bestCheckpointOf(runs: RunLedger, runId: number): unknown {
  const end = runs.ends.get(runId);
  return !end || end.ev.action === "run.fail" ? null : end.payload.bestCheckpointId;
}

/** All checkpoints in memory (bundles, and the report's export, which records which event covers each). */
export function checkCheckpoints(
  c: ContentChecker,
  events: EventSource,
  t: Tables,
  runs: RunLedger,
  files: ArtifactHasher | null,
): Map<number, EventRef> {
  const created = checkCheckpointEvents(c, events, events.byAction("checkpoint.create"), t.checkpoints, t.complete, true, files);
  // Best flags: exactly the checkpoint each run's end event named.
  for (const r of t.checkpoints.values()) {
    if (changedLater(events, LIFECYCLE_ACTIONS, r.runId)) continue;
    if (!t.complete && !t.runs.has(r.runId)) continue; // a bundle without the run: its end event is not at hand
    const best = bestCheckpointOf(runs, r.runId);
    const seq = runs.ends.get(r.runId)?.ev.seq ?? created.get(r.id)?.seq ?? null;
    c.compare("checkpoint", r.id, "best flag", best === r.id, r.isBest, seq);
  }
  return created;
}
