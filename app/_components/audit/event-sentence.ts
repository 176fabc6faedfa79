/**
 * Audit events as sentences a person reads: "Erin Engineer asked to change the learning rate of run #12 from 0.05 to
 * 0.005: 'val loss oscillates'". One renderer per action of server/audit/actions.ts, in a table typed
 * `Record<AuditAction, …>` so a new action without a renderer fails the type check (and the unit test, which walks
 * AUDIT_ACTIONS at run time).
 *
 * Invariants: pure functions of the event row (no clock, no I/O), so the page and the tests can call them; they never
 * throw on an unexpected payload shape (old events keep older shapes): a missing value is simply left out of the
 * sentence, and the full payload stays one click away on the page. Only a type is imported from server/ (app/ may not
 * import server values).
 */
import type { AuditAction } from "@/server/audit/actions";
import { formatCountOf, formatMetric } from "@/app/_components/format";

/** The fields of an audit event row the sentences use. */
export type AuditEventLike = {
  actorName: string;
  action: string;
  entityType: string;
  entityId: string | number;
  payload?: unknown;
};

type P = Record<string, unknown>;
type Renderer = (actor: string, p: P, e: AuditEventLike) => string;

/** Readable names of the config paths a pilot or a decision touches; others are shown as the path itself. */
const PATH_LABELS: Record<string, string> = {
  "training.learningRate": "learning rate",
  "training.batchSize": "batch size",
  "training.epochs": "number of epochs",
  "training.seed": "training seed",
  "training.optimizer": "optimizer",
  "training.optimizer.name": "optimizer",
  "training.earlyStopping": "early stopping",
  "data.split.seed": "split seed",
  "data.normalization": "normalization",
};

export function pathLabel(path: string): string {
  return PATH_LABELS[path] ?? path;
}

/** A value as it reads in a sentence: strings bare, numbers as given, objects as compact JSON. */
function v(x: unknown): string {
  if (typeof x === "string") return x;
  if (x === undefined) return "?";
  return JSON.stringify(x);
}
/**
 * A metric's value as the rest of the UI shows it (format.ts formatMetric: 4 decimals, accuracies as percentages), so
 * "val_loss 0.5114", not every digit of the double; the exact value stays in the event's payload, which the Audit page
 * expands in full under each row.
 */
function metricValue(key: unknown, x: unknown): string {
  return typeof x === "number" && Number.isFinite(x) ? formatMetric(x, typeof key === "string" ? key : undefined) : v(x);
}
const str = (p: P, k: string): string | undefined => (typeof p[k] === "string" ? (p[k] as string) : undefined);
/** "1 trial", "4 trials": a recorded count with its noun (a value that is not a number is shown as recorded). */
function counted(x: unknown, singular: string, plural = `${singular}s`): string {
  return typeof x === "number" ? formatCountOf(x, singular, plural) : `${v(x)} ${plural}`;
}
const num = (p: P, k: string): number | undefined => (typeof p[k] === "number" ? (p[k] as number) : undefined);
/** ": 'why'" when a rationale/reason/comment is present, else nothing. */
function why(text: unknown): string {
  return typeof text === "string" && text.trim() !== "" ? `: '${text}'` : "";
}
const run = (id: unknown) => (id === undefined || id === null ? "a run" : `run #${v(id)}`);
const modelVersion = (p: P) => (str(p, "model") ? `${str(p, "model")} v${v(p.version)}` : `model version #${v(p.modelVersionId)}`);

/** " (documentation: 3 of 5 sections written, missing ones acknowledged)", or nothing for a request recorded without it. */
function documentationText(d: unknown): string {
  if (typeof d !== "object" || d === null) return "";
  const doc = d as P;
  if (typeof doc.written !== "number" || typeof doc.total !== "number") return "";
  if (doc.written === doc.total) return ` (documentation complete: ${doc.total} sections written)`;
  return ` (documentation: ${doc.written} of ${doc.total} sections written${doc.acknowledgedMissing === true ? ", missing ones acknowledged" : ""})`;
}

/** "the learning rate of run #12 from 0.05 to 0.005, the batch size from 16 to 32": the run named once, on the first change. */
function changesText(changes: unknown, runRef: string): string {
  if (!Array.isArray(changes) || changes.length === 0) return `the settings of ${runRef}`;
  return (changes as P[])
    .map((c, i) => `the ${pathLabel(String(c.path))}${i === 0 ? ` of ${runRef}` : ""} from ${v(c.oldValue)} to ${v(c.newValue)}`)
    .join(", ");
}

function interventionWhat(p: P, runRef: string): string {
  switch (p.kind) {
    case "pause":
      return `pause ${runRef}`;
    case "resume":
      return `resume ${runRef}`;
    case "stop":
      return `stop ${runRef}`;
    case "rollback":
      return `roll ${runRef} back to checkpoint #${v(p.fromCheckpointId)}`;
    case "set":
      return `change ${changesText(p.changes, runRef)}`;
    default:
      return `intervene in ${runRef}${p.kind ? ` (${v(p.kind)})` : ""}`;
  }
}

// Every AuditAction must have a key (the type check fails otherwise); extra keys are allowed so that a renderer can land
// before or after the commit adding its action (the unit test checks coverage at run time).
const RENDERERS: Record<AuditAction, Renderer> & Record<string, Renderer> = {
  "user.signIn": (a) => `${a} signed in`,
  "user.signInFailed": (_a, p) =>
    `Sign-in as ${v(p.identifier)} failed ${v(p.failures)} times in ${v(p.windowMinutes)} minutes${p.distinctIdentifiersAtLeast !== undefined ? ` (at least ${v(p.distinctIdentifiersAtLeast)} other identifiers)` : ""}`,
  "user.signOut": (a) => `${a} signed out`,
  "user.create": (a, p) => `${a} created the user ${v(p.name)} (${v(p.email)}) with the role ${v(p.role)}`,
  "user.update": (a, p) => {
    const before = (p.before ?? {}) as P;
    const after = (p.after ?? {}) as P;
    const parts: string[] = [];
    if (after.role !== undefined && after.role !== before.role) parts.push(`role from ${v(before.role)} to ${v(after.role)}`);
    if (after.disabled !== undefined && after.disabled !== before.disabled)
      parts.push(after.disabled ? "disabled the account" : "enabled the account");
    return `${a} updated the user ${v(p.email)}${parts.length ? `: ${parts.join(", ")}` : ""}`;
  },
  "user.passwordReset": (a, p) => `${a} reset the password of ${v(p.email)}`,
  "user.passwordChange": (a) => `${a} changed their password`,
  "session.revoke": (a, p) => `${a} revoked ${p.scope === "one" ? "a session" : "all sessions"} of ${v(p.email)}`,
  "token.create": (a, p, e) => `${a} created the access token #${e.entityId} '${v(p.name)}' for ${v(p.email)}`,
  "token.revoke": (a, p, e) => `${a} revoked the access token #${e.entityId} '${v(p.name)}'`,
  "project.create": (a, p) => `${a} created the project ${v(p.name)}`,
  "experiment.update": (a, p, e) => `${a} renamed the experiment #${e.entityId} from '${v(p.from)}' to '${v(p.to)}'`,
  "experiment.delete": (a, _p, e) => `${a} deleted the experiment #${e.entityId} (it can be restored)`,
  "experiment.restore": (a, _p, e) => `${a} restored the experiment #${e.entityId}`,
  "experiment.setTag": (a, p, e) => `${a} set the tag '${v(p.key)}' of the experiment #${e.entityId}`,
  "experiment.create": (a, p) => `${a} created the experiment ${v(p.name)} in project #${v(p.projectId)}`,
  "dataset.create": (a, p) =>
    `${a} added the dataset ${v(p.name)}${num(p, "rows") !== undefined ? ` (${v(p.rows)} rows, ${v(p.columns)} columns)` : ""}`,
  "datasetVersion.create": (a, p, e) =>
    `${a} cleaned dataset #${v(p.datasetId)} into version #${e.entityId}${num(p, "rowsIn") !== undefined ? ` (${v(p.rowsIn)} rows in, ${v(p.rowsOut)} out)` : ""}`,
  "split.create": (a, p, e) => {
    const c = (p.counts ?? {}) as P;
    return `${a} split dataset version #${v(p.datasetVersionId)} as split #${e.entityId}${c.train !== undefined ? ` (${v(c.train)} train, ${v(c.validation)} validation, ${v(c.test)} test)` : ""}`;
  },
  "run.create": (a, p, e) => {
    const origin = str(p, "origin");
    const parent = p.parentRunId ? ` from run #${v(p.parentRunId)}` : "";
    const verb = origin === "fork" ? "forked" : origin === "rerun" ? "re-ran" : origin === "finetune" ? "fine-tuned" : "created";
    if (origin === "compress")
      return `${a} compressed checkpoint #${v(p.parentCheckpointId)} of run #${v(p.parentRunId)} as run #${e.entityId}${p.name ? ` (${v(p.name)})` : ""}`;
    if (origin === "sweep")
      return `${a} generated run #${e.entityId}${p.name ? ` (${v(p.name)})` : ""} as trial ${num(p, "trialIndex") !== undefined ? num(p, "trialIndex")! + 1 : "?"} of sweep #${v(p.sweepId)}`;
    return origin && origin !== "new"
      ? `${a} ${verb}${parent} as run #${e.entityId}${p.name ? ` (${v(p.name)})` : ""} in experiment #${v(p.experimentId)}`
      : `${a} created run #${e.entityId}${p.name ? ` (${v(p.name)})` : ""} in experiment #${v(p.experimentId)}`;
  },
  "run.start": (a, p, e) => `${a} started run #${e.entityId}${p.backend ? ` on ${v(p.backend)}` : ""}`,
  "run.complete": (a, p, e) => {
    const m = (p.finalMetrics ?? {}) as P;
    const shown = ["val_accuracy", "val_loss", "accuracy", "loss"].filter((k) => typeof m[k] === "number").slice(0, 2);
    return `${a} completed run #${e.entityId}${p.epochsRun !== undefined ? ` after ${counted(p.epochsRun, "epoch")}` : ""}${
      shown.length ? ` (${shown.map((k) => `${k} ${metricValue(k, m[k])}`).join(", ")})` : ""
    }${p.stoppedByDecision ? ", stopped by a pilot's decision" : p.stoppedEarly ? ", stopped early" : ""}`;
  },
  "run.fail": (a, p, e) => `${a} recorded that run #${e.entityId} failed${why(p.error)}`,
  "run.cancelRequest": (a, p, e) =>
    `${a} asked to cancel run #${e.entityId}${p.statusAtRequest ? ` while it was ${v(p.statusAtRequest)}` : ""}${why(p.reason)}`,
  "run.cancel": (a, p, e) =>
    `${a} cancelled run #${e.entityId}${p.epochsRun !== undefined ? ` after ${counted(p.epochsRun, "epoch")}` : ""}`,
  "run.interrupted": (a, p, e) =>
    `${a} recorded that run #${e.entityId} was interrupted${p.lastCheckpointEpoch !== null && p.lastCheckpointEpoch !== undefined ? ` after epoch ${v(p.lastCheckpointEpoch)}` : ""}${why(p.reason)}`,
  "run.tag": (a, p, e) => `${a} tagged run #${e.entityId} with '${v(p.tag)}'`,
  "run.untag": (a, p, e) => `${a} removed the tag '${v(p.tag)}' from run #${e.entityId}`,
  "run.log": (a, p, e) => {
    const parts: string[] = [];
    if (num(p, "metrics")) parts.push(counted(p.metrics, "metric point"));
    if (Array.isArray(p.decisions) && p.decisions.length) parts.push(counted(p.decisions.length, "new param"));
    if (Array.isArray(p.tags) && p.tags.length) parts.push(counted(p.tags.length, "tag"));
    if (Array.isArray(p.artifacts))
      for (const f of p.artifacts as P[])
        parts.push(`the artifact '${v(f.path)}'${typeof f.sha256 === "string" ? ` (sha256 ${f.sha256.slice(0, 12)}…)` : ""}`);
    return `${a} logged ${parts.length ? parts.join(", ") : "a batch"} to run #${e.entityId} through the API`;
  },
  "run.logInputs": (a, p, e) => {
    const inputs = Array.isArray(p.inputs) ? (p.inputs as P[]) : [];
    const names = inputs.map((i) => `${v(i.name)}${i.context ? ` (${v(i.context)})` : ""}`).join(", ");
    return `${a} declared ${counted(inputs.length, "dataset input")} of run #${e.entityId}${names ? `: ${names}` : ""}`;
  },
  "run.deleteTag": (a, p, e) => `${a} removed the tag '${v(p.key)}' from run #${e.entityId}`,
  "run.delete": (a, _p, e) => `${a} deleted run #${e.entityId} (it can be restored)`,
  "run.restore": (a, _p, e) => `${a} restored run #${e.entityId}`,
  "run.annotate": (a, p, e) => `${a} changed the ${v(p.field)} of run #${e.entityId} from '${v(p.from)}' to '${v(p.to)}'`,
  "run.interventionRequested": (a, p) => `${a} asked to ${interventionWhat(p, run(p.runId))}${why(p.rationale)}`,
  "run.interventionCancelled": (a, p, e) => `${a} withdrew request #${e.entityId} on ${run(p.runId)}${why(p.rationale)}`,
  "run.interventionApplied": (a, p, e) =>
    `${a}'s request #${e.entityId} (${v(p.kind)}) took effect on ${run(p.runId)} at epoch ${v(p.epoch)}${
      p.branchRunId ? `, as branch run #${v(p.branchRunId)}` : ""
    }`,
  "run.interventionRejected": (a, p, e) =>
    p.rejectedByScript === true
      ? `${a}'s script rejected request #${e.entityId} on ${run(p.runId)}${why(p.reason)}`
      : `Request #${e.entityId} on ${run(p.runId)} was rejected${why(p.reason)}`,
  "sweep.create": (a, p, e) =>
    `${a} started sweep #${e.entityId}${p.name ? ` (${v(p.name)})` : ""}: ${v(p.method)} search of up to ${counted(p.maxTrials, "trial")}${
      typeof p.metric === "object" && p.metric !== null ? `, ${v((p.metric as P).direction)} ${v((p.metric as P).name)}` : ""
    }${p.seed !== undefined ? `, seed ${v(p.seed)}` : ""}${why(p.rationale)}`,
  "sweep.pause": (a, p, e) => `${a} paused sweep #${e.entityId}${why(p.rationale)}`,
  "sweep.resume": (a, p, e) => `${a} resumed sweep #${e.entityId}${why(p.rationale)}`,
  "sweep.stop": (a, p, e) => {
    const n = Array.isArray(p.cancelledTrialRunIds) ? p.cancelledTrialRunIds.length : 0;
    return `${a} stopped sweep #${e.entityId}${n ? ` (cancelling ${counted(n, "active trial")})` : ""}${why(p.rationale)}`;
  },
  "sweep.extend": (a, p, e) =>
    `${a} extended sweep #${e.entityId} from ${v(p.fromMaxTrials)} to ${counted(p.maxTrials, "trial")}${why(p.rationale)}`,
  "sweep.complete": (a, p, e) => {
    const best = typeof p.best === "object" && p.best !== null ? (p.best as P) : null;
    return `${a} completed sweep #${e.entityId} after ${counted(p.trials, "trial")}${
      best ? `; best: ${run(best.runId)} (${v(best.metric)} ${metricValue(best.metric, best.value)})` : ""
    }`;
  },
  "sweep.stopTrial": (a, p, e) =>
    `${a} stopped trial ${run(p.runId)} of sweep #${e.entityId} early at epoch ${v(p.rung)}${
      p.metric
        ? `: ${v(p.metric)} ${metricValue(p.metric, p.value)}, not in the top 1/${v(p.eta)} of ${counted(p.trialsAtRung, "trial")}`
        : ""
    }`,
  "sweep.chooseWinner": (a, p, e) =>
    `${a} chose ${run(p.runId)} as the winner of sweep #${e.entityId}${p.trials !== undefined ? ` (${counted(p.trials, "trial")})` : ""}${why(p.rationale)}`,
  "checkpoint.create": (a, p, e) => `${a} saved checkpoint #${e.entityId} of ${run(p.runId)} at epoch ${v(p.epoch)}`,
  "evaluation.create": (a, p, e) =>
    `${a} evaluated ${run(p.runId)}${p.checkpointId ? ` at checkpoint #${v(p.checkpointId)}` : ""}${p.partition ? ` on the ${v(p.partition)} set` : ""} (evaluation #${e.entityId})`,
  "decision.create": (a, p) =>
    `${a} recorded a decision on ${run(p.runId)}${p.path ? ` about the ${pathLabel(String(p.path))}` : ""}${why(p.rationale)}`,
  "decision.correct": (a, p) => `${a} corrected decision #${v(p.correctsDecisionId)} on ${run(p.runId)}${why(p.rationale)}`,
  "model.create": (a, p) =>
    `${a} created the model ${v(p.name)}${p.approvalsRequired !== undefined ? ` (${counted(p.approvalsRequired, "approval")} to reach production)` : ""}`,
  "model.update": (a, p, e) =>
    `${a} changed the ${p.field === "approvalsRequired" ? "approvals required" : v(p.field)} of model #${e.entityId} from ${v(p.before)} to ${v(p.after)}`,
  "modelVersion.create": (a, p) => `${a} registered ${modelVersion(p)} from ${run(p.runId)} at epoch ${v(p.epoch)}`,
  "promotion.request": (a, p) =>
    `${a} asked to move ${modelVersion(p)} to ${v(p.alias)}${why(p.rationale)}${documentationText(p.documentation)}`,
  "promotion.approve": (a, p, e) =>
    `${a} approved request #${e.entityId} (${v(p.approvals)} of ${v(p.approvalsRequired)})${p.status === "approved" ? ": approved" : ""}`,
  "promotion.reject": (a, p, e) => `${a} rejected request #${e.entityId}${why(p.comment)}`,
  "promotion.selfApprovalRefused": (a, _p, e) => `${a} was refused approving their own request #${e.entityId}`,
  "promotion.withdraw": (a, p, e) => `${a} withdrew request #${e.entityId}${why(p.reason)}`,
  "alias.move": (a, p) =>
    `${a} moved ${v(p.alias)} of ${v(p.model)} to v${v(p.version)}${p.promotionRequestId ? ` (request #${v(p.promotionRequestId)})` : ""}${why(p.rationale)}`,
  "signature.create": (a, p) =>
    `${a} signed ${p.recordType === "document" ? `document #${v(p.recordId)}${p.section ? ` (${v(p.section)} v${v(p.version)})` : ""}` : `${v(p.recordType)} #${v(p.recordId)}`}, meaning ${v(p.meaning)}${why(p.comment)}`,
  "signature.refused": (a, p, e) => `${a} was refused a signature on ${e.entityType} #${e.entityId}${why(p.reason)}`,
  "document.update": (a, p, e) =>
    `${a} wrote ${v(p.section)} v${v(p.version)} of the ${v(p.subjectType)} #${v(p.subjectId)} document (#${e.entityId}${p.characters !== undefined ? `, ${v(p.characters)} characters` : ""})`,
  "document.selfReviewRefused": (a, _p, e) => `${a} was refused reviewing their own document #${e.entityId}`,
  "audit.checkpoint": (a, p, e) =>
    `${a} signed ledger checkpoint #${e.entityId}${p.treeSize !== undefined ? ` at tree size ${v(p.treeSize)}` : ""}${why(p.reason)}`,
  "audit.keyRotate": (a) => `${a} rotated the ledger's signing key`,
  "audit.verify": (a, p) => `${a} verified the ledger${typeof p.ok === "boolean" ? `: ${p.ok ? "intact" : "NOT intact"}` : ""}`,
  "audit.export": (a, p) => `${a} exported the auditor's report of ${modelVersion(p)}`,
  "lineage.export": (a, p) => `${a} exported the lineage of ${modelVersion(p)} as ${v(p.format)}`,
};

/** Actions that have a renderer (the unit test checks that it covers AUDIT_ACTIONS). */
export const RENDERED_ACTIONS: readonly string[] = Object.keys(RENDERERS);

/** The event as one sentence; an action unknown to this build reads "actor did action on entity #id". */
export function eventSentence(e: AuditEventLike): string {
  const p = (e.payload && typeof e.payload === "object" && !Array.isArray(e.payload) ? e.payload : {}) as P;
  const r = (RENDERERS as Record<string, Renderer | undefined>)[e.action];
  if (!r) return `${e.actorName} did ${e.action} on ${e.entityType} #${e.entityId}`;
  return r(e.actorName, p, e);
}
