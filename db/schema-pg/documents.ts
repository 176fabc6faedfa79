/**
 * PostgreSQL form of db/schema/documents.ts: the same tables, columns, keys and indexes (db/tests/schema-dialects.test.ts
 * keeps the two in step; db/schema-pg/README.md gives the type mapping). What each column means is documented there.
 */
import { pgTable, text, uniqueIndex, index, type AnyPgColumn, bigint } from "drizzle-orm/pg-core";
import { DOCUMENT_SUBJECT_TYPES } from "../schema/documents";
import { users } from "./users";

export const documents = pgTable(
  "documents",
  {
    id: bigint("id", { mode: "number" }).primaryKey().generatedByDefaultAsIdentity(),
    subjectType: text("subject_type", { enum: DOCUMENT_SUBJECT_TYPES }).notNull(),
    subjectId: bigint("subject_id", { mode: "number" }).notNull(),
    section: text("section").notNull(),
    version: bigint("version", { mode: "number" }).notNull(),
    body: text("body").notNull(),
    supersedesId: bigint("supersedes_id", { mode: "number" }).references((): AnyPgColumn => documents.id),
    authorId: bigint("author_id", { mode: "number" })
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
