/**
 * Recomputes an audit event's leaf hash and chain hash from its stored fields, fast enough to check a
 * million events in a few seconds.
 *
 * Invariant: `recomputeLeafHash(row)` always equals ledger.ts's `leafHash(eventBody(row))` (the reference),
 * or is null where the reference cannot compute one (payload not JSON, lone surrogates). The fast path
 * builds the RFC 8785 text of the event body directly, which is valid only when
 * - every top-level field is a string, a finite number or null (JSON.stringify then prints exactly what JCS prints),
 * - the stored payload text is already canonical: it parses, re-serialises to the same text (so no
 *   whitespace, duplicate keys or alternative number/escape spellings) and every object's keys are in
 *   UTF-16 code-unit order (JCS's order);
 * - nothing contains a "\ud" escape (JSON.stringify escapes lone surrogates where JCS refuses them).
 * Whenever one condition fails, the reference computation decides. tests/event-hashing.test.ts checks the
 * two agree on ordinary and awkward rows.
 */
import crypto from "node:crypto";
import { eventBody, leafHash, type AuditEventRow } from "./ledger";

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

function keysSortedDeep(root: unknown): boolean {
  const stack: unknown[] = [root];
  while (stack.length > 0) {
    const v = stack.pop();
    if (v === null || typeof v !== "object") continue;
    if (Array.isArray(v)) {
      for (const item of v) if (item !== null && typeof item === "object") stack.push(item);
      continue;
    }
    const obj = v as Record<string, unknown>;
    let prev: string | undefined;
    for (const key in obj) {
      if (prev !== undefined && !(prev < key)) return false;
      prev = key;
      const item = obj[key];
      if (item !== null && typeof item === "object") stack.push(item);
    }
  }
  return true;
}

/** True when `text` is exactly the RFC 8785 serialisation of the JSON value it denotes (fast check, see header). */
export function isCanonicalJsonText(text: string): boolean {
  let value: unknown;
  try {
    value = JSON.parse(text);
  } catch {
    return false;
  }
  return JSON.stringify(value) === text && keysSortedDeep(value);
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
  return text.includes("\\ud") ? undefined : text;
}

/** The leaf hash the event's fields call for (hex), or null when they cannot be hashed at all. */
export function recomputeLeafHash(e: EventFields): string | null {
  const fast = fastCanonicalEventBody(e);
  if (fast !== undefined) return sha256HexOfString("\u0000" + fast);
  try {
    return leafHash(eventBody(e));
  } catch {
    return null;
  }
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
