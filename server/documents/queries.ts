/**
 * Read side of model cards and datasheets: a subject's sections with their latest version, history and signatures.
 * Reads only; imports no service (the documents service and the auditor's report both build on these). The store
 * forms (issue 16, db/store.ts: readDocuments, readLatestVersion, the `…In` transaction parts) and the synchronous
 * SQLite forms (documentsFor, requireSubject, latestVersion: for the report and the registry's documentation checks,
 * not on the store yet) build the same queries over given tables.
 */
import { and, asc, desc, eq, inArray } from "drizzle-orm";
import * as schema from "@/db/schema";
import type { DocumentSubjectType, signatures } from "@/db/schema";
import type { Db, DbOrTx, Tx } from "@/db/client";
import { asStore, reader, row, type Store, type StoreTables, type TxBody } from "@/db/store";
import { notFound } from "@/server/errors";
import { signatureText } from "@/server/registry/records";
import { DOCUMENT_SECTIONS, type DocumentRow } from "./records";

export type DocumentSignature = {
  id: number;
  userId: number;
  printedName: string;
  meaning: string;
  recordSha256: string;
  comment: string;
  createdAt: string;
  text: string;
};
export type DocumentVersion = DocumentRow & { author: string; signatures: DocumentSignature[] };
export type DocumentSection = { key: string; title: string; latest: DocumentVersion | null; history: DocumentVersion[] };

/** A subject's name, queried on any handle over the given tables (a store's; SQLite's by default). */
function subjectNameQuery(db: DbOrTx, t: StoreTables, subjectType: DocumentSubjectType, subjectId: number) {
  return subjectType === "model"
    ? db.select({ name: t.models.name }).from(t.models).where(eq(t.models.id, subjectId)).limit(1)
    : db.select({ name: t.datasets.name }).from(t.datasets).where(eq(t.datasets.id, subjectId)).limit(1);
}

/** A section's latest version, queried on any handle over the given tables. */
function latestVersionQuery(db: DbOrTx, t: StoreTables, subjectType: DocumentSubjectType, subjectId: number, section: string) {
  const { documents } = t;
  return db
    .select()
    .from(documents)
    .where(and(eq(documents.subjectType, subjectType), eq(documents.subjectId, subjectId), eq(documents.section, section)))
    .orderBy(desc(documents.version))
    .limit(1);
}

export function requireSubject(db: DbOrTx, subjectType: DocumentSubjectType, subjectId: number): string {
  const found = subjectNameQuery(db, schema, subjectType, subjectId).get();
  if (!found) notFound(`${subjectType} ${subjectId}`);
  return found.name;
}

export function latestVersion(db: DbOrTx, subjectType: DocumentSubjectType, subjectId: number, section: string): DocumentRow | undefined {
  return latestVersionQuery(db, schema, subjectType, subjectId, section).get();
}

/** latestVersion as an awaited read on a store (outside a transaction). */
export async function readLatestVersion(
  store: Store,
  subjectType: DocumentSubjectType,
  subjectId: number,
  section: string,
): Promise<DocumentRow | undefined> {
  return (await latestVersionQuery(reader(store), store.tables, subjectType, subjectId, section))[0];
}

/** requireSubject as a part of a store transaction body (db/store.ts). */
export function* requireSubjectIn(tx: Tx, t: StoreTables, subjectType: DocumentSubjectType, subjectId: number): TxBody<string> {
  const found = yield* row(subjectNameQuery(tx, t, subjectType, subjectId));
  if (!found) notFound(`${subjectType} ${subjectId}`);
  return found.name;
}

/** latestVersion as a part of a store transaction body (db/store.ts). */
export function* latestVersionIn(
  tx: Tx,
  t: StoreTables,
  subjectType: DocumentSubjectType,
  subjectId: number,
  section: string,
): TxBody<DocumentRow | undefined> {
  return yield* row(latestVersionQuery(tx, t, subjectType, subjectId, section));
}

export type SubjectDocuments = {
  subjectType: DocumentSubjectType;
  subjectId: number;
  subjectName: string;
  sections: DocumentSection[];
};

/** A subject's versions with their authors' names, newest first, on any handle over the given tables. */
function versionsQuery(db: DbOrTx, t: StoreTables, subjectType: DocumentSubjectType, subjectId: number) {
  const { documents, users } = t;
  return db
    .select({ d: documents, author: users.name })
    .from(documents)
    .innerJoin(users, eq(users.id, documents.authorId))
    .where(and(eq(documents.subjectType, subjectType), eq(documents.subjectId, subjectId)))
    .orderBy(desc(documents.version));
}

/** The signatures of the given document versions, oldest first, on any handle over the given tables. */
function signaturesQuery(db: DbOrTx, t: StoreTables, documentIds: number[]) {
  const { signatures } = t;
  return db
    .select()
    .from(signatures)
    .where(and(eq(signatures.recordType, "document"), inArray(signatures.recordId, documentIds)))
    .orderBy(asc(signatures.id));
}

type VersionWithAuthor = { d: DocumentRow; author: string };
type SignatureRow = typeof signatures.$inferSelect;

/** The sections of a subject, each with its latest version and history, from the rows the two queries above read. */
function assembleSections(subjectType: DocumentSubjectType, rows: VersionWithAuthor[], sigs: SignatureRow[]): DocumentSection[] {
  const versions: DocumentVersion[] = rows.map(({ d, author }) => ({
    ...d,
    author,
    signatures: sigs
      .filter((s) => s.recordId === d.id)
      .map((s) => ({
        id: s.id,
        userId: s.userId,
        printedName: s.printedName,
        meaning: s.meaning,
        recordSha256: s.recordSha256,
        comment: s.comment,
        createdAt: s.createdAt,
        text: signatureText(s),
      })),
  }));
  return DOCUMENT_SECTIONS[subjectType].map((s) => {
    const history = versions.filter((v) => v.section === s.key);
    return { key: s.key, title: s.title, latest: history[0] ?? null, history };
  });
}

/**
 * Every section of a subject, with its latest version, full history (newest first) and signatures. Synchronous, on
 * SQLite: the auditor's report (server/audit/report/), not on the store yet, reads it inside its own snapshot.
 */
export function documentsFor(db: DbOrTx, subjectType: DocumentSubjectType, subjectId: number): SubjectDocuments {
  const subjectName = requireSubject(db, subjectType, subjectId);
  const rows = versionsQuery(db, schema, subjectType, subjectId).all();
  const sigs = rows.length
    ? signaturesQuery(
        db,
        schema,
        rows.map((r) => r.d.id),
      ).all()
    : [];
  return { subjectType, subjectId, subjectName, sections: assembleSections(subjectType, rows, sigs) };
}

/** documentsFor on a store (SQLite or PostgreSQL, issue 16): awaited reads, the same answer. */
export async function readDocuments(storeOrDb: Store | Db, subjectType: DocumentSubjectType, subjectId: number): Promise<SubjectDocuments> {
  const store = asStore(storeOrDb);
  const db = reader(store);
  const found = (await subjectNameQuery(db, store.tables, subjectType, subjectId))[0];
  if (!found) notFound(`${subjectType} ${subjectId}`);
  const rows = await versionsQuery(db, store.tables, subjectType, subjectId);
  const sigs = rows.length
    ? await signaturesQuery(
        db,
        store.tables,
        rows.map((r) => r.d.id),
      )
    : [];
  return { subjectType, subjectId, subjectName: found.name, sections: assembleSections(subjectType, rows, sigs) };
}
