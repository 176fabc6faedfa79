/**
 * Report section 4 (Annex IV 2(d)): one datasheet per dataset in the lineage: its source and raw-bytes hash, the
 * datasheet sections people wrote, each cleaned version (recipe and cleaning report) and each split (manifest,
 * partition digests, and the preprocessing fitted on the train partition).
 */
import { Fragment } from "react";
import type { SplitManifest } from "@/trainer/types";
import type { ReportFacts } from "../collect-report";
import { DocumentSections } from "./document-sections";
import { Code, Facts, Json, SectionHeading, Table, num, type Refs } from "./primitives";

type Datasheet = ReportFacts["datasheets"][number];
type CleanedVersion = Datasheet["versions"][number];
type Split = CleanedVersion["splits"][number];

/** A split's fitted preprocessing: label encoding, vocabulary, and normalisation statistics (value → (v − a) / b), in file column order. */
function Preprocessing({ m, columnOrder }: { m: SplitManifest; columnOrder: string[] }) {
  const position = (column: string) => (columnOrder.includes(column) ? columnOrder.indexOf(column) : columnOrder.length);
  const stats = Object.entries(m.normalization.stats).sort(([a], [b]) => position(a) - position(b));
  const [a, b] = m.normalization.method === "minmax" ? ["Minimum", "Range"] : ["Mean", "Standard deviation"];
  return (
    <>
      {m.labelEncoding && (
        <p className="meta">Label encoding (output index → class): {m.labelEncoding.map((c, i) => `${i} → ${c}`).join(", ")}</p>
      )}
      {m.vocabulary && (
        <p className="meta">
          Vocabulary: {m.vocabulary.size} tokens, sequences of {m.vocabulary.sequenceLength} · sha256 <Code value={m.vocabulary.sha256} />
        </p>
      )}
      {stats.length > 0 && (
        <Table
          caption={`Normalisation statistics (${m.normalization.method}, fitted on the train partition)`}
          head={["Column", a, b]}
          rows={stats.map(([col, st]) => [col, num(st.a), num(st.b)])}
        />
      )}
    </>
  );
}

function SplitDetails({ sp, columns, refs }: { sp: Split; columns: string[]; refs: Refs }) {
  const m = sp.manifest;
  const parts = (["train", "validation", "test"] as const).map((p) => {
    const part = m.partitions[p];
    return [p, num(part.count), part.classBalance ? <Json value={part.classBalance} /> : "–", <Code value={part.indicesSha256} />];
  });
  return (
    <>
      <h5>
        Split #{sp.id} {refs("split", sp.id)}
      </h5>
      <p className="meta">
        {m.strategy} split, seed {m.seed}, ratios <Json value={m.ratios} />, normalisation {m.normalization.method} (statistics fitted on
        the train partition only) · manifest sha256 <Code value={sp.sha256} />
      </p>
      <Table caption="Split manifest" head={["Partition", "Rows", "Class balance", "Row indices sha256"]} rows={parts} />
      <Preprocessing m={m} columnOrder={columns} />
    </>
  );
}

function CleanedVersionDetails({ v, columns, refs }: { v: CleanedVersion; columns: string[]; refs: Refs }) {
  const steps = v.report.steps.map((st) => [
    st.op,
    <Json value={st.params} />,
    num(st.rowsBefore),
    num(st.rowsAfter),
    num(st.rowsDropped),
    <Json value={st.valuesImputed} />,
    num(st.outliersRemoved),
  ]);
  return (
    <>
      <h5>
        Cleaned version #{v.id} {refs("datasetVersion", v.id)}
      </h5>
      <p className="meta">
        Recipe <Json value={v.recipe} /> (sha256 <Code value={v.recipeSha256} />) · {v.report.rowsIn} rows in, {v.report.rowsOut} rows out ·
        cleaned rows sha256 <Code value={v.sha256} />
      </p>
      <Table
        caption="Cleaning report"
        head={["Step", "Parameters", "Rows before", "Rows after", "Dropped", "Imputed", "Outliers removed"]}
        rows={steps}
      />
      {v.splits.map((sp) => (
        <SplitDetails key={sp.id} sp={sp} columns={columns} refs={refs} />
      ))}
    </>
  );
}

function DatasheetArticle({ d, refs }: { d: Datasheet; refs: Refs }) {
  return (
    <article className="datasheet">
      <h3>
        Datasheet: {d.name} {refs("dataset", d.id)}
      </h3>
      <Facts
        items={[
          ["Source", d.source],
          ["Origin", d.origin || "–"],
          ["Licence", d.licence || "–"],
          ["Raw bytes sha256", <Code value={d.sha256} />],
          ["Rows", num(d.rowCount)],
        ]}
      />
      <DocumentSections sections={d.documents} refs={refs} />
      {d.versions.map((v) => (
        <Fragment key={v.id}>
          <CleanedVersionDetails v={v} columns={d.columns} refs={refs} />
        </Fragment>
      ))}
    </article>
  );
}

export function DataSection({ f, refs }: { f: ReportFacts; refs: Refs }) {
  return (
    <section id="data">
      <SectionHeading annex="Annex IV 2(d)">4. Data: datasheets, cleaning and splits</SectionHeading>
      {f.datasheets.length ? (
        f.datasheets.map((d) => <DatasheetArticle key={d.id} d={d} refs={refs} />)
      ) : (
        <p className="missing">No dataset is recorded for this version&apos;s runs.</p>
      )}
    </section>
  );
}
