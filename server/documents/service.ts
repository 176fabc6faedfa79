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
 * servers save one and refuse the others as stale. signDocument too: its re-checks (signer, version, earlier
 * signature, hash) and the insert are one body under the ledger lock, so one person signing one version at once on
 * two servers gives one signature and a conflict. The checkpoint after a signature is signed on either store.
 */
import { and, eq } from "drizzle-orm";
import { z } from "zod";
import type { DbOrTx, Tx } from "@/db/client";
import { PG_LOCK_KEYS } from "@/db/pg-client";
import { asStore, reader, row as firstRow, transact, type StoreTables, type TxBody } from "@/db/store";
import { appendEvent } from "@/server/audit/ledger-pg";
import { sha256Canonical } from "@/contracts/canonical";
import { PASSWORD_MAX } from "@/contracts/user-fields";
import { signatureText } from "../registry/records";
import { DOCUMENT_SECTIONS, documentRecord, type DocumentRow } from "./records";
import { latestVersionIn, readLatestVersion, requireSubjectIn } from "./queries";
import { checkpointAfterCommitOn } from "../app-context/audit-checkpoint-after-commit";
import { refuseSigning, requireSignerPassword, rereadSigner } from "../auth/signature-password";
import { now, requireRole, type ServiceDeps, type SignedInActor } from "../app-context/service-context";
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

/** What signing needs besides the store and the actor: the audit keys of the checkpoint that follows a signature. */
export type SignDocumentContext = StoreServiceContext & Pick<ServiceDeps, "auditKeys">;

export async function signDocument(ctx: SignDocumentContext, raw: z.input<typeof signDocumentInput>) {
  const input = signDocumentInput.parse(raw);
  const actor = ctx.actor;
  requireRole(actor, MEANING_ROLES[input.meaning], `sign documents with meaning "${input.meaning}"`);
  const store = asStore(ctx.db);
  const t = store.tables;
  const doc = (await reader(store).select().from(t.documents).where(eq(t.documents.id, input.documentId)).limit(1))[0];
  if (!doc) notFound(`document version ${input.documentId}`);
  if (input.meaning === "review" && doc.authorId === actor.id) {
    await refuseSigning(
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
      `${actor.name} wrote version ${doc.version} of "${doc.section}" and cannot sign its review: another reviewer must review it`,
    );
  }
  assertSignable(
    doc,
    await readLatestVersion(store, doc.subjectType, doc.subjectId, doc.section),
    (await signatureOf(reader(store), t, doc.id, actor.id, input.meaning))[0],
    actor,
    input.meaning,
  );

  // The password: asynchronous and throttled, before the transaction (no awaits inside one). Throttled attempts write nothing.
  const signer = await requireSignerPassword(ctx, input.password, {
    entityType: "document",
    entityId: doc.id,
    payload: { meaning: input.meaning, recordSha256: doc.sha256 },
  });
  const signature = await transact(
    store,
    function* (tx) {
      // Re-read what the checks above relied on: it may have changed while the password was being checked.
      const user = yield* rereadSigner(tx, t, actor, MEANING_ROLES[input.meaning]);
      const current = yield* firstRow(tx.select().from(t.documents).where(eq(t.documents.id, doc.id)).limit(1));
      if (!current) notFound(`document version ${doc.id}`);
      assertSignable(
        current,
        yield* latestVersionIn(tx, t, current.subjectType, current.subjectId, current.section),
        yield* firstRow(signatureOf(tx, t, doc.id, user.id, input.meaning)),
        user,
        input.meaning,
      );
      if (current.sha256 !== doc.sha256) conflict(`document version ${doc.id} changed while signing: reload and sign again`);
      const row = (yield* firstRow(
        tx
          .insert(t.signatures)
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
          .returning(),
      ))!;
      yield* appendEvent({
        actor,
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
    },
    // The ledger lock also makes the re-checks and the insert one step: two servers cannot both find no signature.
    { pgLock: PG_LOCK_KEYS.ledger },
  );
  const reason = `${input.meaning} signature of ${doc.subjectType} ${doc.subjectId} ${doc.section} v${doc.version} by ${signer.name}`;
  const auditCheckpoint = await checkpointAfterCommitOn({ db: store, auditKeys: ctx.auditKeys }, reason);
  return { signatureId: signature.id, text: signatureText(signature), auditCheckpoint };
}

/** This person's signature of a document version with this meaning, if any (a query on any handle over the given tables). */
function signatureOf(db: DbOrTx, t: StoreTables, documentId: number, userId: number, meaning: "authorship" | "review") {
  const { signatures } = t;
  return db
    .select({ id: signatures.id })
    .from(signatures)
    .where(
      and(
        eq(signatures.recordType, "document"),
        eq(signatures.recordId, documentId),
        eq(signatures.userId, userId),
        eq(signatures.meaning, meaning),
      ),
    )
    .limit(1);
}

/**
 * Signable: the latest version of its section (`latest`), its text still hashing to its sha256, not yet signed by
 * this person with this meaning (`signed`: their signature, if any). The checks in this order, as before the port.
 */
function assertSignable(
  doc: DocumentRow,
  latest: DocumentRow | undefined,
  signed: { id: number } | undefined,
  signer: { name: string },
  meaning: "authorship" | "review",
): void {
  if (latest && latest.id !== doc.id)
    conflict(`version ${doc.version} of "${doc.section}" has been superseded by version ${latest.version}: sign the latest version`);
  const recomputed = sha256Canonical(documentRecord(doc));
  if (recomputed !== doc.sha256)
    conflict(
      `document version ${doc.id} no longer matches its sha256 (${doc.sha256.slice(0, 12)}… ≠ ${recomputed.slice(0, 12)}…): it cannot be signed`,
    );
  if (signed) conflict(`${signer.name} has already signed version ${doc.version} of this section with meaning ${meaning}`);
}
