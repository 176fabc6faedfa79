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
import { canonicalJson } from "@/contracts/canonical";
import { isCanonicalJsonText } from "./canonical-scan";

export { isCanonicalJsonText } from "./canonical-scan";
import type { AuditEventRow } from "./ledger";

export type EventFields = Omit<AuditEventRow, "leafHash" | "chainHash">;

const sha256HexOfString: (s: string) => string =
  typeof crypto.hash === "function" ? (s) => crypto.hash("sha256", s, "hex") : (s) => crypto.createHash("sha256").update(s).digest("hex");

/** JSON text of a primitive when it equals its JCS text; undefined when the reference must decide. */
function jcsPrimitive(v: unknown): string | undefined {
  if (typeof v === "string") return JSON.stringify(v);
  if (typeof v === "number") return Number.isFinite(v) ? JSON.stringify(v) : undefined;
  if (v === null) return "null";
  return undefined;
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
    action === undefined ||
    actorId === undefined ||
    actorName === undefined ||
    at === undefined ||
    entityId === undefined ||
    entityType === undefined ||
    role === undefined ||
    seq === undefined ||
    typeof e.payload !== "string" ||
    !isCanonicalJsonText(e.payload)
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
    return crypto
      .createHash("sha256")
      .update(Buffer.from([0]))
      .update(canonicalJson(body))
      .digest("hex");
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
  seq: unknown,
  at: unknown,
  actorId: unknown,
  actorName: unknown,
  role: unknown,
  action: unknown,
  entityType: unknown,
  entityId: unknown,
  payload: unknown,
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
    qAction !== undefined &&
    qActorName !== undefined &&
    qEntityType !== undefined &&
    qRole !== undefined &&
    qAt !== undefined &&
    qEntityId !== undefined &&
    qActorId !== undefined &&
    qSeq !== undefined &&
    typeof payload === "string" &&
    isCanonicalJsonText(payload)
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
      if (typeof seq === "number" && seq > expected)
        return { seq: expected, problem: `seq ${expected} missing: expected ${expected}, found ${seq} (deleted row?)` };
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
