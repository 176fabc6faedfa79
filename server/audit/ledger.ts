/**
 * Appends audit events to the hash chain. Call `appendAuditEvent` inside the same synchronous
 * better-sqlite3 transaction as the change it records, so both land or neither does.
 *
 * Invariants: seq is gapless from 1; leaf_hash = sha256(0x00 || canonical(event body));
 * chain_hash = sha256(prev_chain_hash || leaf_hash) over raw 32-byte digests, the first
 * prev_chain_hash being 32 zero bytes. The event body is exactly what `eventBody` returns.
 */
import { createHash } from "node:crypto";
import type { auditEvents } from "@/db/schema";
import { sqliteClientOf, type DbOrTx } from "@/db/client";
import { insertAuditEventRow, lastAuditHead } from "./ledger-reads";
import { canonicalJson } from "@/contracts/canonical";
import type { AuditAction } from "./actions";

export const GENESIS_CHAIN_HASH = "0".repeat(64);

/**
 * Who caused an event. `tokenId`: the personal access token (api_tokens) the request came with, when it came through
 * the tracking API (server/mlflow/); appendAuditEvent records it in the payload as `viaTokenId`, so every event an
 * API call causes names the token that caused it.
 */
export type Actor = { id: number | null; name: string; role: string; tokenId?: number };
export const SYSTEM_ACTOR: Actor = { id: null, name: "Runledger server", role: "system" };

export type AuditEventRow = typeof auditEvents.$inferSelect;

/** The fields an event's leaf hash covers, in their canonical form. */
export function eventBody(e: Omit<AuditEventRow, "leafHash" | "chainHash">) {
  return {
    seq: e.seq,
    at: e.at,
    actorId: e.actorId,
    actorName: e.actorName,
    role: e.role,
    action: e.action,
    entityType: e.entityType,
    entityId: e.entityId,
    payload: JSON.parse(e.payload) as unknown,
  };
}

export function leafHash(body: ReturnType<typeof eventBody>): string {
  return createHash("sha256")
    .update(Buffer.from([0]))
    .update(canonicalJson(body))
    .digest("hex");
}

export function chainHash(prevChainHex: string, leafHex: string): string {
  return createHash("sha256").update(Buffer.from(prevChainHex, "hex")).update(Buffer.from(leafHex, "hex")).digest("hex");
}

export type NewAuditEvent = {
  actor: Actor;
  action: AuditAction;
  entityType: string;
  entityId: string | number;
  /** Before/after values, hashes, counts, identifiers: never raw data rows. */
  payload: Record<string, unknown>;
  at?: string;
};

/** The last event of the log as an append needs it: undefined when the log is empty. */
export type LedgerTip = { seq: number; chainHash: string } | undefined;

/**
 * The row that follows `last`: the one definition of an event's seq, stored payload (canonical JSON, with viaTokenId),
 * leaf hash and chain hash, shared by every store (SQLite here, PostgreSQL in ledger-pg.ts), so the same event gets
 * the same bytes and hashes wherever it is appended and one verifier checks both.
 */
export function nextAuditEventRow(last: LedgerTip, e: NewAuditEvent): AuditEventRow {
  const base = {
    seq: (last?.seq ?? 0) + 1,
    at: e.at ?? new Date().toISOString(),
    actorId: e.actor.id,
    actorName: e.actor.name,
    role: e.actor.role,
    action: e.action,
    entityType: e.entityType,
    entityId: String(e.entityId),
    payload: canonicalJson(e.actor.tokenId === undefined ? e.payload : { ...e.payload, viaTokenId: e.actor.tokenId }),
  };
  const leaf = leafHash(eventBody(base));
  return { ...base, leafHash: leaf, chainHash: chainHash(last?.chainHash ?? GENESIS_CHAIN_HASH, leaf) };
}

export function appendAuditEvent(tx: DbOrTx, e: NewAuditEvent): AuditEventRow {
  // Statements prepared once per connection (ledger-reads.ts): every write appends an event.
  const sqlite = sqliteClientOf(tx);
  const row = nextAuditEventRow(lastAuditHead(sqlite), e);
  insertAuditEventRow(sqlite, row);
  return row;
}
