/**
 * Model-card and datasheet sections written by people, versioned and signed.
 *
 * Invariants:
 * - Each edit is a new `documents` row (version = previous + 1, supersedes = previous row) written with its
 *   "document.update" audit event in one transaction. Rows are never updated. The event carries hashes, counts and
 *   identifiers only (never the text): the row's sha256 binds the text to the ledger.
 * - sha256 = sha256Canonical(documentRecord(row)); it is recomputed before signing, so altered text cannot be signed.
 * - Signatures use the `signatures` table (recordType "document", recordId = the version's row id), meaning
 *   "authorship" (engineers) or "review" (reviewers), after re-entering the password (checked asynchronously and
 *   throttled per account like sign-in, signature-password.ts, BEFORE the signing transaction, which re-reads what
 *   it relies on). Only the latest version of a section can be signed, once per person and meaning. A wrong
 *   password is refused AND recorded (signature.refused); throttled attempts (429) write nothing.
 * - Separation of duties: the author of a version cannot sign its review; the attempt is refused AND recorded
 *   (document.selfReviewRefused) in a transaction of its own, which commits although the request fails.
 * - A signed audit checkpoint follows each signature (design: "at every signature").
 *
 * On the store (issue 16, db/store.ts): updateDocument runs on SQLite or PostgreSQL, one transaction under the ledger
 * lock that checks the subject, the base version and the text inside it, so concurrent edits of one version on two
 * servers save one and refuse the others as stale. signDocument stays on SQLite: its refusal, password and re-read
 * helpers (server/auth/signature-password.ts) are synchronous SQLite code of the auth domain, not ported yet.
 */
import { and, eq } from "drizzle-orm";
import { z } from "zod";
import { documents, signatures } from "@/db/schema";
import type { DbOrTx, Tx } from "@/db/client";
import { PG_LOCK_KEYS } from "@/db/pg-client";
import { asStore, row as firstRow, transact, type StoreTables, type TxBody } from "@/db/store";
import { appendAuditEvent } from "@/server/audit/ledger";
import { appendEvent } from "@/server/audit/ledger-pg";
import { sha256Canonical } from "@/contracts/canonical";
import { PASSWORD_MAX } from "@/contracts/user-fields";
import { signatureText } from "../registry/records";
import { DOCUMENT_SECTIONS, documentRecord, type DocumentRow } from "./records";
import { latestVersion, latestVersionIn, requireSubjectIn } from "./queries";
import { checkpointAfterCommit } from "../app-context/audit-checkpoint-after-commit";
import { refuseSigning, requireSignerPassword, rereadSigner } from "../auth/signature-password";
import { now, requireRole, type ServiceContext, type SignedInActor } from "../app-context/service-context";
import type { StoreServiceContext } from "../app-context/store-context";
import { conflict, invalidInput, notFound } from "@/server/errors";

/** Who may write a section; who may sign it with which meaning. */
export const DOCUMENT_EDIT_ROLES = ["engineer", "reviewer"] as const;
const MEANING_ROLES = { authorship: ["engineer", "reviewer"], review: ["reviewer"] } as const;

const subjectSchema = z.object({ subjectType: z.enum(["model", "dataset"]), subjectId: z.number().int().positive() });
const sectionKeys = [...DOCUMENT_SECTIONS.model, ...DOCUMENT_SECTIONS.dataset].map((s) => s.key) as [string, ...string[]];

export const updateDocumentInput = subjectSchema.extend({
  section: z.enum(sectionKeys),
  body: z.string().trim().min(1, "write the section: an empty section says nothing").max(20_000, "a section is at most 20,000 characters"),
  /** The version the author edited (optimistic concurrency): a stale edit is refused rather than silently overwriting. */
  baseVersion: z.number().int().min(0),
});

export const signDocumentInput = z.object({
  documentId: z.number().int(),
  meaning: z.enum(["authorship", "review"]),
  password: z.string().max(PASSWORD_MAX, `a password is at most ${PASSWORD_MAX} characters`).min(1, "re-enter your password to sign"),
  comment: z.string().trim().max(4000).default(""),
});

/**
 * Saves a new version of a section with its document.update event. A part of a store transaction body: the subject,
 * the base version (a stale edit is a conflict) and an unchanged text are checked inside it.
 */
export function* insertDocumentVersion(
  tx: Tx,
  t: StoreTables,
  actor: SignedInActor,
  input: z.output<typeof updateDocumentInput>,
): TxBody<DocumentRow> {
  yield* requireSubjectIn(tx, t, input.subjectType, input.subjectId);
  const prev = yield* latestVersionIn(tx, t, input.subjectType, input.subjectId, input.section);
  const current = prev?.version ?? 0;
  if (input.baseVersion !== current)
    conflict(
      `this section changed while you edited it (you edited version ${input.baseVersion}, the latest is version ${current}): reload and edit again`,
    );
  if (prev && prev.body === input.body) conflict(`version ${prev.version} already says exactly this: nothing to save`);
  const base = {
    subjectType: input.subjectType,
    subjectId: input.subjectId,
    section: input.section,
    version: current + 1,
    body: input.body,
    supersedesId: prev?.id ?? null,
    authorId: actor.id,
    createdAt: now(),
  };
  const sha256 = sha256Canonical(documentRecord(base));
  const created = (yield* firstRow(
    tx
      .insert(t.documents)
      .values({ ...base, sha256 })
      .returning(),
  ))!;
  yield* appendEvent({
    actor,
    action: "document.update",
    entityType: "document",
    entityId: created.id,
    // Hashes, counts and identifiers only: the text stays in its row, bound to the ledger by sha256.
    payload: {
      subjectType: created.subjectType,
      subjectId: created.subjectId,
      section: created.section,
      version: created.version,
      sha256,
      supersedesId: created.supersedesId,
      supersedesSha256: prev?.sha256 ?? null,
      characters: created.body.length,
    },
  });
  return created;
}

export async function updateDocument(ctx: StoreServiceContext, raw: z.input<typeof updateDocumentInput>): Promise<DocumentRow> {
  requireRole(ctx.actor, DOCUMENT_EDIT_ROLES, "edit model cards and datasheets");
  const input = updateDocumentInput.parse(raw);
  const allowed = DOCUMENT_SECTIONS[input.subjectType].map((s) => s.key) as string[];
  if (!allowed.includes(input.section))
    invalidInput(`a ${input.subjectType} has no section "${input.section}" (it has: ${allowed.join(", ")})`);
  const store = asStore(ctx.db);
  const actor = ctx.actor;
  return transact(store, (tx) => insertDocumentVersion(tx, store.tables, actor, input), { pgLock: PG_LOCK_KEYS.ledger });
}

export async function signDocument(ctx: ServiceContext, raw: z.input<typeof signDocumentInput>) {
  const input = signDocumentInput.parse(raw);
  requireRole(ctx.actor, MEANING_ROLES[input.meaning], `sign documents with meaning "${input.meaning}"`);
  const doc = ctx.db.select().from(documents).where(eq(documents.id, input.documentId)).get();
  if (!doc) notFound(`document version ${input.documentId}`);
  if (input.meaning === "review" && doc.authorId === ctx.actor.id) {
    refuseSigning(
      ctx,
      {
        action: "document.selfReviewRefused",
        entityType: "document",
        entityId: doc.id,
        payload: {
          meaning: input.meaning,
          reason: "author of this version",
          section: doc.section,
          version: doc.version,
          recordSha256: doc.sha256,
        },
      },
      `${ctx.actor.name} wrote version ${doc.version} of "${doc.section}" and cannot sign its review: another reviewer must review it`,
    );
  }
  assertSignable(ctx.db, doc, ctx.actor, input.meaning);

  // The password: asynchronous and throttled, before the (synchronous) transaction. Throttled attempts write nothing.
  const signer = await requireSignerPassword(ctx, input.password, {
    entityType: "document",
    entityId: doc.id,
    payload: { meaning: input.meaning, recordSha256: doc.sha256 },
  });
  const signature = ctx.db.transaction((tx) => {
    // Re-read what the checks above relied on: it may have changed while the password was being checked.
    const user = rereadSigner(tx, ctx.actor, MEANING_ROLES[input.meaning]);
    const current = tx.select().from(documents).where(eq(documents.id, doc.id)).get();
    if (!current) notFound(`document version ${doc.id}`);
    assertSignable(tx, current, user, input.meaning);
    if (current.sha256 !== doc.sha256) conflict(`document version ${doc.id} changed while signing: reload and sign again`);
    const row = tx
      .insert(signatures)
      .values({
        userId: user.id,
        printedName: user.name,
        meaning: input.meaning,
        recordType: "document",
        recordId: doc.id,
        recordSha256: doc.sha256,
        comment: input.comment,
        createdAt: now(),
      })
      .returning()
      .get();
    appendAuditEvent(tx, {
      actor: ctx.actor,
      action: "signature.create",
      entityType: "signature",
      entityId: row.id,
      payload: {
        printedName: row.printedName,
        meaning: row.meaning,
        recordType: "document",
        recordId: doc.id,
        recordSha256: doc.sha256,
        section: doc.section,
        version: doc.version,
        comment: row.comment,
        createdAt: row.createdAt,
      },
    });
    return row;
  });
  const auditCheckpoint = checkpointAfterCommit(
    ctx,
    `${input.meaning} signature of ${doc.subjectType} ${doc.subjectId} ${doc.section} v${doc.version} by ${signer.name}`,
  );
  return { signatureId: signature.id, text: signatureText(signature), auditCheckpoint };
}

/** The latest version of its section, its text still hashing to its sha256, not yet signed by this person with this meaning. */
function assertSignable(db: DbOrTx, doc: DocumentRow, signer: { id: number; name: string }, meaning: "authorship" | "review"): void {
  const latest = latestVersion(db, doc.subjectType, doc.subjectId, doc.section)!;
  if (latest.id !== doc.id)
    conflict(`version ${doc.version} of "${doc.section}" has been superseded by version ${latest.version}: sign the latest version`);
  const recomputed = sha256Canonical(documentRecord(doc));
  if (recomputed !== doc.sha256)
    conflict(
      `document version ${doc.id} no longer matches its sha256 (${doc.sha256.slice(0, 12)}… ≠ ${recomputed.slice(0, 12)}…): it cannot be signed`,
    );
  const dup = db
    .select({ id: signatures.id })
    .from(signatures)
    .where(
      and(
        eq(signatures.recordType, "document"),
        eq(signatures.recordId, doc.id),
        eq(signatures.userId, signer.id),
        eq(signatures.meaning, meaning),
      ),
    )
    .get();
  if (dup) conflict(`${signer.name} has already signed version ${doc.version} of this section with meaning ${meaning}`);
}
