/**
 * Content check of the model registry: models (name; description and approvals required after every model.update,
 * a description changed through the tracking API being a model.update { field: "description" }),
 * model versions (model, number, run, checkpoint, weights sha256 against the event AND the checkpoint, the weights
 * file re-hashed) and alias moves (each model_alias_events row has its alias.move event with the same model, alias,
 * version and promotion request, and no row exists without an event or event without a row).
 */
import type { ContentChecker } from "./checker";
import { changedLater, checkCreations, compareActor } from "./creations";
import { checkArtifact } from "./check-checkpoints";
import type { ArtifactHasher } from "./artifact-files";
import type { EventSource } from "./ledger-events";
import type { Tables } from "./tables";

export function checkRegistry(c: ContentChecker, events: EventSource, t: Tables, files: ArtifactHasher | null): void {
  // The latest description each model's events leave: its model.create, then model.update { field: "description" }.
  const describedLater = new Map<number, { value: unknown; seq: number }>();
  for (const ev of events.byAction("model.update")) {
    try {
      const p = JSON.parse(ev.payload) as { field?: string; after?: unknown };
      if (p.field === "description") describedLater.set(Number(ev.entityId), { value: p.after, seq: ev.seq });
    } catch {
      // reported below with the approvals
    }
  }
  const created = checkCreations(c, events, {
    entityType: "model",
    action: "model.create",
    rows: t.models,
    complete: t.complete,
    check: (m, ev, p) => {
      const later = describedLater.get(m.id);
      c.compareFields("model", m.id, ev, p, [
        ["name", m.name, "model name"],
        ...(later ? [] : ([["description", m.description, "model description"]] as const)),
        ["createdAt", m.createdAt, "model creation time"],
      ]);
      if (later && !changedLater(events, ["model.update"], m.id))
        c.compare("model", m.id, "model description", later.value, m.description, later.seq);
      compareActor(c, "model", m.id, ev, m.createdBy);
    },
  });
  const approvals = new Map<number, { value: unknown; seq: number }>();
  for (const [id, { ev, payload }] of created) approvals.set(id, { value: payload?.approvalsRequired, seq: ev.seq });
  for (const ev of events.byAction("model.update")) {
    try {
      const p = JSON.parse(ev.payload) as { field?: string; after?: unknown };
      if (p.field === "approvalsRequired") approvals.set(Number(ev.entityId), { value: p.after, seq: ev.seq });
    } catch {
      c.problem({
        entityType: "model",
        entityId: ev.entityId,
        field: "payload",
        recorded: ev.payload,
        found: null,
        seq: ev.seq,
        message: `event #${ev.seq} (model.update) has a payload that is not JSON`,
      });
    }
  }
  for (const [id, a] of approvals) {
    const m = t.models.get(id);
    if (m && !changedLater(events, ["model.update"], id))
      c.compare("model", id, "approvals required for production", a.value, m.approvalsRequired, a.seq);
  }

  checkCreations(c, events, {
    entityType: "modelVersion",
    action: "modelVersion.create",
    rows: t.modelVersions,
    complete: t.complete,
    check: (v, ev, p) => {
      const ck = t.checkpoints.get(v.checkpointId);
      c.compareFields("modelVersion", v.id, ev, p, [
        ["model", t.models.get(v.modelId)?.name ?? null, "model"],
        ["modelId", v.modelId, "model id"],
        ["version", v.version, "version number"],
        ["runId", v.runId, "run"],
        ["checkpointId", v.checkpointId, "checkpoint"],
        ["weightsSha256", v.weightsSha256, "weights sha256"],
        ["createdAt", v.createdAt, "registration time"],
      ]);
      if (ck) {
        c.compare("modelVersion", v.id, "weights sha256 of its checkpoint", p.weightsSha256, ck.sha256, ev.seq);
        if ("epoch" in p) c.compare("modelVersion", v.id, "checkpoint epoch", p.epoch, ck.epoch, ev.seq);
        c.compare("modelVersion", v.id, "run of its checkpoint", v.runId, ck.runId, ev.seq);
      } else if (t.complete) {
        c.problem({
          entityType: "modelVersion",
          entityId: String(v.id),
          field: "checkpoint",
          recorded: String(p.checkpointId),
          found: null,
          seq: ev.seq,
          message: `model version ${v.id} points at checkpoint ${v.checkpointId}, which does not exist`,
        });
      }
      compareActor(c, "modelVersion", v.id, ev, v.createdBy, "registered by");
      checkArtifact(c, files, "modelVersion", v.id, "weights file", p.weightsSha256, undefined, ev.seq);
    },
  });

  // Alias moves, in id order per (model, alias), so each move's "from" is the previous row's version.
  const previous = new Map<string, number | null>();
  const fromOf = new Map<number, number | null>();
  for (const a of [...t.aliasMoves.values()].sort((x, y) => x.id - y.id)) {
    const key = `${a.modelId}\u0000${a.alias}`;
    fromOf.set(a.id, previous.get(key) ?? null);
    previous.set(key, a.modelVersionId);
  }
  checkCreations(c, events, {
    entityType: "aliasMove",
    action: "alias.move",
    rows: t.aliasMoves,
    complete: t.complete,
    idOf: (_ev, p) => (typeof p.aliasEventId === "number" ? p.aliasEventId : null),
    check: (a, ev, p) => {
      const v = a.modelVersionId === null ? null : t.modelVersions.get(a.modelVersionId);
      c.compare("aliasMove", a.id, "model", Number(ev.entityId), a.modelId, ev.seq);
      c.compareFields("aliasMove", a.id, ev, p, [
        ["model", t.models.get(a.modelId)?.name ?? null, "model name"],
        ["alias", a.alias, "alias"],
        ["toModelVersionId", a.modelVersionId, "model version"],
        ["version", v ? v.version : null, "version number"],
        ["promotionRequestId", a.promotionRequestId, "promotion request"],
        ["createdAt", a.createdAt, "move time"],
      ]);
      if (t.complete) c.compare("aliasMove", a.id, "previous version of the alias", p.fromModelVersionId, fromOf.get(a.id) ?? null, ev.seq);
      compareActor(c, "aliasMove", a.id, ev, a.movedBy, "moved by");
    },
  });
}
