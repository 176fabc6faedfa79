/**
 * A single-pass checker of RFC 8785 (JCS) canonical form, for the verifier's hot path (event-hashing.ts): it
 * accepts only text that canonicalize(JSON.parse(text)) would reproduce byte for byte, so an event's payload can be
 * hashed as stored without parsing and re-serialising it. Anything it is unsure of is rejected, which merely
 * sends the row to the reference computation.
 *
 * Invariants: no whitespace; strings only with JSON.stringify's escapes and no lone surrogates; numbers spelt as
 * ECMAScript prints them (integers of up to 15 digits and plain decimals of up to 15 significant digits are
 * recognised directly, the rest by the round trip String(Number(token))); object keys strictly increasing in
 * UTF-16 code-unit order (which also rules out duplicates). The common case allocates nothing.
 * tests/event-hashing.test.ts compares it with the round trip and with canonicalize on random texts.
 */
const Ch = {
  Quote: 0x22,
  Backslash: 0x5c,
  Comma: 0x2c,
  Colon: 0x3a,
  LBrace: 0x7b,
  RBrace: 0x7d,
  LBracket: 0x5b,
  RBracket: 0x5d,
  Minus: 0x2d,
  Zero: 0x30,
  Nine: 0x39,
  Dot: 0x2e,
  LowerE: 0x65,
  UpperE: 0x45,
  Plus: 0x2b,
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
    if (intIsZero)
      while (t.charCodeAt(j) === Ch.Zero) {
        j++;
        zerosAfterPoint++;
      }
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
