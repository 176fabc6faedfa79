/**
 * Report section 6 (Annex IV 2(g), 4): the evaluations of this version's checkpoint: who or what computed them, on
 * which data (digest), the headline metrics, per-class metrics and the confusion matrix.
 */
import type { ReportFacts } from "../collect-report";
import { Code, SectionHeading, Table, num, pct, time, type Refs } from "./primitives";

type Evaluation = ReportFacts["evaluations"][number];
type PerClass = { label: string; precision: number; recall: number; f1: number; support: number };

function EvaluationArticle({ e, refs }: { e: Evaluation; refs: Refs }) {
  const m = e.metrics as Record<string, unknown>;
  const perClass = Array.isArray(m.perClass) ? (m.perClass as PerClass[]) : [];
  const headline = Object.entries(m)
    .filter(([, v]) => typeof v === "number")
    .map(([k, v]) => `${k} ${/acc|precision|recall|f1/.test(k) ? pct(v) : num(v)}`)
    .join(" · ");
  const confusion = e.confusion;
  return (
    <article className="evaluation">
      <h3>
        Evaluation #{e.id} on the {e.partition} partition {refs("evaluation", e.id)}
      </h3>
      <p className="meta">
        {e.source === "training" ? "computed by the trainer at the end of the run" : `requested by ${e.createdBy}`} · {time(e.createdAt)} ·
        data digest (SHA-256 of the partition&apos;s feature and label values) <Code value={e.dataSha256} />
        {e.splitId !== null ? ` · split #${e.splitId}` : ""}
      </p>
      <p className="headline">{headline}</p>
      {perClass.length > 0 && (
        <Table
          caption="Per class"
          head={["Class", "Precision", "Recall", "F1", "Support"]}
          rows={perClass.map((c) => [c.label, pct(c.precision), pct(c.recall), pct(c.f1), num(c.support)])}
        />
      )}
      {confusion && (
        <Table
          caption="Confusion matrix (rows: true class, columns: predicted)"
          head={["true \\ predicted", ...confusion.labels]}
          rows={confusion.matrix.map((row, i) => [confusion.labels[i] ?? String(i), ...row.map((n) => num(n))])}
        />
      )}
    </article>
  );
}

export function EvaluationSection({ f, refs }: { f: ReportFacts; refs: Refs }) {
  return (
    <section id="evaluation">
      <SectionHeading annex="Annex IV 2(g), 4">6. Evaluation</SectionHeading>
      {f.evaluations.length ? (
        f.evaluations.map((e) => <EvaluationArticle key={e.id} e={e} refs={refs} />)
      ) : (
        <p className="missing">This version&apos;s checkpoint has no recorded evaluation.</p>
      )}
    </section>
  );
}
