/**
 * A map whose keys are run ids as the content checks name them: an event by its entity id text, a run row by
 * String(row.id). Keyed by number where that text is a safe integer's canonical text (a Map looks a number up faster than
 * a freshly read string: checkRuns alone, medians of 5, 679 -> 616 ms and 865 -> 735 ms for a
 * million-event ledger), by the text otherwise.
 *
 * Invariant: getId(id) finds exactly the value stored under the text String(id), whichever way it was stored: a text
 * goes to the numbers only when it is String(n) for a safe integer n, and String is one-to-one on those (0 and -0
 * both print "0" and are one Map key), so a text like "07" or "1e3" never meets a row id, as it never did by text.
 */
export class RunIdKeyed<V> {
  private readonly byNumber = new Map<number, V>();
  private readonly byText = new Map<string, V>();

  /** Stores `value` under the text `idText` (an event's entity id). */
  setText(idText: string, value: V): void {
    const n = safeIntegerOfText(idText);
    if (n === null) this.byText.set(idText, value);
    else this.byNumber.set(n, value);
  }

  /** Stores `value` under String(id). */
  setId(id: number, value: V): void {
    if (Number.isSafeInteger(id)) this.byNumber.set(id, value);
    else this.byText.set(String(id), value);
  }

  /** The value stored under String(id). */
  getId(id: number): V | undefined {
    return Number.isSafeInteger(id) ? this.byNumber.get(id) : this.byText.get(String(id));
  }
}

/** n when `text` is String(n) for a safe integer n (no sign but "-", no leading zero, no "-0"), else null; no string made. */
export function safeIntegerOfText(text: string): number | null {
  // (An entity id stored as a BLOB comes as a Buffer: kept by itself, as a Map keyed by text kept it, never met.)
  if (typeof text !== "string") return null;
  const len = text.length;
  let i = text.charCodeAt(0) === 0x2d ? 1 : 0;
  if (len === i || len - i > 16) return null;
  if (text.charCodeAt(i) === 0x30) return len === 1 ? 0 : null; // "0" alone ("-0" prints as "0", "07" as "7")
  let n = 0;
  for (; i < len; i++) {
    const digit = text.charCodeAt(i) - 0x30;
    if (digit < 0 || digit > 9) return null;
    n = n * 10 + digit; // exact while below 2^53; a larger value stays at or above it, which the check below refuses
  }
  if (!Number.isSafeInteger(n)) return null;
  return text.charCodeAt(0) === 0x2d ? -n : n;
}
