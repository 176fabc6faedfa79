/**
 * The lineage as a graph for people: nodes with plain-language titles (readable without ML knowledge), a few
 * summary lines, one headline hash, and the details shown when a node is opened; edges say what happened
 * ("cleaned into", "trained", "registered as"). Edges point forward in time, from cause to effect.
 */
import { timeText } from "@/contracts/time-text";
import { originText } from "@/contracts/origin-words";
import type { LineageFacts } from "./collect";

export type LineageNodeKind =
  | "dataset"
  | "datasetInput"
  | "datasetVersion"
  | "split"
  | "run"
  | "decision"
  | "checkpoint"
  | "evaluation"
  | "modelVersion"
  | "promotionRequest"
  | "signature"
  | "aliasMove";
export type LineageDetail = { label: string; value: string; hash?: boolean };
export type LineageNode = {
  id: string;
  kind: LineageNodeKind;
  kindLabel: string;
  title: string;
  lines: string[];
  hash: { label: string; value: string } | null;
  details: LineageDetail[];
  href: string | null;
};
export type LineageEdge = { id: string; source: string; target: string; label: string };
export type LineageGraph = { nodes: LineageNode[]; edges: LineageEdge[]; rootId: string };

export const KIND_LABELS: Record<LineageNodeKind, string> = {
  dataset: "Raw dataset",
  datasetInput: "Dataset input (declared by a script)",
  datasetVersion: "Cleaned data (recipe)",
  split: "Train / validation / test split",
  run: "Training run",
  decision: "Human decision",
  checkpoint: "Saved weights (checkpoint)",
  evaluation: "Evaluation",
  modelVersion: "Model version",
  promotionRequest: "Promotion request",
  signature: "Signature",
  aliasMove: "Alias move",
};

const ORIGIN_WORDS = {
  new: "first run",
  fork: "fork",
  finetune: "fine-tune",
  rerun: "re-run",
  branch: "branch",
  api: "logged through the API",
  sweep: "sweep trial",
  compress: "compression",
} as const;
/** "chosen from sweep #3 (8 trials) by Erin Engineer because …", or the trial's place when no winner was chosen. */
export function sweepLine(sw: NonNullable<LineageFacts["runs"][number]["sweep"]>): string {
  return sw.chosen
    ? `chosen from sweep #${sw.sweepId} "${sw.sweepName}" (${sw.trials} trials) by ${sw.chosen.by} because ${sw.chosen.rationale}`
    : `trial ${sw.trialIndex + 1} of sweep #${sw.sweepId} "${sw.sweepName}" (${sw.trials} trials; not chosen as its winner)`;
}
type Run = LineageFacts["runs"][number];
/**
 * "Runledger 0.1.0 (commit 335fb6b7c61a) · TensorFlow.js 4.22.0 on cpu": the build of Runledger that trained the run
 * and what it trained with, as its environment recorded them; what it did not record is said, never guessed.
 */
export function softwareText(r: Pick<Run, "appVersion" | "appCommit" | "tfjsVersion" | "backend" | "origin">): string {
  if (r.appVersion === null && r.appCommit === null && r.tfjsVersion === null && r.backend === null)
    return r.origin === "api" ? "not recorded (logged by a script through the MLflow-compatible API)" : "not recorded";
  const commit = r.appCommit !== null ? `commit ${r.appCommit.slice(0, 12)}` : "commit not recorded";
  const runledger =
    r.appVersion !== null
      ? `Runledger ${r.appVersion} (${commit})`
      : `Runledger version not recorded${r.appCommit !== null ? ` (${commit})` : ""}`;
  return `${runledger} · TensorFlow.js ${r.tfjsVersion ?? "?"} on ${r.backend ?? "?"}`;
}
const show = (v: unknown) => (typeof v === "string" ? v : JSON.stringify(v));
/** A recorded time as the app shows times everywhere (app/_components/format.ts formatTime): "2026-01-31 12:00:00Z". */
const time = timeText;

export function lineageGraph(f: LineageFacts): LineageGraph {
  const nodes: LineageNode[] = [];
  const edges: LineageEdge[] = [];
  const add = (
    id: string,
    kind: LineageNodeKind,
    title: string,
    lines: string[],
    hash: LineageNode["hash"],
    details: LineageDetail[],
    href: string | null = null,
  ) => nodes.push({ id, kind, kindLabel: KIND_LABELS[kind], title, lines, hash, details, href });
  const link = (source: string, target: string, label: string) => edges.push({ id: `${source}->${target}`, source, target, label });

  for (const d of f.datasets)
    add(
      `dataset:${d.id}`,
      "dataset",
      d.name,
      [`${d.rowCount} rows · ${d.source === "builtin" ? "built-in" : "uploaded"}`],
      { label: "raw data sha256", value: d.sha256 },
      [
        { label: "Name", value: d.name },
        { label: "Origin", value: d.origin || "–" },
        { label: "Licence", value: d.licence || "–" },
        { label: "Rows", value: String(d.rowCount) },
        { label: "Raw data sha256", value: d.sha256, hash: true },
        { label: "Added", value: time(d.createdAt) },
      ],
      "/datasets",
    );
  for (const v of f.datasetVersions) {
    const steps = Array.isArray(v.recipe) ? v.recipe.length : 0;
    add(
      `datasetVersion:${v.id}`,
      "datasetVersion",
      `Data version #${v.id}`,
      [`${steps === 0 ? "no cleaning steps" : `${steps} cleaning step(s)`} · ${v.rowCount} rows`],
      { label: "cleaned data sha256", value: v.sha256 },
      [
        { label: "Cleaning recipe", value: JSON.stringify(v.recipe) },
        { label: "Recipe sha256", value: v.recipeSha256, hash: true },
        { label: "Rows after cleaning", value: String(v.rowCount) },
        { label: "Cleaned data sha256", value: v.sha256, hash: true },
      ],
    );
    link(`dataset:${v.datasetId}`, `datasetVersion:${v.id}`, "cleaned into");
  }
  for (const s of f.splits) {
    const counts = Object.entries(s.counts)
      .map(([k, n]) => `${k} ${n ?? "?"}`)
      .join(" / ");
    add(
      `split:${s.id}`,
      "split",
      `Split #${s.id}`,
      [`${s.spec.strategy ?? "?"}, seed ${s.spec.seed ?? "?"}`, counts],
      { label: "split sha256", value: s.sha256 },
      [
        { label: "Strategy", value: String(s.spec.strategy ?? "?") },
        { label: "Seed", value: String(s.spec.seed ?? "?") },
        { label: "Rows per partition", value: counts },
        { label: "Split sha256", value: s.sha256, hash: true },
      ],
    );
    link(`datasetVersion:${s.datasetVersionId}`, `split:${s.id}`, "split into");
  }
  for (const r of f.runs) {
    add(
      `run:${r.id}`,
      "run",
      `Run #${r.id}: ${r.name}`,
      [`${ORIGIN_WORDS[r.origin]} by ${r.author.name}`, r.configSummary, ...(r.sweep ? [sweepLine(r.sweep)] : [])],
      { label: "config sha256", value: r.configSha256 },
      [
        { label: "Author", value: r.author.name },
        {
          label: "How it came to be",
          value: r.sweep
            ? `trial ${r.sweep.trialIndex + 1} generated by sweep #${r.sweep.sweepId}`
            : originText(r.origin, r.parentRunId, null),
        },
        ...(r.sweep ? [{ label: "Sweep", value: sweepLine(r.sweep) }] : []),
        { label: "Settings", value: r.configSummary },
        { label: "Config sha256", value: r.configSha256, hash: true },
        { label: "Software", value: softwareText(r) },
        ...(r.appCommit !== null ? [{ label: "Runledger commit", value: r.appCommit, hash: true }] : []),
        { label: "Status", value: r.status },
        { label: "Trained", value: `${time(r.startedAt)} → ${time(r.finishedAt)}` },
        ...(r.fineTune
          ? [
              {
                label: "Fine-tuning",
                value: `from checkpoint #${r.fineTune.parentCheckpointId}; first ${r.fineTune.freezeLayers} layer(s) frozen${r.fineTune.replaceHead ? "; output layer replaced" : ""}`,
              },
            ]
          : []),
      ],
      `/runs/${r.id}`,
    );
    if (r.splitId !== null) link(`split:${r.splitId}`, `run:${r.id}`, "trained on");
    // A fine-tune hangs off its parent checkpoint (itself saved by its run); a fork or re-run off its parent run,
    // and also off the checkpoint its config starts from when that belongs to another run.
    const parentCk = r.parentCheckpointId === null ? undefined : f.checkpoints.find((c) => c.id === r.parentCheckpointId);
    if (parentCk)
      link(
        `checkpoint:${parentCk.id}`,
        `run:${r.id}`,
        r.origin === "branch" ? "branched from" : r.origin === "compress" ? "compressed from" : "fine-tuned from",
      );
    if (r.parentRunId !== null && r.parentRunId !== parentCk?.runId && f.runs.some((p) => p.id === r.parentRunId))
      link(`run:${r.parentRunId}`, `run:${r.id}`, r.origin === "rerun" ? "re-run as" : "forked into");
  }
  // Inputs a script declared through the tracking API (log-inputs): a reference by name and digest, used by its run.
  for (const i of f.datasetInputs ?? []) {
    add(
      `datasetInput:${i.id}`,
      "datasetInput",
      i.name,
      [`${i.sourceType} · ${i.context ?? "no context given"}`],
      { label: "dataset digest", value: i.digest },
      [
        { label: "Name", value: i.name },
        { label: "Digest (as the script declared it)", value: i.digest, hash: true },
        { label: "Source type", value: i.sourceType },
        { label: "Source", value: i.source.length > 300 ? `${i.source.slice(0, 300)}…` : i.source },
        { label: "Used for", value: i.context ?? "–" },
      ],
    );
    link(`datasetInput:${i.id}`, `run:${i.runId}`, i.context ? `${i.context} data of` : "input of");
  }
  for (const d of f.decisions) {
    const what =
      d.kind === "initial"
        ? "Initial configuration"
        : d.kind === "change"
          ? `Changed ${d.path}`
          : d.kind === "correction"
            ? `Correction of decision #${d.correctsDecisionId}`
            : d.kind === "planned"
              ? `Planned: ${d.path}`
              : d.kind === "intervention"
                ? `While training: ${d.path}`
                : "Note";
    add(
      `decision:${d.id}`,
      "decision",
      what,
      [
        d.kind === "change" ? `${show(d.oldValue)} → ${show(d.newValue)}` : "",
        `“${d.rationale.length > 80 ? `${d.rationale.slice(0, 80)}…` : d.rationale}” — ${d.author.name}`,
      ].filter(Boolean),
      null,
      [
        { label: "Kind", value: d.kind },
        ...(d.path ? [{ label: "Setting", value: d.path }] : []),
        ...(d.kind === "change" ? [{ label: "From → to", value: `${show(d.oldValue)} → ${show(d.newValue)}` }] : []),
        { label: "Rationale", value: d.rationale },
        { label: "Author", value: d.author.name },
        { label: "When", value: time(d.createdAt) },
      ],
      `/runs/${d.runId}`,
    );
    link(`decision:${d.id}`, `run:${d.runId}`, d.kind === "note" || d.kind === "correction" ? "note on" : "shaped");
    if (d.correctsDecisionId !== null && f.decisions.some((x) => x.id === d.correctsDecisionId))
      link(`decision:${d.correctsDecisionId}`, `decision:${d.id}`, "corrected by");
  }
  for (const c of f.checkpoints) {
    add(
      `checkpoint:${c.id}`,
      "checkpoint",
      `Weights after epoch ${c.epoch}`,
      [`run #${c.runId}${c.isBest ? " · best" : ""}`],
      { label: "weights sha256", value: c.sha256 },
      [
        { label: "Run", value: `#${c.runId}` },
        { label: "Epoch", value: String(c.epoch) },
        { label: "Weights sha256", value: c.sha256, hash: true },
        { label: "Size", value: `${c.bytes} bytes` },
        ...Object.entries(c.metrics).map(([k, v]) => ({ label: k, value: String(Math.round(v * 10000) / 10000) })),
      ],
      `/runs/${c.runId}`,
    );
    link(`run:${c.runId}`, `checkpoint:${c.id}`, "saved");
  }
  for (const e of f.evaluations) {
    const acc =
      typeof e.metrics.accuracy === "number"
        ? `accuracy ${(e.metrics.accuracy * 100).toFixed(1)} %`
        : typeof e.metrics.mae === "number"
          ? `MAE ${e.metrics.mae.toFixed(4)}`
          : "";
    add(
      `evaluation:${e.id}`,
      "evaluation",
      `Evaluation on ${e.partition} data`,
      [acc],
      { label: "evaluated rows sha256", value: e.dataSha256 },
      [
        { label: "Partition", value: e.partition },
        ...(acc ? [{ label: "Result", value: acc }] : []),
        { label: "Rows evaluated sha256", value: e.dataSha256, hash: true },
        { label: "When", value: time(e.createdAt) },
      ],
      `/runs/${e.runId}`,
    );
    link(`checkpoint:${e.checkpointId}`, `evaluation:${e.id}`, "evaluated");
  }
  const mv = `modelVersion:${f.version.id}`;
  add(
    mv,
    "modelVersion",
    `${f.model.name} version ${f.version.version}`,
    [`registered by ${f.version.createdBy.name}`],
    { label: "weights sha256", value: f.version.weightsSha256 },
    [
      { label: "Model", value: f.model.name },
      { label: "Version", value: String(f.version.version) },
      { label: "Weights sha256", value: f.version.weightsSha256, hash: true },
      { label: "Registered by", value: f.version.createdBy.name },
      { label: "When", value: time(f.version.createdAt) },
    ],
    `/models/${encodeURIComponent(f.model.name)}`,
  );
  link(`checkpoint:${f.version.checkpointId}`, mv, "registered as");
  for (const p of f.promotionRequests) {
    add(
      `promotionRequest:${p.id}`,
      "promotionRequest",
      `Request #${p.id}: move ${p.alias}`,
      [`${p.status} · by ${p.requestedBy.name}`],
      { label: "record sha256", value: p.recordSha256 },
      [
        { label: "Alias", value: p.alias },
        { label: "Status", value: p.status },
        { label: "Requested by", value: p.requestedBy.name },
        { label: "Rationale", value: p.rationale },
        { label: "Record sha256", value: p.recordSha256, hash: true },
        { label: "Requested", value: time(p.createdAt) },
        { label: "Decided", value: time(p.decidedAt) },
      ],
    );
    link(mv, `promotionRequest:${p.id}`, "proposed");
    if (f.evaluations.some((e) => e.id === p.evaluationId)) link(`evaluation:${p.evaluationId}`, `promotionRequest:${p.id}`, "relied on");
  }
  for (const s of f.signatures) {
    const verb = s.meaning === "approval" ? "Approved" : s.meaning === "rejection" ? "Rejected" : "Reviewed";
    add(
      `signature:${s.id}`,
      "signature",
      `${verb} by ${s.printedName}`,
      [time(s.createdAt)],
      { label: "signed record sha256", value: s.recordSha256 },
      [
        { label: "Printed name", value: s.printedName },
        { label: "Meaning", value: s.meaning },
        { label: "When", value: time(s.createdAt) },
        { label: "Signed record sha256", value: s.recordSha256, hash: true },
        ...(s.comment ? [{ label: "Comment", value: s.comment }] : []),
      ],
    );
    link(`promotionRequest:${s.requestId}`, `signature:${s.id}`, "signed");
  }
  for (const a of f.aliasMoves) {
    add(`aliasMove:${a.id}`, "aliasMove", `${a.alias} → version ${f.version.version}`, [`${time(a.at)} by ${a.movedBy.name}`], null, [
      { label: "Alias", value: a.alias },
      { label: "Moved by", value: a.movedBy.name },
      { label: "When", value: time(a.at) },
      {
        label: "Authorised by",
        value: a.promotionRequestId ? `promotion request #${a.promotionRequestId}` : "a direct move (alias without four-eyes rule)",
      },
    ]);
    const sigs = f.signatures.filter((s) => s.requestId === a.promotionRequestId && s.meaning === "approval");
    if (sigs.length) for (const s of sigs) link(`signature:${s.id}`, `aliasMove:${a.id}`, "authorised");
    else link(mv, `aliasMove:${a.id}`, "moved");
  }
  return { nodes, edges, rootId: mv };
}
