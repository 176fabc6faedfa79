/**
 * Report section 5 (Annex IV 2(a), 2(c)): each run of the lineage (the one that produced the weights first): who
 * ran it and when, its hyperparameters, backend and environment, and its training curves.
 */
import type { ReportFacts } from "../collect-report";
import { LineChartSvg } from "./line-chart-svg";
import { Code, Facts, Json, SectionHeading, num, time, type Refs } from "./primitives";
import type { ReportChart } from "./report-types";
import { sweepLine } from "@/server/lineage/graph";

type TrainingRun = ReportFacts["training"][number];

/** "int8 quantization of run #12's checkpoint #40": how a compression run (origin "compress") derived its model. */
export function compressionDerivation(
  c: NonNullable<TrainingRun["config"]["compression"]>,
  parentRunId: number | null,
  parentCheckpointId: number | null,
): string {
  const source = `run #${parentRunId ?? "?"}'s checkpoint #${parentCheckpointId ?? "?"}`;
  switch (c.method) {
    case "float16":
      return `float16 quantization of ${source}`;
    case "int8":
      return `int8 quantization (symmetric, per-output-channel scales) of ${source}`;
    case "prune":
      return `magnitude pruning to sparsity ${c.sparsity} (${c.scope}${c.fineTuneEpochs > 0 ? `, ${c.fineTuneEpochs} fine-tune epochs with the mask fixed` : ", no fine-tuning"}) of ${source}`;
    case "distill":
      return `a student distilled (temperature ${c.temperature}, alpha ${c.alpha}) from ${source} as teacher`;
  }
}

function RunArticle({ r, charts, refs }: { r: TrainingRun; charts: ReportChart[]; refs: Refs }) {
  const t = r.config.training;
  return (
    <article className="run">
      <h3>
        Run #{r.id}: {r.name} {refs("run", r.id)}
      </h3>
      <p className="meta">
        {r.origin} run by {r.author.name}, started {time(r.startedAt)}, finished {time(r.finishedAt)}
        {r.parentRunId !== null ? `, parent run #${r.parentRunId}` : ""}
        {r.parentCheckpointId !== null && r.origin !== "compress" ? `, fine-tuned from checkpoint #${r.parentCheckpointId}` : ""}
      </p>
      {r.origin === "compress" && r.config.compression ? (
        <p className="meta">Derivation: {compressionDerivation(r.config.compression, r.parentRunId, r.parentCheckpointId)}.</p>
      ) : null}
      {r.sweep ? <p className="meta">Sweep: {sweepLine(r.sweep)}.</p> : null}
      <Facts
        items={[
          ["Layers", r.configSummary],
          [
            "Optimizer",
            <>
              {t.optimizer.name} <Json value={t.optimizer} />
            </>,
          ],
          [
            "Learning rate",
            <>
              {num(t.learningRate)} <Json value={t.lrSchedule} />
            </>,
          ],
          ["Batch size", num(t.batchSize)],
          ["Epochs", num(t.epochs)],
          ["Seed", num(r.seed)],
          ["Config sha256", <Code value={r.configSha256} />],
          ["Backend", `${r.backend ?? "–"}${r.backendReason ? ` — ${r.backendReason}` : ""}`],
          ["Environment", r.environment ? <Json value={r.environment} /> : "–"],
          ["Parameters", num(r.paramCount)],
          ["Final weights sha256", <Code value={r.finalWeightsSha256} />],
        ]}
      />
      {charts.map((c) => (
        <figure key={c.file}>
          <LineChartSvg series={c.series} options={c.options} />
          <figcaption>
            {c.title} (also {c.file})
          </figcaption>
        </figure>
      ))}
    </article>
  );
}

export function TrainingSection({ f, charts, refs }: { f: ReportFacts; charts: ReportChart[]; refs: Refs }) {
  return (
    <section id="training">
      <SectionHeading annex="Annex IV 2(a), 2(c)">5. Training procedure and environment</SectionHeading>
      <p className="muted">
        The run that produced the weights first, then its ancestors. Curves are drawn from the recorded per-epoch metric points.
      </p>
      {f.training.map((r) => (
        <RunArticle key={r.id} r={r} charts={charts.filter((c) => c.runId === r.id)} refs={refs} />
      ))}
    </section>
  );
}
