/**
 * Recomputes an audit event's leaf hash and chain hash from its stored fields, fast enough to check a
 * million events in a few seconds.
 *
 * Invariant: `recomputeLeafHash(row)` always equals ledger.ts's `leafHash(eventBody(row))` (the reference),
 * or is null where the reference cannot compute one (payload not JSON, lone surrogates). The fast path
 * builds the RFC 8785 text of the event body directly, which is valid only when
 * - every top-level field is a string, a finite number or null (JSON.stringify then prints exactly what JCS prints),
 * - the stored payload text is already canonical, as checked in one pass by `isCanonicalJsonText`: no
 *   whitespace, only JSON.stringify's escapes, numbers spelt as ECMAScript prints them, object keys strictly
 *   in UTF-16 code-unit order (JCS's order; this also rules out duplicate keys), no lone surrogates;
 * - the top-level strings contain no lone surrogate (JSON.stringify would escape one as \udxxx; JCS refuses it).
 * Whenever one condition fails, the reference computation decides. tests/event-hashing.test.ts checks the
 * two agree on ordinary and awkward rows.
 * The reference is ledger.ts's definition restated here over canonical.ts (sha256(0x00 || JCS(body)), body =
 * the nine fields with the payload parsed), so that range workers need not load the database schema; the
 * tests compare it with ledger.ts itself. The hot path allocates no objects per row besides the strings it hashes.
 */
import crypto from "node:crypto";
import { canonicalJson } from "./canonical";
import type { AuditEventRow } from "./ledger";

export type EventFields = Omit<AuditEventRow, "leafHash" | "chainHash">;

const sha256HexOfString: (s: string) => string =
  typeof crypto.hash === "function"
    ? (s) => crypto.hash("sha256", s, "hex")
    : (s) => crypto.createHash("sha256").update(s).digest("hex");

/** JSON text of a primitive when it equals its JCS text; undefined when the reference must decide. */
function jcsPrimitive(v: unknown): string | undefined {
  if (typeof v === "string") return JSON.stringify(v);
  if (typeof v === "number") return Number.isFinite(v) ? JSON.stringify(v) : undefined;
  if (v === null) return "null";
  return undefined;
}

// A single-pass checker of RFC 8785 canonical form, so the hot path never parses and re-serialises the payload.
// It accepts only text that canonicalize(JSON.parse(text)) would reproduce byte for byte; anything it is unsure
// of is rejected, which merely sends the row to the reference computation.
const Ch = {
  Quote: 0x22, Backslash: 0x5c, Comma: 0x2c, Colon: 0x3a, LBrace: 0x7b, RBrace: 0x7d, LBracket: 0x5b, RBracket: 0x5d,
  Minus: 0x2d, Zero: 0x30, Nine: 0x39, Dot: 0x2e, LowerE: 0x65, UpperE: 0x45, Plus: 0x2b,
} as const;
/** Characters after a backslash that JSON.stringify (and so JCS) uses: " \ b f n r t; \u only for other controls. */
const SHORT_ESCAPES = new Set([0x22, 0x5c, 0x62, 0x66, 0x6e, 0x72, 0x74]);
const SHORT_ESCAPED_CONTROLS = new Set([0x08, 0x09, 0x0a, 0x0c, 0x0d]);
/** Characters that make a string need a closer look: controls, backslash, surrogate halves. */
const NEEDS_CHARACTER_CHECKS = /[\u0000-\u001f\\\ud800-\udfff]/;

/**
 * Scanner state for one text. Everything works on indexes into the text; the common case (ASCII keys and
 * strings without escapes, integers) allocates nothing.
 */
class CanonicalScanner {
  /** Set by string(): whether the string just scanned had a backslash escape. */
  private escaped = false;
  /** No control character, backslash or surrogate anywhere: a string simply runs to the next quote. */
  private readonly plain: boolean;

  constructor(private readonly t: string) {
    this.plain = !NEEDS_CHARACTER_CHECKS.test(t);
  }

  /** Index after the value starting at i, or -1 when it is not canonical. */
  value(i: number): number {
    const c = this.t.charCodeAt(i);
    if (c === Ch.Quote) return this.string(i);
    if (c === Ch.LBrace) return this.object(i);
    if (c === Ch.LBracket) return this.array(i);
    if (c === Ch.Minus || (c >= Ch.Zero && c <= Ch.Nine)) return this.number(i);
    if (this.t.startsWith("null", i)) return i + 4;
    if (this.t.startsWith("true", i)) return i + 4;
    if (this.t.startsWith("false", i)) return i + 5;
    return -1;
  }

  private object(i: number): number {
    const t = this.t;
    let j = i + 1;
    if (t.charCodeAt(j) === Ch.RBrace) return j + 1;
    let prevStart = -1;
    let prevEnd = -1;
    let prevEscaped = false;
    for (;;) {
      if (t.charCodeAt(j) !== Ch.Quote) return -1;
      const keyEnd = this.string(j);
      if (keyEnd < 0) return -1;
      // JCS order is UTF-16 code-unit order of the decoded keys; strictly increasing also rules out duplicates.
      if (prevStart >= 0 && !this.keyBefore(prevStart, prevEnd, prevEscaped, j, keyEnd, this.escaped)) return -1;
      prevStart = j;
      prevEnd = keyEnd;
      prevEscaped = this.escaped;
      if (t.charCodeAt(keyEnd) !== Ch.Colon) return -1;
      j = this.value(keyEnd + 1);
      if (j < 0) return -1;
      const c = t.charCodeAt(j);
      if (c === Ch.RBrace) return j + 1;
      if (c !== Ch.Comma) return -1;
      j++;
    }
  }

  /** True when key [aStart, aEnd) sorts strictly before key [bStart, bEnd) (both quoted, as scanned). */
  private keyBefore(aStart: number, aEnd: number, aEscaped: boolean, bStart: number, bEnd: number, bEscaped: boolean): boolean {
    const t = this.t;
    if (aEscaped || bEscaped) {
      return (JSON.parse(t.slice(aStart, aEnd)) as string) < (JSON.parse(t.slice(bStart, bEnd)) as string);
    }
    const aLen = aEnd - aStart - 2;
    const bLen = bEnd - bStart - 2;
    const n = aLen < bLen ? aLen : bLen;
    for (let k = 1; k <= n; k++) {
      const d = t.charCodeAt(aStart + k) - t.charCodeAt(bStart + k);
      if (d !== 0) return d < 0;
    }
    return aLen < bLen;
  }

  private array(i: number): number {
    const t = this.t;
    let j = i + 1;
    if (t.charCodeAt(j) === Ch.RBracket) return j + 1;
    for (;;) {
      j = this.value(j);
      if (j < 0) return -1;
      const c = t.charCodeAt(j);
      if (c === Ch.RBracket) return j + 1;
      if (c !== Ch.Comma) return -1;
      j++;
    }
  }

  /** A string as JSON.stringify writes it: only the escapes it uses, no lone surrogates. */
  private string(i: number): number {
    const t = this.t;
    this.escaped = false;
    if (this.plain) {
      const close = t.indexOf('"', i + 1);
      return close < 0 ? -1 : close + 1;
    }
    const n = t.length;
    for (let j = i + 1; j < n; j++) {
      const c = t.charCodeAt(j);
      if (c === Ch.Quote) return j + 1;
      if (c < 0x20) return -1;
      if (c === Ch.Backslash) {
        this.escaped = true;
        const e = t.charCodeAt(++j);
        if (e === 0x75 /* u */) {
          const hex = t.slice(j + 1, j + 5);
          if (!/^00[01][0-9a-f]$/.test(hex) || SHORT_ESCAPED_CONTROLS.has(parseInt(hex, 16))) return -1;
          j += 4;
        } else if (!SHORT_ESCAPES.has(e)) {
          return -1;
        }
      } else if (c >= 0xd800 && c <= 0xdfff) {
        const next = t.charCodeAt(j + 1);
        if (c > 0xdbff || !(next >= 0xdc00 && next <= 0xdfff)) return -1;
        j++;
      }
    }
    return -1;
  }

  /**
   * A number as ECMAScript prints it (JCS's rule): the token must equal String(Number(token)). Integers of at
   * most 15 digits without a leading zero (and not -0) print as written, so they skip the round trip.
   */
  private number(i: number): number {
    const t = this.t;
    let j = i;
    if (t.charCodeAt(j) === Ch.Minus) j++;
    const digitsStart = j;
    while (j < t.length) {
      const c = t.charCodeAt(j);
      if (c < Ch.Zero || c > Ch.Nine) break;
      j++;
    }
    const digits = j - digitsStart;
    const next = t.charCodeAt(j);
    if (next !== Ch.Dot && next !== Ch.LowerE && next !== Ch.UpperE && next !== Ch.Plus && next !== Ch.Minus) {
      if (digits === 0 || digits > 15) return this.numberRoundTrip(i, j);
      if (t.charCodeAt(digitsStart) === Ch.Zero && (digits > 1 || digitsStart > i)) return -1; // leading zero, or -0
      return j;
    }
    if (next === Ch.Dot && digits > 0 && digits <= 15) {
      const end = this.plainDecimal(i, digitsStart, digits, j);
      if (end !== 0) return end;
    }
    for (; j < t.length; j++) {
      const c = t.charCodeAt(j);
      if (!((c >= Ch.Zero && c <= Ch.Nine) || c === Ch.Minus || c === Ch.Plus || c === Ch.Dot || c === Ch.LowerE || c === Ch.UpperE)) break;
    }
    return this.numberRoundTrip(i, j);
  }

  /**
   * A plain decimal "I.F" (the dot at `dot`) that ECMAScript prints exactly as written: no leading zero in I (unless
   * I is "0"), F not ending in 0, at most 15 significant digits (any such decimal is the shortest round trip of
   * its double), and, below 1, fewer than 6 zeros after the point (smaller numbers print with an exponent).
   * Returns the index after the token, -1 when it is certainly not canonical, 0 when the round trip must decide.
   */
  private plainDecimal(i: number, digitsStart: number, intDigits: number, dot: number): number {
    const t = this.t;
    const intIsZero = t.charCodeAt(digitsStart) === Ch.Zero;
    if (intIsZero && intDigits > 1) return -1;
    let j = dot + 1;
    let zerosAfterPoint = 0;
    if (intIsZero) while (t.charCodeAt(j) === Ch.Zero) (j++, zerosAfterPoint++);
    const fracStart = j;
    while (j < t.length) {
      const c = t.charCodeAt(j);
      if (c < Ch.Zero || c > Ch.Nine) break;
      j++;
    }
    const c = t.charCodeAt(j);
    if (c === Ch.LowerE || c === Ch.UpperE || c === Ch.Dot || c === Ch.Plus || c === Ch.Minus) return 0;
    if (j === dot + 1 || t.charCodeAt(j - 1) === Ch.Zero) return 0; // "1." or a trailing zero: not canonical, let the round trip say so
    const significant = intIsZero ? j - fracStart : intDigits + (j - dot - 1);
    if (significant > 15 || (intIsZero && (zerosAfterPoint >= 6 || significant === 0))) return 0;
    if (intIsZero && digitsStart > i && significant === 0) return 0;
    return j;
  }

  private numberRoundTrip(i: number, j: number): number {
    const token = this.t.slice(i, j);
    const n = Number(token);
    return Number.isFinite(n) && String(n) === token ? j : -1;
  }
}

/** True when `text` is exactly the RFC 8785 serialisation of the JSON value it denotes. */
export function isCanonicalJsonText(text: string): boolean {
  try {
    return text.length > 0 && new CanonicalScanner(text).value(0) === text.length;
  } catch {
    return false; // e.g. absurdly deep nesting: let the reference decide
  }
}

/**
 * The canonical body text via the fast path, or undefined when it does not apply.
 * Keys appear in JCS order: action, actorId, actorName, at, entityId, entityType, payload, role, seq.
 */
export function fastCanonicalEventBody(e: EventFields): string | undefined {
  const action = jcsPrimitive(e.action);
  const actorId = jcsPrimitive(e.actorId);
  const actorName = jcsPrimitive(e.actorName);
  const at = jcsPrimitive(e.at);
  const entityId = jcsPrimitive(e.entityId);
  const entityType = jcsPrimitive(e.entityType);
  const role = jcsPrimitive(e.role);
  const seq = jcsPrimitive(e.seq);
  if (
    action === undefined || actorId === undefined || actorName === undefined || at === undefined ||
    entityId === undefined || entityType === undefined || role === undefined || seq === undefined ||
    typeof e.payload !== "string" || !isCanonicalJsonText(e.payload)
  ) {
    return undefined;
  }
  const text =
    `{"action":${action},"actorId":${actorId},"actorName":${actorName},"at":${at},"entityId":${entityId},` +
    `"entityType":${entityType},"payload":${e.payload},"role":${role},"seq":${seq}}`;
  // JSON.stringify escapes a lone surrogate as \udxxx where JCS refuses it; the payload was checked already.
  return text.includes("\\ud") ? undefined : text;
}

/** ledger.ts's leafHash(eventBody(e)): sha256(0x00 || JCS of the nine fields, payload parsed); null when impossible. */
export function referenceLeafHash(e: EventFields): string | null {
  try {
    const body = {
      seq: e.seq, at: e.at, actorId: e.actorId, actorName: e.actorName, role: e.role,
      action: e.action, entityType: e.entityType, entityId: e.entityId, payload: JSON.parse(e.payload) as unknown,
    };
    return crypto.createHash("sha256").update(Buffer.from([0])).update(canonicalJson(body)).digest("hex");
  } catch {
    return null;
  }
}

/** The leaf hash the event's fields call for (hex), or null when they cannot be hashed at all. */
export function recomputeLeafHash(e: EventFields): string | null {
  const fast = fastCanonicalEventBody(e);
  if (fast !== undefined) return sha256HexOfString("\u0000" + fast);
  return referenceLeafHash(e);
}

/**
 * recomputeLeafHash for the nine fields given one by one (the verifier's hot path: no row object). Top-level
 * strings that repeat (action, role, names, entity types) are quoted once and remembered.
 */
export function leafHashOfFields(
  seq: unknown, at: unknown, actorId: unknown, actorName: unknown, role: unknown,
  action: unknown, entityType: unknown, entityId: unknown, payload: unknown,
): string | null {
  const qAction = quoteCached(action);
  const qActorName = quoteCached(actorName);
  const qEntityType = quoteCached(entityType);
  const qRole = quoteCached(role);
  const qAt = quoteOnce(at);
  const qEntityId = quoteOnce(entityId);
  const qActorId = actorId === null ? "null" : typeof actorId === "number" && Number.isFinite(actorId) ? String(actorId) : undefined;
  const qSeq = typeof seq === "number" && Number.isFinite(seq) ? String(seq) : undefined;
  if (
    qAction !== undefined && qActorName !== undefined && qEntityType !== undefined && qRole !== undefined && qAt !== undefined &&
    qEntityId !== undefined && qActorId !== undefined && qSeq !== undefined && typeof payload === "string" && isCanonicalJsonText(payload)
  ) {
    return sha256HexOfString(
      `\u0000{"action":${qAction},"actorId":${qActorId},"actorName":${qActorName},"at":${qAt},"entityId":${qEntityId},` +
        `"entityType":${qEntityType},"payload":${payload},"role":${qRole},"seq":${qSeq}}`,
    );
  }
  return referenceLeafHash({ seq, at, actorId, actorName, role, action, entityType, entityId, payload } as EventFields);
}

/** JSON text of a string when JCS would print the same (no lone surrogate); undefined otherwise. */
function quoteOnce(v: unknown): string | undefined {
  if (typeof v !== "string") return undefined;
  if (!NEEDS_ESCAPE_OR_CHECK.test(v)) return `"${v}"`; // nothing JSON.stringify would escape: the common case
  const q = JSON.stringify(v);
  return q.includes("\\ud") && hasLoneSurrogate(v) ? undefined : q;
}

function hasLoneSurrogate(s: string): boolean {
  for (let i = 0; i < s.length; i++) {
    const c = s.charCodeAt(i);
    if (c >= 0xd800 && c <= 0xdbff) {
      const d = s.charCodeAt(i + 1);
      if (d >= 0xdc00 && d <= 0xdfff) i++;
      else return true;
    } else if (c >= 0xdc00 && c <= 0xdfff) return true;
  }
  return false;
}

/** Characters JSON.stringify escapes (quote, backslash, controls) or that need a surrogate check. */
const NEEDS_ESCAPE_OR_CHECK = /["\\\u0000-\u001f\ud800-\udfff]/;
const QUOTED = new Map<string, string | undefined>();
const QUOTED_MAX = 4096;
function quoteCached(v: unknown): string | undefined {
  if (typeof v !== "string") return undefined;
  let q = QUOTED.get(v);
  if (q === undefined && !QUOTED.has(v)) {
    q = quoteOnce(v);
    if (QUOTED.size >= QUOTED_MAX) QUOTED.clear();
    QUOTED.set(v, q);
  }
  return q;
}

/**
 * Rolling chain-hash computer: sha256(prev || leaf) over raw 32-byte digests, reusing one buffer.
 * Equal to ledger.ts's `chainHash` (tested); the first prev is 32 zero bytes.
 */
export class ChainHasher {
  private readonly buf = Buffer.alloc(64);

  /** Sets the previous chain hash (hex), e.g. to resume mid-log. */
  reset(prevChainHex?: string): void {
    if (prevChainHex === undefined) this.buf.fill(0, 0, 32);
    else this.buf.write(prevChainHex, 0, 32, "hex");
  }

  /** The chain hash following `leafHex` (which must be 64 hex chars); does not advance. */
  next(leafHex: string): string {
    this.buf.write(leafHex, 32, 32, "hex");
    return typeof crypto.hash === "function"
      ? crypto.hash("sha256", this.buf, "hex")
      : crypto.createHash("sha256").update(this.buf).digest("hex");
  }

  /** Accepts `chainHex` (64 hex chars) as the new previous chain hash. */
  advance(chainHex: string): void {
    this.buf.write(chainHex, 0, 32, "hex");
  }
}

export type EventProblem = { seq: number; problem: string };

/**
 * Checks events one by one for gapless seq, leaf hash and chain hash. Starts at seq 1 (genesis chain hash),
 * or mid-log at `firstSeq` given the stored chain hash of firstSeq - 1 (range checks in parallel workers:
 * the previous range has verified that stored hash link by link).
 */
export class EventChainChecker {
  private expected: number;
  private readonly chain = new ChainHasher();

  constructor(firstSeq = 1, prevChainHex?: string) {
    this.expected = firstSeq;
    if (firstSeq === 1) this.chain.reset();
    else if (prevChainHex !== undefined && /^[0-9a-f]{64}$/.test(prevChainHex)) this.chain.reset(prevChainHex);
    else throw new Error(`EventChainChecker: starting at seq ${firstSeq} needs the chain hash of seq ${firstSeq - 1}`);
  }

  /** The seq the next event must have. */
  get nextSeq(): number {
    return this.expected;
  }

  /** null when the event is intact and follows the previous one; otherwise the first problem, in plain words. */
  check(row: AuditEventRow): EventProblem | null {
    const expected = this.expected;
    const seq = row.seq;
    if (seq !== expected) {
      if (typeof seq === "number" && seq > expected) return { seq: expected, problem: `seq ${expected} missing: expected ${expected}, found ${seq} (deleted row?)` };
      return { seq: expected, problem: `seq ${expected}: found seq ${String(seq)} out of order (reordered or duplicated row?)` };
    }
    const leaf = recomputeLeafHash(row);
    if (leaf === null) return { seq, problem: `seq ${seq}: its fields cannot be hashed (payload is not valid JSON?)` };
    if (leaf !== row.leafHash) return { seq, problem: `seq ${seq}: leaf hash does not match its content (edited?)` };
    const chained = this.chain.next(leaf);
    if (chained !== row.chainHash) {
      return { seq, problem: `seq ${seq}: chain hash does not follow from seq ${seq - 1} (row inserted, removed or rewritten?)` };
    }
    this.chain.advance(chained);
    this.expected++;
    return null;
  }
}
