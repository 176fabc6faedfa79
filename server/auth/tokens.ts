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
 *
 * Store (issue 16): every function takes a store (or the SQLite handle) and is async. Create and revoke are one
 * transaction body each (db/store.ts) holding the ledger lock on PostgreSQL, so two servers revoking one token at
 * once record one token.revoke, as SQLite's single writer does. The token lookup keeps its prepared statements on
 * SQLite (the tracking API's hot path) and is the same join through drizzle on PostgreSQL.
 */
import { and, desc, eq, isNull } from "drizzle-orm";
import type Database from "better-sqlite3";
import { randomBytes } from "node:crypto";
import { z } from "zod";
import type { Db } from "@/db/client";
import { PG_LOCK_KEYS } from "@/db/pg-client";
import { asStore, exec, reader, row, transact, type Store } from "@/db/store";
import { sha256Hex } from "@/contracts/canonical";
import { type Actor } from "@/server/audit/ledger";
import { appendEvent } from "@/server/audit/ledger-pg";
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
export async function tokensOf(store: Store | Db, userId: number): Promise<TokenListing[]> {
  const s = asStore(store);
  const { apiTokens } = s.tables;
  return reader(s)
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
    .orderBy(desc(apiTokens.id));
}

/**
 * Creates a token for `owner` (the signed-in user for themselves; the CLI names the user). `actor` is who asked (the
 * same person, or the operator's system actor in the CLI). Returns the token text: show it once.
 */
export async function createToken(
  store: Store | Db,
  actor: Actor,
  owner: { id: number; email: string },
  raw: z.input<typeof createTokenInput>,
) {
  const input = createTokenInput.parse(raw);
  const token = `${TOKEN_PREFIX}${randomBytes(32).toString("base64url")}`;
  const prefix = token.slice(0, SHOWN_PREFIX_CHARS);
  const s = asStore(store);
  const { apiTokens, users } = s.tables;
  return transact(
    s,
    function* (tx) {
      const user = yield* row(tx.select({ disabled: users.disabled }).from(users).where(eq(users.id, owner.id)));
      if (!user) notFound(`user ${owner.email}`);
      if (user.disabled) forbidden(`${owner.email} is disabled: a disabled account gets no token`);
      const createdAt = now();
      const inserted = yield* row(
        tx
          .insert(apiTokens)
          .values({ userId: owner.id, name: input.name, tokenSha256: sha256Hex(token), prefix, createdAt })
          .returning({ id: apiTokens.id }),
      );
      const id = inserted!.id;
      yield* appendEvent({
        actor,
        action: "token.create",
        entityType: "token",
        entityId: id,
        payload: { userId: owner.id, email: owner.email, name: input.name, prefix, createdAt },
      });
      return { id, name: input.name, prefix, createdAt, token };
    },
    { pgLock: PG_LOCK_KEYS.ledger },
  );
}

/** Revokes a token of `ownerId` (a person revokes only their own; the CLI names the user). Revoking twice is refused. */
export async function revokeToken(
  store: Store | Db,
  actor: Actor,
  ownerId: number,
  raw: z.input<typeof revokeTokenInput>,
): Promise<{ ok: true }> {
  const { tokenId } = revokeTokenInput.parse(raw);
  const s = asStore(store);
  const { apiTokens } = s.tables;
  return transact(
    s,
    function* (tx) {
      const found = yield* row(
        tx
          .select()
          .from(apiTokens)
          .where(and(eq(apiTokens.id, tokenId), eq(apiTokens.userId, ownerId))),
      );
      if (!found) notFound(`token ${tokenId}`);
      if (found.revokedAt !== null) forbidden(`token ${tokenId} (${found.name}) was already revoked at ${found.revokedAt}`);
      const revokedAt = now();
      yield* exec(tx.update(apiTokens).set({ revokedAt }).where(eq(apiTokens.id, tokenId)));
      yield* appendEvent({
        actor,
        action: "token.revoke",
        entityType: "token",
        entityId: tokenId,
        payload: { userId: ownerId, name: found.name, prefix: found.prefix, revokedAt },
      });
      return { ok: true as const };
    },
    { pgLock: PG_LOCK_KEYS.ledger },
  );
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
  /** 0/1 from SQLite's prepared statement, a boolean from drizzle on PostgreSQL. */
  disabled: number | boolean;
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

/** The token's row and its user's (one query), and the last_used_at update: SQLite's prepared statements, or drizzle. */
type TokenAccess = { lookup(sha256: string): Promise<TokenLookupRow | undefined>; touch(at: string, tokenId: number): Promise<void> };

function tokenAccessOf(store: Store): TokenAccess {
  if (store.dialect === "sqlite") {
    const st = statementsOf(store.db.$client);
    return {
      lookup: (sha256) => Promise.resolve(st.lookup.get(sha256)),
      touch: (at, tokenId) => Promise.resolve(void st.touch.run(at, tokenId)),
    };
  }
  const db = reader(store);
  const { apiTokens, users } = store.tables;
  return {
    lookup: async (sha256) =>
      (
        await db
          .select({
            tokenId: apiTokens.id,
            lastUsedAt: apiTokens.lastUsedAt,
            revokedAt: apiTokens.revokedAt,
            userId: users.id,
            name: users.name,
            email: users.email,
            role: users.role,
            disabled: users.disabled,
          })
          .from(apiTokens)
          .innerJoin(users, eq(users.id, apiTokens.userId))
          .where(eq(apiTokens.tokenSha256, sha256))
          .limit(1)
      )[0],
    touch: async (at, tokenId) => {
      await db
        .update(apiTokens)
        .set({ lastUsedAt: at })
        .where(and(eq(apiTokens.id, tokenId), isNull(apiTokens.revokedAt)));
    },
  };
}

/**
 * The user a token acts as (current role and name, read with the token in one query), or why not: unknown, revoked,
 * or its user disabled. Moves last_used_at (at most once a minute).
 */
export async function actorForToken(
  store: Store | Db,
  token: string,
): Promise<{ actor: SignedInActor & { tokenId: number } } | { refusal: TokenRefusal }> {
  if (!token.startsWith(TOKEN_PREFIX) || token.length > 200) return { refusal: "unknown" };
  const access = tokenAccessOf(asStore(store));
  const found = await access.lookup(sha256Hex(token));
  if (!found) return { refusal: "unknown" };
  if (found.revokedAt !== null) return { refusal: "revoked" };
  if (found.disabled) return { refusal: "disabled" };
  const at = Date.now();
  if (found.lastUsedAt === null || at - Date.parse(found.lastUsedAt) >= LAST_USED_RESOLUTION_MS)
    await access.touch(new Date(at).toISOString(), found.tokenId);
  return { actor: { id: found.userId, name: found.name, role: found.role, email: found.email, tokenId: found.tokenId } };
}
