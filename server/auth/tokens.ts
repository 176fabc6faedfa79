/**
 * Personal access tokens: how a training script (an MLflow client, the TypeScript client in contracts/mlflow/) signs
 * in to the tracking API (server/mlflow/). A token acts as its user, with the user's current role.
 *
 * Invariants:
 * - The token is 32 random bytes (base64url) behind the prefix "rlt_"; the database holds only its sha256 (a token
 *   is high-entropy, so a plain hash cannot be reversed by guessing). The text is returned once, at creation.
 * - Creating and revoking are ledger events (token.create, token.revoke) written in the same transaction; the event
 *   names the token by id, name and prefix, never by its text or hash.
 * - A revoked token, or a token of a disabled user, authenticates nobody; revoking is final.
 * - last_used_at moves forward at most once a minute (operational state, outside the ledger, as sessions do).
 */
import { and, desc, eq } from "drizzle-orm";
import type Database from "better-sqlite3";
import { randomBytes } from "node:crypto";
import { z } from "zod";
import { apiTokens, users } from "@/db/schema";
import type { Db, DbOrTx } from "@/db/client";
import { sha256Hex } from "@/contracts/canonical";
import { appendAuditEvent, type Actor } from "@/server/audit/ledger";
import { forbidden, notFound } from "@/server/errors";
import { now, type SignedInActor } from "@/server/app-context/service-context";

export const TOKEN_PREFIX = "rlt_";
const SHOWN_PREFIX_CHARS = 8;
const LAST_USED_RESOLUTION_MS = 60_000;

export const tokenNameField = z.string().trim().min(1, "give the token a name").max(100, "a token name is at most 100 characters");
export const createTokenInput = z.object({ name: tokenNameField.default("token") });
export const revokeTokenInput = z.object({ tokenId: z.number().int() });

export type TokenListing = {
  id: number;
  name: string;
  prefix: string;
  createdAt: string;
  lastUsedAt: string | null;
  revokedAt: string | null;
};

/** The tokens of one user, newest first (never their text or hash). */
export function tokensOf(db: DbOrTx, userId: number): TokenListing[] {
  return db
    .select({
      id: apiTokens.id,
      name: apiTokens.name,
      prefix: apiTokens.prefix,
      createdAt: apiTokens.createdAt,
      lastUsedAt: apiTokens.lastUsedAt,
      revokedAt: apiTokens.revokedAt,
    })
    .from(apiTokens)
    .where(eq(apiTokens.userId, userId))
    .orderBy(desc(apiTokens.id))
    .all();
}

/**
 * Creates a token for `owner` (the signed-in user for themselves; the CLI names the user). `actor` is who asked (the
 * same person, or the operator's system actor in the CLI). Returns the token text: show it once.
 */
export function createToken(db: Db, actor: Actor, owner: { id: number; email: string }, raw: z.input<typeof createTokenInput>) {
  const input = createTokenInput.parse(raw);
  const token = `${TOKEN_PREFIX}${randomBytes(32).toString("base64url")}`;
  const prefix = token.slice(0, SHOWN_PREFIX_CHARS);
  return db.transaction((tx) => {
    const user = tx.select({ disabled: users.disabled }).from(users).where(eq(users.id, owner.id)).get();
    if (!user) notFound(`user ${owner.email}`);
    if (user.disabled) forbidden(`${owner.email} is disabled: a disabled account gets no token`);
    const createdAt = now();
    const row = tx
      .insert(apiTokens)
      .values({ userId: owner.id, name: input.name, tokenSha256: sha256Hex(token), prefix, createdAt })
      .returning({ id: apiTokens.id })
      .get();
    appendAuditEvent(tx, {
      actor,
      action: "token.create",
      entityType: "token",
      entityId: row.id,
      payload: { userId: owner.id, email: owner.email, name: input.name, prefix, createdAt },
    });
    return { id: row.id, name: input.name, prefix, createdAt, token };
  });
}

/** Revokes a token of `ownerId` (a person revokes only their own; the CLI names the user). Revoking twice is refused. */
export function revokeToken(db: Db, actor: Actor, ownerId: number, raw: z.input<typeof revokeTokenInput>): { ok: true } {
  const { tokenId } = revokeTokenInput.parse(raw);
  return db.transaction((tx) => {
    const row = tx
      .select()
      .from(apiTokens)
      .where(and(eq(apiTokens.id, tokenId), eq(apiTokens.userId, ownerId)))
      .get();
    if (!row) notFound(`token ${tokenId}`);
    if (row.revokedAt !== null) forbidden(`token ${tokenId} (${row.name}) was already revoked at ${row.revokedAt}`);
    const revokedAt = now();
    tx.update(apiTokens).set({ revokedAt }).where(eq(apiTokens.id, tokenId)).run();
    appendAuditEvent(tx, {
      actor,
      action: "token.revoke",
      entityType: "token",
      entityId: tokenId,
      payload: { userId: ownerId, name: row.name, prefix: row.prefix, revokedAt },
    });
    return { ok: true as const };
  });
}

/** Why a token was refused; the tracking API answers 401 UNAUTHENTICATED with this message. */
export type TokenRefusal = "unknown" | "revoked" | "disabled";
export const TOKEN_REFUSALS: Record<TokenRefusal, string> = {
  unknown: "this access token is not valid",
  revoked: "this access token was revoked",
  disabled: "the account of this access token is disabled",
};

type TokenLookupRow = {
  tokenId: number;
  lastUsedAt: string | null;
  revokedAt: string | null;
  userId: number;
  name: string;
  email: string;
  role: SignedInActor["role"];
  disabled: number;
};
type TokenStatements = { lookup: Database.Statement<[string], TokenLookupRow>; touch: Database.Statement<[string, number]> };
const tokenStatements = new WeakMap<Database.Database, TokenStatements>();

/** Prepared once per connection: every tracking API call authenticates, and drizzle's builder cost more than the query. */
function statementsOf(sqlite: Database.Database): TokenStatements {
  let st = tokenStatements.get(sqlite);
  if (!st) {
    st = {
      lookup: sqlite.prepare(
        `SELECT t.id AS tokenId, t.last_used_at AS lastUsedAt, t.revoked_at AS revokedAt,
                u.id AS userId, u.name AS name, u.email AS email, u.role AS role, u.disabled AS disabled
           FROM api_tokens t JOIN users u ON u.id = t.user_id WHERE t.token_sha256 = ?`,
      ),
      touch: sqlite.prepare("UPDATE api_tokens SET last_used_at = ? WHERE id = ? AND revoked_at IS NULL"),
    };
    tokenStatements.set(sqlite, st);
  }
  return st;
}

/**
 * The user a token acts as (current role and name, read with the token in one query), or why not: unknown, revoked,
 * or its user disabled. Moves last_used_at (at most once a minute).
 */
export function actorForToken(db: Db, token: string): { actor: SignedInActor & { tokenId: number } } | { refusal: TokenRefusal } {
  if (!token.startsWith(TOKEN_PREFIX) || token.length > 200) return { refusal: "unknown" };
  const st = statementsOf(db.$client);
  const row = st.lookup.get(sha256Hex(token));
  if (!row) return { refusal: "unknown" };
  if (row.revokedAt !== null) return { refusal: "revoked" };
  if (row.disabled) return { refusal: "disabled" };
  const at = Date.now();
  if (row.lastUsedAt === null || at - Date.parse(row.lastUsedAt) >= LAST_USED_RESOLUTION_MS)
    st.touch.run(new Date(at).toISOString(), row.tokenId);
  return { actor: { id: row.userId, name: row.name, role: row.role, email: row.email, tokenId: row.tokenId } };
}
