/** Report section 3 (Annex IV 2(b)): every decision on the chain of runs (config changes, notes, corrections), oldest first. */
import type { ReportFacts } from "../collect-report";
import { Code, Json, SectionHeading, Table, time, type Refs } from "./primitives";

type Decision = ReportFacts["decisions"][number];

function What({ d }: { d: Decision }) {
  if (d.kind === "change")
    return (
      <>
        <Code value={d.path} />: <Json value={d.oldValue} /> → <Json value={d.newValue} />
      </>
    );
  if (d.kind === "correction") return `corrects #${d.correctsDecisionId ?? "?"}`;
  return d.kind === "initial" ? "initial configuration" : "note";
}

export function DesignSection({ f, refs }: { f: ReportFacts; refs: Refs }) {
  const rows = [...f.decisions]
    .sort((a, b) => a.id - b.id)
    .map((d) => [
      <>
        {d.id} {refs("decision", d.id)}
      </>,
      `#${d.runId} ${d.runName}`,
      d.kind,
      <What d={d} />,
      d.rationale,
      d.author.name,
      time(d.createdAt),
    ]);
  return (
    <section id="design">
      <SectionHeading annex="Annex IV 2(b)">3. Design choices and their rationale</SectionHeading>
      <p className="muted">
        Every configuration change, note and correction on the chain of runs that produced this version, oldest first. A change creates a
        new run (fork); the old run is never edited.
      </p>
      <Table caption="Decision history" head={["#", "Run", "Kind", "What", "Rationale", "Author", "Time"]} rows={rows} />
    </section>
  );
}
