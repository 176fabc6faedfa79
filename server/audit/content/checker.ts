/**
 * The bookkeeping of one content check: problems found, facts compared, what the ledger does not cover, and which
 * event covers which entity (for the auditor's report). Also the generic comparison of an event's payload fields
 * with the values a table row (or a bundle's facts.json record) calls for.
 *
 * Invariants:
 * - Values are compared as RFC 8785 canonical text, so 1 and 1.0, or key order, never make a false difference.
 * - A payload field the row calls for but the event lacks is NOT a failure: the event predates the field. It is
 *   tallied per (action, field) and reported in plain words in `notCovered`, and the entity's coverage lists it.
 * - At most MAX_LISTED_PROBLEMS problems are listed; the count of the rest is stated in a final problem.
 */
import { canonicalJson } from "@/contracts/canonical";
import type { ContentLevel, ContentProblem } from "./types";
import { countOf } from "@/contracts/count-text";

export const MAX_LISTED_PROBLEMS = 500;
const MAX_VALUE_CHARS = 160;

/** A value already in canonical JSON text (e.g. a column written with canonicalJson). */
export class CanonicalText {
  constructor(readonly text: string) {}
}

/** Canonical JSON text of a value; CanonicalText passes through. */
export function canon(v: unknown): string {
  if (v instanceof CanonicalText) return v.text;
  if (v === null || v === undefined) return "null";
  if (typeof v === "object") return canonicalJson(v);
  return JSON.stringify(v);
}

/** Canonical text of an object from [key, value] pairs (values canonicalised; keys sorted as RFC 8785 sorts them). */
export function canonicalObjectText(entries: readonly (readonly [string, unknown])[]): string {
  const sorted = [...entries].sort((a, b) => (a[0] < b[0] ? -1 : a[0] > b[0] ? 1 : 0));
  return `{${sorted.map(([k, v]) => `${JSON.stringify(k)}:${canon(v)}`).join(",")}}`;
}

/** Shortens a value for a message: long values are shown by their start and length. */
export function shown(text: string | null): string | null {
  if (text === null) return null;
  return text.length <= MAX_VALUE_CHARS ? text : `${text.slice(0, MAX_VALUE_CHARS - 40)}… (${text.length} characters)`;
}

/** [payload key, value the row calls for, words for the fact (for notCovered and messages)] */
export type Expectation = readonly [key: string, expected: unknown, fact: string];

/** An event as the content checks read it (its time is not among the facts they compare, so it is not read). */
export type EventRef = { seq: number; action: string; actorId: number | null; entityId: string; payload: string };

type Gap = { action: string; fact: string; count: number; firstSeq: number; lastSeq: number };
/** A checker's findings as plain data (exportState / mergeState). */
export type CheckerState = { problems: ContentProblem[]; unlisted: number; checked: number; gaps: Gap[]; notCovered: string[] };
export type Coverage = { seq: number; notCovered: string[] };

export class ContentChecker {
  readonly problems: ContentProblem[] = [];
  private unlisted = 0;
  checked = 0;
  private readonly gaps = new Map<string, Gap>();
  private readonly staticNotCovered: string[] = [];
  /** `${entityType}:${id}` → the event that covers it and the facts it leaves uncovered. */
  readonly coverage = new Map<string, Coverage>();

  problem(p: Omit<ContentProblem, "message"> & { message?: string }): void {
    if (this.problems.length >= MAX_LISTED_PROBLEMS) {
      this.unlisted++;
      return;
    }
    const message =
      p.message ??
      `${p.entityType} ${p.entityId}: ${p.field} ${p.found === null ? "is missing" : "does not match the ledger"}` +
        ` (${p.seq !== null ? `event #${p.seq} recorded` : "recorded"} ${shown(p.recorded) ?? "nothing"}; the table gives ${shown(p.found) ?? "nothing"})`;
    this.problems.push({ ...p, recorded: shown(p.recorded), found: shown(p.found), message });
  }

  /** A row the ledger never recorded. */
  rowWithoutEvent(entityType: string, entityId: string | number, action: string): void {
    this.problem({
      entityType,
      entityId: String(entityId),
      field: "ledger event",
      recorded: null,
      found: "row exists",
      seq: null,
      message: `${entityType} ${entityId} has no ${action} event in the ledger (row written outside the app?)`,
    });
  }

  /** An event whose row is gone. */
  eventWithoutRow(entityType: string, entityId: string | number, ev: EventRef): void {
    this.problem({
      entityType,
      entityId: String(entityId),
      field: "row",
      recorded: `${ev.action} at seq ${ev.seq}`,
      found: null,
      seq: ev.seq,
      message: `${entityType} ${entityId} was recorded by ${ev.action} (event #${ev.seq}) but its row is missing (deleted?)`,
    });
  }

  /** trackCoverage: keep which event covers each entity (the report's labels need it; verification alone does not). */
  constructor(private readonly trackCoverage = false) {}

  cover(entityType: string, entityId: string | number, seq: number): Coverage | null {
    if (!this.trackCoverage) return null;
    const key = `${entityType}:${entityId}`;
    let c = this.coverage.get(key);
    if (!c) this.coverage.set(key, (c = { seq, notCovered: [] }));
    return c;
  }

  /** A fact the event predates: not a failure, stated in notCovered. */
  gap(action: string, fact: string, seq: number, entityType?: string, entityId?: string | number): void {
    const key = `${action}\u0000${fact}`;
    const g = this.gaps.get(key);
    if (!g) this.gaps.set(key, { action, fact, count: 1, firstSeq: seq, lastSeq: seq });
    else {
      g.count++;
      g.lastSeq = Math.max(g.lastSeq, seq);
      g.firstSeq = Math.min(g.firstSeq, seq);
    }
    if (entityType !== undefined && entityId !== undefined) {
      const c = this.cover(entityType, entityId, seq);
      if (c && !c.notCovered.includes(fact)) c.notCovered.push(fact);
    }
  }

  /** A whole class of facts without a hash, stated once. */
  notCovered(sentence: string): void {
    if (!this.staticNotCovered.includes(sentence)) this.staticNotCovered.push(sentence);
  }

  /** Compares one value; returns true when equal. */
  compare(entityType: string, entityId: string | number, field: string, recorded: unknown, found: unknown, seq: number | null): boolean {
    this.checked++;
    // Identical primitives have identical canonical text (-0 and 0 both print "0"; NaN is never identical): no text needed.
    if (recorded === found && (recorded === null || typeof recorded !== "object")) return true;
    const r = canon(recorded),
      f = canon(found);
    if (r === f) return true;
    this.problem({ entityType, entityId: String(entityId), field, recorded: r, found: f, seq });
    return false;
  }

  /** Compares a value the table holds with what other, ledger-checked, data derives (e.g. run_params from the config); `source` reads "its config gives". */
  derived(
    entityType: string,
    entityId: string | number,
    field: string,
    source: string,
    expected: unknown,
    found: unknown,
    seq: number | null,
  ): boolean {
    this.checked++;
    if (expected === found && (expected === null || typeof expected !== "object")) return true; // as in compare()
    const e = canon(expected),
      f = canon(found);
    if (e === f) return true;
    this.problem({
      entityType,
      entityId: String(entityId),
      field,
      recorded: e,
      found: f,
      seq,
      message: `${entityType} ${entityId}: ${field} is ${shown(f)}, but ${source} ${shown(e)}`,
    });
    return false;
  }

  /**
   * Compares the payload's fields with what the row calls for. A missing payload field is a gap (older event).
   * `payload` is the parsed payload; pass `payloadText` to try the whole-text fast path first.
   */
  compareFields(
    entityType: string,
    entityId: string | number,
    ev: EventRef,
    payload: Record<string, unknown>,
    expectations: readonly Expectation[],
  ): void {
    this.cover(entityType, entityId, ev.seq);
    for (const [key, expected, fact] of expectations) {
      if (!(key in payload)) {
        this.gap(ev.action, fact, ev.seq, entityType, entityId);
        continue;
      }
      this.compare(entityType, entityId, fact, payload[key], expected, ev.seq);
    }
  }

  /**
   * Everything this checker found, as plain data (structured-cloneable): a part of the check run in a worker thread
   * (verify-content-parts.ts) hands it back this way. Coverage is not included (verification does not track it).
   */
  exportState(): CheckerState {
    return {
      problems: [...this.problems],
      unlisted: this.unlisted,
      checked: this.checked,
      gaps: [...this.gaps.values()].map((g) => ({ ...g })),
      notCovered: [...this.staticNotCovered],
    };
  }

  /**
   * Adds what another checker found AFTER what this one found, exactly as if its checks had run here next: the
   * listed problems in order (up to MAX_LISTED_PROBLEMS, the rest counted), facts, gaps (counts and seq ranges
   * joined per action and fact) and notCovered sentences.
   */
  mergeState(s: CheckerState): void {
    for (const p of s.problems) {
      if (this.problems.length >= MAX_LISTED_PROBLEMS) this.unlisted++;
      else this.problems.push(p);
    }
    this.unlisted += s.unlisted;
    this.checked += s.checked;
    for (const g of s.gaps) {
      const key = `${g.action}\u0000${g.fact}`;
      const mine = this.gaps.get(key);
      if (!mine) this.gaps.set(key, { ...g });
      else {
        mine.count += g.count;
        mine.firstSeq = Math.min(mine.firstSeq, g.firstSeq);
        mine.lastSeq = Math.max(mine.lastSeq, g.lastSeq);
      }
    }
    for (const sentence of s.notCovered) this.notCovered(sentence);
  }

  /** The level as the verifier reports it. */
  level(skipped?: string): ContentLevel {
    const problems = [...this.problems];
    if (this.unlisted > 0) {
      problems.push({
        entityType: "content",
        entityId: "*",
        field: "problems",
        recorded: null,
        found: String(this.unlisted),
        seq: null,
        message: `${countOf(this.unlisted, "further content problem")} ${this.unlisted === 1 ? "is" : "are"} not listed`,
      });
    }
    const notCovered = [
      ...[...this.gaps.values()]
        .sort((a, b) => a.firstSeq - b.firstSeq)
        .map(
          (g) =>
            `${g.fact}: ${countOf(g.count, `${g.action} event`)} (seq ${g.firstSeq === g.lastSeq ? g.firstSeq : `${g.firstSeq}–${g.lastSeq}`}) ${g.count === 1 ? "predates" : "predate"} the field, so this is not covered by the ledger`,
        ),
      ...this.staticNotCovered,
    ];
    return { ok: problems.length === 0, checked: this.checked, problems, notCovered, ...(skipped ? { skipped } : {}) };
  }
}

/** Parses a payload; a payload that is not a JSON object is reported and yields null. */
export function parsePayload(
  c: ContentChecker,
  entityType: string,
  entityId: string | number,
  ev: EventRef,
): Record<string, unknown> | null {
  try {
    const v = JSON.parse(ev.payload) as unknown;
    if (v && typeof v === "object" && !Array.isArray(v)) return v as Record<string, unknown>;
  } catch {
    // reported below
  }
  c.problem({
    entityType,
    entityId: String(entityId),
    field: "payload",
    recorded: ev.payload,
    found: null,
    seq: ev.seq,
    message: `event #${ev.seq} (${ev.action}) has a payload that is not a JSON object`,
  });
  return null;
}

/** A check that threw: one failed fact saying why, never a pass (what follows it in the content check is dropped). */
export function couldNotFinish(c: ContentChecker, err: unknown): void {
  c.problem({
    entityType: "content",
    entityId: "*",
    field: "check",
    recorded: null,
    found: (err as Error).message,
    seq: null,
    message: `the content check could not finish: ${(err as Error).message}`,
  });
}
