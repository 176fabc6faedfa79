/**
 * The documentation a promotion request was made with, as recorded in its promotion.request event (see
 * documentation.ts), with each missing section named for a reader: used by the model page and the auditor's report.
 * Null for requests recorded before the check existed.
 */
import { DOCUMENT_SECTIONS } from "@/server/documents/records";
import type { DocumentationRecord } from "./documentation";

const SECTION_TITLES = new Map<string, string>(
  [...DOCUMENT_SECTIONS.model, ...DOCUMENT_SECTIONS.dataset].map((s) => [s.key as string, s.title as string]),
);

/** A request's recorded documentation, with the missing sections named for the reviewer. */
export function requestDocumentation(d: DocumentationRecord | null | undefined) {
  if (!d || !Array.isArray(d.sections)) return null;
  return {
    written: d.written,
    total: d.total,
    acknowledgedMissing: d.acknowledgedMissing,
    missing: d.sections
      .filter((s) => s.sha256 === null)
      .map((s) => ({
        document: s.subjectType === "model" ? "Model card" : "Datasheet",
        subjectName: s.subjectName,
        section: s.section,
        title: SECTION_TITLES.get(s.section) ?? s.section,
      })),
  };
}
