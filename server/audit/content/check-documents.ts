/**
 * Content check of model-card and datasheet sections: each version row's sha256 is recomputed from its content
 * (subject, section, version, body text, supersedes, author, time: documentRecord in server/documents/records.ts) and
 * compared with the row and with its document.update event; the superseded version's hash and the text length too.
 */
import { sha256Canonical } from "@/contracts/canonical";
import { documentRecord } from "@/server/documents/records";
import type { ContentChecker } from "./checker";
import { checkCreations, compareActor } from "./creations";
import type { EventSource } from "./ledger-events";
import type { DocumentRow, Tables } from "./tables";

export function documentSha256(d: DocumentRow): string {
  return sha256Canonical(documentRecord(d as Parameters<typeof documentRecord>[0]));
}

export function checkDocuments(c: ContentChecker, events: EventSource, t: Tables): void {
  checkCreations(c, events, {
    entityType: "document",
    action: "document.update",
    rows: t.documents,
    complete: t.complete,
    check: (d, ev, p) => {
      c.compare("document", d.id, "text and metadata (sha256 of the stored version)", p.sha256, documentSha256(d), ev.seq);
      const prev = d.supersedesId === null ? null : t.documents.get(d.supersedesId);
      c.compareFields("document", d.id, ev, p, [
        ["subjectType", d.subjectType, "subject type"],
        ["subjectId", d.subjectId, "subject"],
        ["section", d.section, "section"],
        ["version", d.version, "version"],
        ["sha256", d.sha256, "sha256 column"],
        ["supersedesId", d.supersedesId, "superseded version"],
        ["characters", d.body.length, "text length"],
      ]);
      if (prev) c.compare("document", d.id, "superseded version's sha256", p.supersedesSha256, prev.sha256, ev.seq);
      compareActor(c, "document", d.id, ev, d.authorId);
    },
  });
}
