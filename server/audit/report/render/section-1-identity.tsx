/** Report section 1 (Annex IV 1(a), 1(d)): which model and version, its weights, aliases, checkpoint and registration. */
import type { ReportFacts } from "../collect-report";
import { ContentLabel, Facts, SectionHeading, time, type Refs } from "./primitives";

export function IdentitySection({ f, refs }: { f: ReportFacts; refs: Refs }) {
  const v = f.version;
  const ck = v.checkpoint;
  return (
    <section id="identity">
      <SectionHeading annex="Annex IV 1(a), 1(d)">1. General description and identity</SectionHeading>
      <Facts
        items={[
          ["Model", f.model.name],
          [
            "Version",
            <>
              {v.version} {refs("modelVersion", v.id)}
            </>,
          ],
          ["Weights sha256", <code className="weights">{v.weightsSha256}</code>],
          ["Current aliases", v.aliases.length ? v.aliases.join(", ") : "none"],
          [
            "Checkpoint",
            <>
              #{ck.id}, epoch {ck.epoch} of run #{ck.runId}
              {ck.isBest ? " (best)" : ""}, {ck.bytes.toLocaleString("en-US")} bytes {refs("checkpoint", ck.id)}
            </>,
          ],
          ["Registered", `by ${v.createdBy.name} on ${time(v.createdAt)}`],
          [
            "Approvals required for production",
            <>
              {f.model.approvalsRequired}
              <ContentLabel content={f.content} type="model" id={f.model.id} />
            </>,
          ],
        ]}
      />
    </section>
  );
}
