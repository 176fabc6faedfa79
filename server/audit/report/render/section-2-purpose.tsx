/** Report section 2 (Annex IV 1(a), 3): intended purpose, limitations and risks, from the signed model card. */
import type { ReportFacts } from "../collect-report";
import { DocumentSections } from "./document-sections";
import { SectionHeading, type Refs } from "./primitives";

export function PurposeSection({ f, refs }: { f: ReportFacts; refs: Refs }) {
  return (
    <section id="purpose">
      <SectionHeading annex="Annex IV 1(a), 3">2. Intended purpose, limitations and risks</SectionHeading>
      <p className="muted">
        Model card sections written by people in Runledger; each is versioned and signed, and bound to the ledger by its sha256.
      </p>
      <DocumentSections sections={f.modelCard} refs={refs} />
    </section>
  );
}
