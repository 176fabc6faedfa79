/**
 * Model card and datasheet sections as the report prints them: each section's latest version (author, time,
 * sha256, ledger events), its body as written, and its signatures; a section never written is said to be missing.
 *
 * Invariant: the body is printed as text (pre-wrapped by the CSS), never as markup, whatever its author typed.
 */
import { Fragment } from "react";
import type { DocumentSection } from "@/server/documents/queries";
import { Code, SignatureList, time, type Refs } from "./primitives";

export function DocumentSections({ sections, refs }: { sections: DocumentSection[]; refs: Refs }) {
  return sections.map((s) => {
    const d = s.latest;
    if (!d) {
      return (
        <Fragment key={s.key}>
          <h4>{s.title}</h4>
          <p className="missing">Not written yet: this section of the documentation is missing.</p>
        </Fragment>
      );
    }
    return (
      <Fragment key={s.key}>
        <h4>{s.title}</h4>
        <p className="meta">
          Version {d.version}, written by {d.author} on {time(d.createdAt)} · sha256 <Code value={d.sha256} /> {refs("document", d.id)}
        </p>
        <div className="doc-body">{d.body}</div>
        <SignatureList signatures={d.signatures} refs={refs} empty="Not signed." />
      </Fragment>
    );
  });
}
