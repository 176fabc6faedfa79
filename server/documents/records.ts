/**
 * What a model-card or datasheet section is and what its sha256 covers: pure, no database. Shared by the documents
 * service (which hashes and signs), the document reads and the content verifier (which recomputes the hash), so both
 * sides build the record with the same code.
 *
 * Invariant: sha256 = sha256Canonical(documentRecord(row)); documentRecord's shape changes only with the verifier.
 */
import type { documents, DocumentSubjectType } from "@/db/schema";

/** The sections people write, per subject, in the order a model card / datasheet shows them. */
export const DOCUMENT_SECTIONS = {
  model: [
    { key: "intended_use", title: "Intended purpose and use" },
    { key: "limitations", title: "Limitations and conditions of use" },
    { key: "ethical_considerations", title: "Ethical considerations and risks" },
  ],
  dataset: [
    { key: "data_collection", title: "Data collection" },
    { key: "licence", title: "Licence and terms of use" },
  ],
} as const satisfies Record<DocumentSubjectType, readonly { key: string; title: string }[]>;

export type DocumentRow = typeof documents.$inferSelect;

/** The content a version's sha256 covers (and signatures bind to). */
export function documentRecord(
  d: Pick<DocumentRow, "subjectType" | "subjectId" | "section" | "version" | "body" | "supersedesId" | "authorId" | "createdAt">,
) {
  return {
    subjectType: d.subjectType,
    subjectId: d.subjectId,
    section: d.section,
    version: d.version,
    body: d.body,
    supersedesId: d.supersedesId,
    authorId: d.authorId,
    createdAt: d.createdAt,
  };
}
