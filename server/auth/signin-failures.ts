/**
 * Failed sign-ins as bounded, aggregated security events in the audit ledger.
 *
 * Invariants:
 * - Never the typed input: the identifier is `identifierDigest(email)`, the first 16 hex characters of sha256 of the
 *   normalised (trimmed, lower-case, length-capped) email. An auditor who suspects an account can hash its email
 *   and look for it; nobody can read the attempted strings back.
 * - One counter per identifier per WINDOW_MINUTES window (windows aligned to the clock). A `user.signInFailed`
 *   event is appended at the first failure of the window and again each time the count reaches a threshold
 *   (5, 25, 100, 500, 2500, …): an event says "at least `failures` failures of this identifier in this window".
 * - At most MAX_IDENTIFIERS_PER_WINDOW identifiers get their own counter per window; failures for further
 *   identifiers are pooled under the identifier "other" (with a count of distinct identifiers), so a spray of random
 *   emails costs a bounded number of events: about MAX_IDENTIFIERS_PER_WINDOW · log5(failures) per window.
 * - Counters live in memory per database handle (one server process); a restart starts a new count, still bounded.
 *   With several web servers on one PostgreSQL store each counts its own failures, so each may write the
 *   threshold events: still bounded (per server), and the events stay "at least" statements.
 * - The event is appended in a transaction of its own (db/store.ts, under the ledger lock on PostgreSQL).
 */
import { createHash } from "node:crypto";
import type { Db } from "@/db/client";
import { PG_LOCK_KEYS } from "@/db/pg-client";
import { asStore, transact, type Store } from "@/db/store";
import { SYSTEM_ACTOR } from "@/server/audit/ledger";
import { appendEvent } from "@/server/audit/ledger-pg";

export const WINDOW_MINUTES = 10;
export const MAX_IDENTIFIERS_PER_WINDOW = 20;
const OTHER = "other";
/** Distinct identifiers remembered in the "other" pool (memory bound); past it the count reads "at least". */
const MAX_DISTINCT_TRACKED = 10_000;

export function identifierDigest(normalisedEmail: string): string {
  return createHash("sha256").update(normalisedEmail).digest("hex").slice(0, 16);
}

/** 1, 5, 25, 100, 500, 2500, 12500, …: the counts at which an event is written. */
export function isThreshold(count: number): boolean {
  if (count === 1 || count === 5 || count === 25) return true;
  if (count < 100) return false;
  let t = 100;
  while (t < count) t *= 5;
  return t === count;
}

type WindowState = { start: number; counts: Map<string, number>; otherIdentifiers: Set<string> };
/** Keyed by the store's database handle (asStore makes a new Store object for each call with a bare handle). */
const windows = new WeakMap<Store["db"], WindowState>();

function windowFor(db: Store["db"], at: number): WindowState {
  const start = Math.floor(at / (WINDOW_MINUTES * 60_000)) * WINDOW_MINUTES * 60_000;
  let state = windows.get(db);
  if (!state || state.start !== start) {
    state = { start, counts: new Map(), otherIdentifiers: new Set() };
    windows.set(db, state);
  }
  return state;
}

/** Counts one failed sign-in; appends an event when the count reaches a threshold. Returns the event's seq or null. */
export async function recordSignInFailure(store: Store | Db, identifier: string, at = Date.now()): Promise<number | null> {
  const s = asStore(store);
  const w = windowFor(s.db, at);
  let key = identifier;
  if (!w.counts.has(identifier) && w.counts.size >= MAX_IDENTIFIERS_PER_WINDOW + (w.counts.has(OTHER) ? 1 : 0)) {
    key = OTHER;
    if (w.otherIdentifiers.size < MAX_DISTINCT_TRACKED) w.otherIdentifiers.add(identifier);
  }
  const count = (w.counts.get(key) ?? 0) + 1;
  w.counts.set(key, count);
  if (!isThreshold(count)) return null;
  const payload: Record<string, unknown> = {
    identifier: key,
    windowStart: new Date(w.start).toISOString(),
    windowMinutes: WINDOW_MINUTES,
    failures: count,
  };
  if (key === OTHER) payload.distinctIdentifiersAtLeast = w.otherIdentifiers.size;
  const event = await transact(
    s,
    () =>
      appendEvent({
        actor: { ...SYSTEM_ACTOR, name: "anonymous" },
        action: "user.signInFailed",
        entityType: "signInIdentifier",
        entityId: key,
        payload,
      }),
    { pgLock: PG_LOCK_KEYS.ledger },
  );
  return event.seq;
}
