/**
 * Content check of evaluations: each row against its evaluation.create event. The metrics the report prints
 * (accuracy, per-class precision/recall/F1, macro averages, MSE/MAE/R², confusion matrix) are bound by
 * metricsSha256 = sha256Canonical(result incl. confusion), recomputed here from the row's two JSON columns; the
 * data digest, checkpoint (and its weights hash), split, origin (trainer or requested, and by whom) and time too.
 */
import { evaluationResultSha256, evaluationResultTextSha256 } from "./records";

const j = JSON.stringify;
import type { ContentChecker } from "./checker";
import { checkCreations, compareActor } from "./creations";
import type { EventSource } from "./ledger-events";
import type { Tables } from "./tables";

function resultSha256(metricsJson: string, confusionJson: string | null): string {
  try {
    return evaluationResultSha256(metricsJson, confusionJson);
  } catch {
    return "(metrics are not valid JSON)";
  }
}

export function checkEvaluations(c: ContentChecker, events: EventSource, t: Tables): void {
  checkCreations(c, events, {
    entityType: "evaluation",
    action: "evaluation.create",
    rows: t.evaluations,
    complete: t.complete,
    fast: (e, ev) => {
      const ck = t.checkpoints.get(e.checkpointId);
      if (!ck) return false;
      const text = `{"checkpointId":${e.checkpointId},"checkpointSha256":${j(ck.sha256)},"createdAt":${j(e.createdAt)},"dataSha256":${j(e.dataSha256)},"metricsSha256":"${evaluationResultTextSha256(e.metricsJson, e.confusionJson)}","partition":${j(e.partition)},"runId":${e.runId},"source":${j(e.source)},"splitId":${e.splitId}}`;
      if (ev.payload !== text) return false;
      c.checked += 9;
      return true;
    },
    always: (e, ev) => compareActor(c, "evaluation", e.id, ev, e.createdBy, "evaluated by"),
    check: (e, ev, p) => {
      const ck = t.checkpoints.get(e.checkpointId);
      const split = e.splitId === null ? null : t.splits.get(e.splitId);
      c.compare(
        "evaluation",
        e.id,
        "metrics (incl. confusion matrix)",
        p.metricsSha256,
        resultSha256(e.metricsJson, e.confusionJson),
        ev.seq,
      );
      c.compareFields("evaluation", e.id, ev, p, [
        ["runId", e.runId, "run"],
        ["checkpointId", e.checkpointId, "checkpoint"],
        ["partition", e.partition, "partition"],
        ["dataSha256", e.dataSha256, "data digest"],
        ["splitId", e.splitId, "split"],
        ["createdAt", e.createdAt, "evaluation time"],
      ]);
      // Older events carry no `source`: "requested: true" marks a requested evaluation, its absence the trainer's.
      c.compare(
        "evaluation",
        e.id,
        "origin (trainer or requested)",
        "source" in p ? p.source : p.requested === true ? "requested" : "training",
        e.source,
        ev.seq,
      );
      if (ck && "checkpointSha256" in p) c.compare("evaluation", e.id, "checkpoint weights sha256", p.checkpointSha256, ck.sha256, ev.seq);
      if (ck && "epoch" in p) c.compare("evaluation", e.id, "checkpoint epoch", p.epoch, ck.epoch, ev.seq);
      if (split && "splitSha256" in p) c.compare("evaluation", e.id, "split sha256", p.splitSha256, split.sha256, ev.seq);
    },
  });
}
