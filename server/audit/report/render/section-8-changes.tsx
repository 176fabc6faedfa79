/**
 * Report section 8 (Annex IV 6): what changed since the previous production version: weights, data version,
 * split, configuration paths, test metrics before and after, and the decisions taken since.
 */
import { Fragment } from "react";
import type { ReportFacts } from "../collect-report";
import { Code, ContentLabel, Json, SectionHeading, Table, num } from "./primitives";

type Changes = NonNullable<ReportFacts["changes"]>;

const changed = (what: boolean, before: number | null, after: number | null) =>
  what ? `changed (#${before ?? "–"} → #${after ?? "–"})` : "unchanged";

function ChangesSincePrevious({ c, content }: { c: Changes; content: ReportFacts["content"] }) {
  const dc = c.dataChanged;
  return (
    <>
      <p>
        Previous production version: <strong>version {c.previous.version}</strong>
        <ContentLabel content={content} type="modelVersion" id={c.previous.id} />, weights <Code value={c.previous.weightsSha256} />, run #
        {c.previous.runId}
        <ContentLabel content={content} type="run" id={c.previous.runId} /> (config sha256 <Code value={c.previous.configSha256} />
        ). Weights {c.weightsChanged ? "changed" : "are identical"}; data version{" "}
        {changed(dc.datasetVersion, dc.before.datasetVersionId, dc.after.datasetVersionId)}; split{" "}
        {changed(dc.split, dc.before.splitId, dc.after.splitId)}.
      </p>
      <Table
        caption="Configuration changes"
        head={["Path", "Before", "After"]}
        rows={c.configChanges.map((d) => [<Code value={d.path} />, <Json value={d.before ?? null} />, <Json value={d.after ?? null} />])}
      />
      <Table
        caption="Test metrics"
        head={["Metric", "Before", "After"]}
        rows={c.testMetrics.map((m) => [m.key, num(m.before), num(m.after)])}
      />
      {c.previousEvaluationIds.length > 0 && (
        <p className="meta">
          Before: evaluation
          {c.previousEvaluationIds.map((id, i) => (
            <Fragment key={id}>
              {i > 0 && ","} #{id}
              <ContentLabel content={content} type="evaluation" id={id} />
            </Fragment>
          ))}
        </p>
      )}
      <p>
        Decisions new since version {c.previous.version}:{" "}
        {c.newDecisionIds.length ? c.newDecisionIds.map((id) => `#${id}`).join(", ") : "none"} (see section 3).
      </p>
    </>
  );
}

export function ChangesSection({ f }: { f: ReportFacts }) {
  return (
    <section id="changes">
      <SectionHeading annex="Annex IV 6">8. Changes since the previous production version</SectionHeading>
      {f.changes ? (
        <ChangesSincePrevious c={f.changes} content={f.content} />
      ) : (
        <p>No earlier production version of {f.model.name} exists: this is the first.</p>
      )}
    </section>
  );
}
