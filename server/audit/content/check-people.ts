/**
 * Content check of people and places: users (email, name, role: the names and roles the report and the UI print
 * come from here), projects and experiments (names), and run tags (the set the run.tag / run.untag events leave).
 *
 * Invariant: password hashes, sessions and the disabled flag are not recorded by the ledger (stated in notCovered).
 */
import type { ContentChecker } from "./checker";
import { checkCreations } from "./creations";
import type { EventSource } from "./ledger-events";
import type { Tables } from "./tables";

export function checkPeople(c: ContentChecker, events: EventSource, t: Tables): void {
  checkCreations(c, events, {
    entityType: "user",
    action: "user.create",
    rows: t.users,
    complete: t.complete,
    check: (u, ev, p) =>
      c.compareFields("user", u.id, ev, p, [
        ["email", u.email, "email"],
        ["name", u.name, "name"],
        ["role", u.role, "role"],
      ]),
  });
  checkCreations(c, events, {
    entityType: "project",
    action: "project.create",
    rows: t.projects,
    complete: t.complete,
    check: (r, ev, p) =>
      c.compareFields("project", r.id, ev, p, [
        ["name", r.name, "project name"],
        ["description", r.description, "project description"],
      ]),
  });
  // Renames through the tracking API (experiment.update {field: "name", from, to}, server/mlflow/experiments.ts):
  // experiment.create recorded the first rename's `from`; the row's name is the last rename's `to`.
  const renames = new Map<string, { firstFrom: unknown; lastTo: unknown; lastSeq: number }>();
  for (const ev of events.byAction("experiment.update")) {
    let p: { field?: unknown; from?: unknown; to?: unknown };
    try {
      p = JSON.parse(ev.payload) as typeof p;
    } catch {
      continue; // parsePayload reports it below
    }
    if (p.field !== "name") continue;
    const r = renames.get(ev.entityId);
    if (r) Object.assign(r, { lastTo: p.to, lastSeq: ev.seq });
    else renames.set(ev.entityId, { firstFrom: p.from, lastTo: p.to, lastSeq: ev.seq });
  }
  checkCreations(c, events, {
    entityType: "experiment",
    action: "experiment.create",
    rows: t.experiments,
    complete: t.complete,
    check: (r, ev, p) =>
      c.compareFields("experiment", r.id, ev, p, [
        ["projectId", r.projectId, "project"],
        ["name", renames.get(String(r.id))?.firstFrom ?? r.name, "experiment name"],
        ["description", r.description, "experiment description"],
      ]),
  });
  const laterRenamed = events.laterEntityIds("experiment.update");
  for (const [id, r] of renames) {
    const row = t.experiments.get(Number(id));
    if (row && !laterRenamed.has(id)) c.compare("experiment", id, "experiment name (latest rename)", r.lastTo, row.name, r.lastSeq);
  }
  if (!t.complete) return;

  const tags = new Map<number, Map<string, number>>();
  for (const ev of [...events.byAction("run.tag"), ...events.byAction("run.untag")].sort((a, b) => a.seq - b.seq)) {
    let tag: unknown;
    try {
      tag = (JSON.parse(ev.payload) as { tag?: unknown }).tag;
    } catch {
      tag = undefined;
    }
    if (typeof tag !== "string") continue;
    const runId = Number(ev.entityId);
    let set = tags.get(runId);
    if (!set) tags.set(runId, (set = new Map()));
    if (ev.action === "run.tag") set.set(tag, ev.seq);
    else set.delete(tag);
  }
  const laterTagged = events.laterEntityIds("run.tag");
  for (const runId of new Set([...tags.keys(), ...t.runTags.keys()])) {
    const recorded = tags.get(runId) ?? new Map<string, number>();
    const found = t.runTags.get(runId) ?? [];
    const lastSeq = Math.max(0, ...recorded.values());
    if (laterTagged.has(String(runId))) continue;
    c.compare("run", runId, "tags", [...recorded.keys()].sort(), [...found].sort(), lastSeq || null);
  }
  c.notCovered("password hashes, sign-in sessions and whether a user is disabled are not recorded by the ledger");
}
