/**
 * Documents written by people: model-card and datasheet sections (intended use, limitations, ethical
 * considerations, data collection, licence). Invariants:
 * - A row is one version of one section of one subject and never changes; an edit is a new row with version + 1
 *   that points at the row it supersedes (written with its "document.update" audit event in one transaction).
 * - sha256 = sha256(canonical JSON of the version's content: subject, section, version, body, supersedes,
 *   author, time); signatures (recordType "document", meaning authorship or review) bind to it.
 */
import { sqliteTable, text, integer, uniqueIndex, index, type AnySQLiteColumn } from "drizzle-orm/sqlite-core";
import { users } from "./users";

export const DOCUMENT_SUBJECT_TYPES = ["model", "dataset"] as const;
export type DocumentSubjectType = (typeof DOCUMENT_SUBJECT_TYPES)[number];

export const documents = sqliteTable(
  "documents",
  {
    id: integer("id").primaryKey({ autoIncrement: true }),
    subjectType: text("subject_type", { enum: DOCUMENT_SUBJECT_TYPES }).notNull(),
    subjectId: integer("subject_id").notNull(),
    section: text("section").notNull(),
    version: integer("version").notNull(),
    body: text("body").notNull(),
    /** The version this one replaces; null for the first version. */
    supersedesId: integer("supersedes_id").references((): AnySQLiteColumn => documents.id),
    authorId: integer("author_id")
      .notNull()
      .references(() => users.id),
    createdAt: text("created_at").notNull(),
    sha256: text("sha256").notNull(),
  },
  (t) => [
    uniqueIndex("documents_subject_section_version").on(t.subjectType, t.subjectId, t.section, t.version),
    index("documents_subject").on(t.subjectType, t.subjectId),
  ],
);
