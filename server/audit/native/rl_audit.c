/*
 * rl_audit: a SQLite loadable extension that checks a range of the audit log inside SQLite, so the verifier does
 * not carry a million rows into JavaScript (native-range.ts drives it; verify-range.ts's RangeScanner is the
 * reference it must agree with, and tests/verify-native.test.ts compares the two on clean, awkward and tampered logs).
 *
 * SHA-256 is OpenSSL's, the copy inside the Node.js binary that loads this file (Node exports its OpenSSL symbols
 * for addons): the same implementation node:crypto uses, resolved when better-sqlite3 loads the extension. So the
 * extension links against nothing and loads only inside Node.
 *
 * Functions (per connection; the range state lives in the function's user data, one range at a time):
 *   rl_range_begin(from, to, prev_chain_hex, sizes_csv, covered_up_to, watch_actions, watch_seqs_csv)
 *     starts a range: from >= 1; to = -1 for "to the end"; prev_chain_hex NULL when from = 1; watch_actions is a
 *     list of action names separated by "\n".
 *   rl_range_feed(seq, at, actor_id, actor_name, role, action, entity_type, entity_id, payload, leaf_hash, chain_hash)
 *     checks the next event, in seq order (a scan of the rowid range: any other order is reported as a bad seq,
 *     never accepted). Returns 1 while the range goes on, 0 once it has stopped.
 *   rl_range_result() the range's state as JSON text (see native-range.ts's NativeRangeState).
 *   rl_sha256(x) lowercase hex SHA-256 of a text's UTF-8 bytes or a blob's bytes; NULL for NULL.
 *   rl_member_inserted_sha256(object_text, key, value_text) an evaluation's metrics digest (see the function).
 *   rl_json_text, rl_json_sha256, rl_text_sha256, rl_json_array: event texts built from rows (bulk-events-sql.ts).
 *   rl_distinct_ids(x) count(DISTINCT x) of row ids in a bitmap, or NULL when uncertain (the *-sql.ts clean-ledger reads).
 *   rl_metric_points, rl_metric_summary_rows, rl_metric_rollup_rows: a run's metric series (check-metrics-native.ts);
 *   rl_metric_rows_keep, rl_metric_points_checked, rl_metric_rows_release: the rows' digests compared with them;
 *   rl_js_number(x) the text JavaScript prints for a number (tests).
 *
 * Invariants (the same as RangeScanner's): an event is accepted only when its seq is the next one, its leaf hash is
 * sha256(0x00 || JCS(body)) and its chain hash is sha256(previous chain || leaf); the range stops at its first bad
 * event. The leaf is computed here only when the stored text is certainly what canonicalJson would print (the
 * checks of canonical-scan.ts, on UTF-8 bytes, deciding only what they are certain of); any other event is
 * "deferred": its stored leaf hash is used for the chain and the tree, and JavaScript recomputes that leaf with the
 * reference before the range's result is accepted. Nothing here allocates per event besides the body buffer.
 */
#include "sqlite3ext.h"
SQLITE_EXTENSION_INIT1
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/*
 * OpenSSL's SHA-256, exported by the Node.js binary. The low-level calls, not the one-shot SHA256(), which in
 * OpenSSL 3 looks the algorithm up (locks, a name map) on every call: a fifth of the range's time.
 */
typedef struct {
  unsigned int h[8], Nl, Nh, data[16], num, md_len;
} SHA256_CTX;
extern int SHA256_Init(SHA256_CTX *c);
extern int SHA256_Update(SHA256_CTX *c, const void *data, size_t len);
extern int SHA256_Final(unsigned char *md, SHA256_CTX *c);

static void sha256(const void *d, size_t n, unsigned char *out) {
  SHA256_CTX c;
  SHA256_Init(&c);
  SHA256_Update(&c, d, n);
  SHA256_Final(out, &c);
}

/* ---------- small buffers ---------- */

typedef struct {
  char *p;
  size_t n, cap;
  int oom;
} Buf;

/* The slow path of buf_reserve (kept out of line, so the calls that fit, nearly all, stay a compare and a copy). */
static void buf_grow(Buf *b, size_t more) {
  size_t cap = b->cap ? b->cap : 1024;
  while (cap < b->n + more) cap *= 2;
  char *p = realloc(b->p, cap);
  if (!p) {
    b->oom = 1;
    return;
  }
  b->p = p;
  b->cap = cap;
}
static inline void buf_reserve(Buf *b, size_t more) {
  if (!b->oom && b->n + more > b->cap) buf_grow(b, more);
}
/*
 * Most pieces are a few bytes (punctuation, keys, small numbers): copied inline, as two fixed-size copies that may
 * overlap (each reads and writes only inside the n bytes), rather than through a libc call.
 */
static inline void buf_add(Buf *b, const void *s, size_t n) {
  buf_reserve(b, n);
  if (b->oom) return;
  char *d = b->p + b->n;
  const char *c = s;
  if (n > 16) memcpy(d, c, n);
  else if (n >= 8) memcpy(d, c, 8), memcpy(d + n - 8, c + n - 8, 8);
  else if (n >= 4) memcpy(d, c, 4), memcpy(d + n - 4, c + n - 4, 4);
  else if (n > 0) {
    d[0] = c[0];
    d[n / 2] = c[n / 2];
    d[n - 1] = c[n - 1];
  }
  b->n += n;
}
static void buf_str(Buf *b, const char *s) { buf_add(b, s, strlen(s)); }
static void buf_i64(Buf *b, sqlite3_int64 v) {
  char t[24];
  int k = sizeof t;
  unsigned long long u = v < 0 ? 0ULL - (unsigned long long)v : (unsigned long long)v;
  do t[--k] = (char)('0' + u % 10);
  while (u /= 10);
  if (v < 0) t[--k] = '-';
  buf_add(b, t + k, sizeof t - (size_t)k);
}

static const char HEX[] = "0123456789abcdef";
static void to_hex(const unsigned char *h, char *out) {
  for (int i = 0; i < 32; i++) {
    out[2 * i] = HEX[h[i] >> 4];
    out[2 * i + 1] = HEX[h[i] & 15];
  }
}
/* Lowercase hex only (the ledger writes lowercase; anything else never equals a recomputed hash). */
static int from_hex(const unsigned char *h, int len, unsigned char *out) {
  if (!h || len != 64) return 0;
  for (int i = 0; i < 32; i++) {
    int a = h[2 * i], b = h[2 * i + 1];
    a = a >= '0' && a <= '9' ? a - '0' : a >= 'a' && a <= 'f' ? a - 'a' + 10 : -1;
    b = b >= '0' && b <= '9' ? b - '0' : b >= 'a' && b <= 'f' ? b - 'a' + 10 : -1;
    if (a < 0 || b < 0) return 0;
    out[i] = (unsigned char)(a << 4 | b);
  }
  return 1;
}

/* ---------- UTF-8 and canonical JSON (canonical-scan.ts on bytes) ---------- */

/* Length of the valid UTF-8 sequence at s (s[0] >= 0x80), or 0 when it is not valid (overlong, surrogate, > U+10FFFF). */
static int utf8_seq(const unsigned char *s, const unsigned char *end) {
  unsigned c = s[0];
  int n;
  unsigned min;
  if (c >= 0xc2 && c <= 0xdf) n = 2, min = 0x80;
  else if (c >= 0xe0 && c <= 0xef) n = 3, min = 0x800;
  else if (c >= 0xf0 && c <= 0xf4) n = 4, min = 0x10000;
  else return 0;
  if (end - s < n) return 0;
  unsigned cp = c & (0xff >> (n + 1));
  for (int i = 1; i < n; i++) {
    if ((s[i] & 0xc0) != 0x80) return 0;
    cp = cp << 6 | (s[i] & 0x3f);
  }
  if (cp < min || cp > 0x10ffff || (cp >= 0xd800 && cp <= 0xdfff)) return 0;
  return n;
}

/*
 * Eight bytes at a time (SWAR): special8 flags (high bit) each byte of w that a JSON string cannot hold as it is
 * (below 0x20, '"', '\\') or that starts a UTF-8 sequence (0x80 and up). The borrow tricks below can flag too much,
 * but only bytes after a truly special one (a borrow runs upward, from the first byte in memory on a little-endian
 * machine), never too little: so no flag means eight plain bytes, and the lowest flag is the first special byte.
 */
#define ONES8 0x0101010101010101ULL
#define HIGHS8 0x8080808080808080ULL
static inline uint64_t load8(const unsigned char *p) {
  uint64_t w;
  memcpy(&w, p, 8);
  return w;
}
static inline uint64_t zero_byte8(uint64_t w) { return (w - ONES8) & ~w & HIGHS8; }
static inline uint64_t special8(uint64_t w) {
  return ((w - ONES8 * 0x20) & ~w & HIGHS8) | zero_byte8(w ^ (ONES8 * '"')) | zero_byte8(w ^ (ONES8 * '\\')) | (w & HIGHS8);
}
/* How many plain bytes start the block whose special8 is m (not 0); 0 where the byte order is not known to be little-endian. */
static inline int plain_prefix8(uint64_t m) {
#if defined(__BYTE_ORDER__) && __BYTE_ORDER__ == __ORDER_LITTLE_ENDIAN__ && (defined(__GNUC__) || defined(__clang__))
  return __builtin_ctzll(m) >> 3;
#else
  (void)m;
  return 0;
#endif
}
/* How many bytes from p on (before end) a JSON string holds as they are: eight at a time, then up to the first other. */
static inline size_t plain_bytes(const unsigned char *p, const unsigned char *end) {
  const unsigned char *q = p;
  while (end - q >= 8) {
    uint64_t m = special8(load8(q));
    if (m) return (size_t)(q - p) + (size_t)plain_prefix8(m);
    q += 8;
  }
  return (size_t)(q - p);
}

typedef struct {
  const unsigned char *t, *end;
  int depth;
  int key_plain; /* set by scan_string: the string had no escape and no byte >= 0x80 */
} Scan;

/* Index after the string starting at p (a quote), or NULL when not certainly canonical. */
static const unsigned char *scan_string(Scan *s, const unsigned char *p) {
  const unsigned char *end = s->end;
  s->key_plain = 1;
  for (p++; p < end; p++) {
    p += plain_bytes(p, end);
    if (p >= end) break;
    unsigned c = *p;
    if (c == '"') return p + 1;
    if (c < 0x20) return NULL;
    if (c == '\\') {
      s->key_plain = 0;
      if (++p >= end) return NULL;
      unsigned e = *p;
      if (e == 'u') {
        /* only \u00xx for a control without a short form, lowercase hex */
        if (end - p < 5 || p[1] != '0' || p[2] != '0' || (p[3] != '0' && p[3] != '1')) return NULL;
        unsigned h = p[4];
        int v = h >= '0' && h <= '9' ? (int)(h - '0') : h >= 'a' && h <= 'f' ? (int)(h - 'a' + 10) : -1;
        if (v < 0) return NULL;
        v += (p[3] - '0') * 16;
        if (v == 0x08 || v == 0x09 || v == 0x0a || v == 0x0c || v == 0x0d) return NULL;
        p += 4;
      } else if (!(e == '"' || e == '\\' || e == 'b' || e == 'f' || e == 'n' || e == 'r' || e == 't')) {
        return NULL;
      }
    } else if (c >= 0x80) {
      s->key_plain = 0;
      int n = utf8_seq(p, end);
      if (!n) return NULL;
      p += n - 1;
    }
  }
  return NULL;
}

static int is_digit(unsigned c) { return c >= '0' && c <= '9'; }

/*
 * ECMAScript's Number::toString layout of a number (sign, its k significant digits, the first not 0 and the last not
 * 0, and its decimal exponent n: value = 0.digits * 10^n) into out (room for 40 bytes); returns its length.
 */
static int js_layout(int neg, const char *digits, int k, int n, char *out) {
  int w = 0;
  if (neg) out[w++] = '-';
  if (k <= n && n <= 21) {
    memcpy(out + w, digits, (size_t)k), w += k;
    for (int z = 0; z < n - k; z++) out[w++] = '0';
  } else if (0 < n && n <= 21) {
    memcpy(out + w, digits, (size_t)n), w += n;
    out[w++] = '.';
    memcpy(out + w, digits + n, (size_t)(k - n)), w += k - n;
  } else if (-6 < n && n <= 0) {
    out[w++] = '0', out[w++] = '.';
    for (int z = 0; z < -n; z++) out[w++] = '0';
    memcpy(out + w, digits, (size_t)k), w += k;
  } else {
    out[w++] = digits[0];
    if (k > 1) out[w++] = '.', memcpy(out + w, digits + 1, (size_t)(k - 1)), w += k - 1;
    w += snprintf(out + w, 16, "e%c%d", n - 1 >= 0 ? '+' : '-', abs(n - 1));
  }
  return w;
}

/*
 * ECMAScript's Number::toString of the double the token denotes equals the token: certain (1) or not (0).
 * Decides from the token's own digits s (k of them) and decimal exponent n (value = 0.s * 10^n): the token must be
 * laid out as ECMAScript lays out (s, n), s must be the correctly rounded k-digit form of the double, and no
 * k-1 digit form may round-trip (so s is the shortest; the nearest of the shortest is the correctly rounded one).
 * Doubles whose significand is a power of two (uneven rounding interval) are left to JavaScript.
 */
static int js_number_exact(Buf *b, double d);
static int js_number_is(const unsigned char *tok, int len) {
  char all[48];
  int m = 0, point = -1, i = 0, neg = 0;
  if (len <= 0 || len > 40) return 0;
  if (tok[0] == '-') neg = 1, i = 1;
  for (; i < len; i++) {
    if (is_digit(tok[i])) all[m++] = (char)tok[i];
    else if (tok[i] == '.' && point < 0) point = m;
    else break;
  }
  if (m == 0) return 0;
  if (point < 0) point = m;
  int exp10 = 0;
  if (i < len) {
    if (tok[i] != 'e' || i + 2 >= len || (tok[i + 1] != '+' && tok[i + 1] != '-')) return 0;
    int e = 0;
    for (int j = i + 2; j < len; j++) {
      if (!is_digit(tok[j]) || e > 10000) return 0;
      e = e * 10 + (tok[j] - '0');
    }
    exp10 = tok[i + 1] == '-' ? -e : e;
  }
  int a = 0, z = m;
  while (a < m && all[a] == '0') a++;
  if (a == m) return len == 1 && tok[0] == '0'; /* "0"; "-0", "0.0" are not what ECMAScript prints */
  while (z > a && all[z - 1] == '0') z--;
  const char *digits = all + a;
  int k = z - a;
  if (k > 17) return 0;
  int n = point - a + exp10; /* value = 0.digits * 10^n */
  char want[64];
  int w = js_layout(neg, digits, k, n, want);
  if (w != len || memcmp(want, tok, (size_t)len) != 0) return 0;
  /* Up to 15 significant digits, in the normal range: no two such decimals share a double, so s is the only (and
     so the shortest) decimal of at most 15 digits that denotes it, and ECMAScript prints exactly the token. */
  if (k <= 15 && n > -300 && n < 300) return 1;
  char text[48];
  memcpy(text, tok, (size_t)len);
  text[len] = 0;
  double d = strtod(text, NULL);
  if (!isfinite(d) || d == 0) return 0;
  int e2;
  if (frexp(fabs(d), &e2) == 0.5) return 0;
  /* Where js_number_exact is certain (integer arithmetic, no printf), the token must be exactly its text. (A Buf on
     the stack: its text is at most 30 bytes, so it never grows.) */
  char room[64];
  Buf exact = {room, 0, sizeof room, 0};
  if (js_number_exact(&exact, d)) return exact.n == (size_t)len && memcmp(room, tok, (size_t)len) == 0;
  char out[48];
  snprintf(out, sizeof out, "%.*e", k - 1, fabs(d));
  /* out = "D.DDDDe±X": its digits must be s */
  if (out[0] != digits[0]) return 0;
  for (int j = 1; j < k; j++)
    if (out[j + 1] != digits[j]) return 0;
  if (k > 1) {
    snprintf(out, sizeof out, "%.*e", k - 2, fabs(d));
    if (strtod(out, NULL) == fabs(d)) return 0; /* a shorter form round-trips */
  }
  return 1;
}

static const unsigned char *scan_value(Scan *s, const unsigned char *p);

static const unsigned char *scan_number(Scan *s, const unsigned char *p) {
  const unsigned char *q = p, *end = s->end;
  if (q < end && *q == '-') q++;
  const unsigned char *ds = q;
  while (q < end && is_digit(*q)) q++;
  long digits = q - ds;
  if (q >= end || (*q != '.' && *q != 'e' && *q != 'E' && *q != '+' && *q != '-')) {
    /* an integer: up to 15 digits print as written (no leading zero, not -0) */
    if (digits >= 1 && digits <= 15) {
      if (*ds == '0' && (digits > 1 || ds > p)) return NULL;
      return q;
    }
  }
  while (q < end && (is_digit(*q) || *q == '-' || *q == '+' || *q == '.' || *q == 'e' || *q == 'E')) q++;
  return js_number_is(p, (int)(q - p)) ? q : NULL;
}

static const unsigned char *scan_object(Scan *s, const unsigned char *p) {
  const unsigned char *end = s->end;
  p++;
  if (p < end && *p == '}') return p + 1;
  const unsigned char *prev = NULL;
  size_t prev_len = 0;
  for (;;) {
    if (p >= end || *p != '"') return NULL;
    const unsigned char *key_end = scan_string(s, p);
    if (!key_end || !s->key_plain) return NULL; /* escaped or non-ASCII keys: JavaScript compares them */
    size_t len = (size_t)(key_end - p - 2);
    if (prev) {
      size_t m = prev_len < len ? prev_len : len;
      int c = memcmp(prev, p + 1, m);
      if (c > 0 || (c == 0 && prev_len >= len)) return NULL; /* not strictly increasing */
    }
    prev = p + 1, prev_len = len;
    if (key_end >= end || *key_end != ':') return NULL;
    p = scan_value(s, key_end + 1);
    if (!p || p >= end) return NULL;
    if (*p == '}') return p + 1;
    if (*p != ',') return NULL;
    p++;
  }
}

static const unsigned char *scan_array(Scan *s, const unsigned char *p) {
  const unsigned char *end = s->end;
  p++;
  if (p < end && *p == ']') return p + 1;
  for (;;) {
    p = scan_value(s, p);
    if (!p || p >= end) return NULL;
    if (*p == ']') return p + 1;
    if (*p != ',') return NULL;
    p++;
  }
}

static const unsigned char *scan_value(Scan *s, const unsigned char *p) {
  const unsigned char *end = s->end;
  if (p >= end) return NULL;
  unsigned c = *p;
  if (c == '"') return scan_string(s, p);
  if (c == '{' || c == '[') {
    if (++s->depth > 200) return NULL;
    const unsigned char *r = c == '{' ? scan_object(s, p) : scan_array(s, p);
    s->depth--;
    return r;
  }
  if (c == '-' || is_digit(c)) return scan_number(s, p);
  if (end - p >= 4 && memcmp(p, "null", 4) == 0) return p + 4;
  if (end - p >= 4 && memcmp(p, "true", 4) == 0) return p + 4;
  if (end - p >= 5 && memcmp(p, "false", 5) == 0) return p + 5;
  return NULL;
}

static int is_canonical_json(const unsigned char *t, int len) {
  if (len <= 0) return 0;
  Scan s = {t, t + len, 0, 0};
  return scan_value(&s, t) == t + len;
}

/* JSON.stringify of a string value appended to b; 0 when JavaScript must decide (invalid UTF-8). Written in place
   (room for the longest escape of every byte is reserved first): this runs on every event and decision record. */
static int quote_string(Buf *b, const unsigned char *s, int len) {
  buf_reserve(b, (size_t)len * 6 + 2);
  if (b->oom) return 0;
  char *o = b->p + b->n;
  *o++ = '"';
  for (int i = 0; i < len; i++) {
    size_t k = plain_bytes(s + i, s + len);
    memcpy(o, s + i, k);
    o += k;
    i += (int)k;
    if (i >= len) break;
    unsigned c = s[i];
    if (c >= 0x20 && c != '"' && c != '\\' && c < 0x80) {
      *o++ = (char)c;
      continue;
    }
    if (c >= 0x80) {
      int n = utf8_seq(s + i, s + len);
      if (!n) return 0;
      memcpy(o, s + i, (size_t)n);
      o += n;
      i += n - 1;
      continue;
    }
    *o++ = '\\';
    switch (c) {
      case '"': *o++ = '"'; break;
      case '\\': *o++ = '\\'; break;
      case '\b': *o++ = 'b'; break;
      case '\f': *o++ = 'f'; break;
      case '\n': *o++ = 'n'; break;
      case '\r': *o++ = 'r'; break;
      case '\t': *o++ = 't'; break;
      default:
        *o++ = 'u', *o++ = '0', *o++ = '0', *o++ = HEX[c >> 4], *o++ = HEX[c & 15];
    }
  }
  *o++ = '"';
  b->n = (size_t)(o - b->p);
  return 1;
}

static int quote_text_value(Buf *b, sqlite3_value *v) {
  if (sqlite3_value_type(v) != SQLITE_TEXT) return 0;
  const unsigned char *s = sqlite3_value_text(v);
  return s != NULL && quote_string(b, s, sqlite3_value_bytes(v));
}

/* A safe integer as JavaScript prints it (better-sqlite3 reads INTEGER as a double). */
static int integer_value(Buf *b, sqlite3_value *v) {
  if (sqlite3_value_type(v) != SQLITE_INTEGER) return 0;
  sqlite3_int64 x = sqlite3_value_int64(v);
  if (x > 9007199254740991LL || x < -9007199254740991LL) return 0;
  buf_i64(b, x);
  return 1;
}

/*
 * The leaf hash of the nine fields (event-hashing.ts leafHashOfFields' fast path): 1 and out set, or 0 when
 * JavaScript must decide.
 */
static int leaf_of(Buf *b, sqlite3_value **f, unsigned char *out) {
  /* f: seq, at, actor_id, actor_name, role, action, entity_type, entity_id, payload */
  b->n = 0;
  b->oom = 0;
  sqlite3_value *payload = f[8];
  if (sqlite3_value_type(payload) != SQLITE_TEXT) return 0;
  const unsigned char *pt = sqlite3_value_text(payload);
  int plen = sqlite3_value_bytes(payload);
  if (!pt || !is_canonical_json(pt, plen)) return 0;
  buf_add(b, "\0{\"action\":", 11);
  if (!quote_text_value(b, f[5])) return 0;
  buf_str(b, ",\"actorId\":");
  if (sqlite3_value_type(f[2]) == SQLITE_NULL) buf_str(b, "null");
  else if (!integer_value(b, f[2])) return 0;
  buf_str(b, ",\"actorName\":");
  if (!quote_text_value(b, f[3])) return 0;
  buf_str(b, ",\"at\":");
  if (!quote_text_value(b, f[1])) return 0;
  buf_str(b, ",\"entityId\":");
  if (!quote_text_value(b, f[7])) return 0;
  buf_str(b, ",\"entityType\":");
  if (!quote_text_value(b, f[6])) return 0;
  buf_str(b, ",\"payload\":");
  buf_add(b, pt, (size_t)plen);
  buf_str(b, ",\"role\":");
  if (!quote_text_value(b, f[4])) return 0;
  buf_str(b, ",\"seq\":");
  if (!integer_value(b, f[0])) return 0;
  buf_add(b, "}", 1);
  if (b->oom) return 0;
  sha256(b->p, b->n, out);
  return 1;
}

/* ---------- the range ---------- */

enum { P_NONE = 0, P_GAP = 1, P_ORDER = 2, P_LEAF = 3, P_CHAIN = 4 };
/* A compact range [begin, end) has at most 2 * log2(end - begin) + 2 nodes: 128 covers any 63-bit range. */
#define MAX_NODES 128

typedef struct {
  int active;
  sqlite3_int64 from, to, expected, covered_up_to, leaves;
  unsigned char prev[32];
  /* compact range [from - 1, end): nodes and their widths */
  unsigned char nodes[MAX_NODES][32];
  sqlite3_int64 widths[MAX_NODES];
  int count;
  sqlite3_int64 end_at;
  /* tree sizes wanted, ascending */
  sqlite3_int64 *sizes;
  int n_sizes, size_index;
  /* watched actions ("\n"-separated list, each entry framed by "\n") and seqs (ascending) */
  char *watch_actions;
  sqlite3_int64 *watch_seqs;
  int n_watch_seqs;
  /* problem */
  int problem, odd_time;
  sqlite3_int64 problem_seq, found_seq;
  /* outputs, as JSON fragments */
  Buf roots, partials, watched, checkpoints, deferred, body;
  int n_roots, n_partials, n_watched, n_checkpoints, n_deferred;
  char *newest_at, *oldest_at;
  sqlite3_int64 newest_seq, oldest_seq;
} Range;

static void range_reset(Range *r) {
  free(r->sizes);
  free(r->watch_actions);
  free(r->watch_seqs);
  free(r->roots.p);
  free(r->partials.p);
  free(r->watched.p);
  free(r->checkpoints.p);
  free(r->deferred.p);
  free(r->newest_at);
  free(r->oldest_at);
  Buf body = r->body; /* kept: reused across ranges */
  memset(r, 0, sizeof *r);
  r->body = body;
}

static void range_free(void *p) {
  Range *r = p;
  range_reset(r);
  free(r->body.p);
  free(r);
}

static sqlite3_int64 *parse_csv(const unsigned char *s, int *count) {
  *count = 0;
  if (!s || !*s) return NULL;
  int n = 1;
  for (const unsigned char *q = s; *q; q++) n += *q == ',';
  sqlite3_int64 *out = malloc(sizeof *out * (size_t)n);
  if (!out) return NULL;
  const char *q = (const char *)s;
  while (*q && *count < n) {
    char *e;
    out[(*count)++] = strtoll(q, &e, 10);
    q = *e == ',' ? e + 1 : e + (*e != 0);
    if (e == q && *q) break;
  }
  return out;
}

static void node_hash(const unsigned char *l, const unsigned char *r, unsigned char *out) {
  unsigned char in[65];
  in[0] = 1;
  memcpy(in + 1, l, 32);
  memcpy(in + 33, r, 32);
  sha256(in, 65, out);
}

/* merkle.ts CompactRange.pushNode for one leaf */
static void push_leaf(Range *r, const unsigned char *leaf) {
  unsigned char node[32];
  memcpy(node, leaf, 32);
  sqlite3_int64 width = 1, start = r->end_at;
  int i = r->count - 1;
  while (i >= 0 && r->widths[i] == width && (start - width) % (2 * width) == 0) {
    node_hash(r->nodes[i], node, node);
    r->count--;
    start -= width;
    width *= 2;
    i--;
  }
  memcpy(r->nodes[r->count], node, 32);
  r->widths[r->count] = width;
  r->count++;
  r->end_at++;
}

static void add_hex(Buf *b, const unsigned char *h) {
  char x[64];
  to_hex(h, x);
  buf_add(b, x, 64);
}

static void add_nodes(Buf *b, Range *r) {
  buf_add(b, "\"", 1);
  for (int i = 0; i < r->count; i++) add_hex(b, r->nodes[i]);
  buf_str(b, "\",[");
  for (int i = 0; i < r->count; i++) {
    if (i) buf_add(b, ",", 1);
    buf_i64(b, r->widths[i]);
  }
  buf_add(b, "]", 1);
}

static void record_size(Range *r, sqlite3_int64 size) {
  if (r->from == 1) {
    unsigned char acc[32];
    memcpy(acc, r->nodes[r->count - 1], 32);
    for (int i = r->count - 2; i >= 0; i--) node_hash(r->nodes[i], acc, acc);
    if (r->n_roots++) buf_add(&r->roots, ",", 1);
    buf_add(&r->roots, "[", 1);
    buf_i64(&r->roots, size);
    buf_add(&r->roots, ",\"", 2);
    add_hex(&r->roots, acc);
    buf_add(&r->roots, "\"]", 2);
  } else {
    if (r->n_partials++) buf_add(&r->partials, ",", 1);
    buf_add(&r->partials, "[", 1);
    buf_i64(&r->partials, size);
    buf_add(&r->partials, ",", 1);
    add_nodes(&r->partials, r);
    buf_add(&r->partials, "]", 1);
  }
}

static int watched_action(Range *r, const unsigned char *action, int len) {
  if (!r->watch_actions || !action || len == 0 || memchr(action, '\n', (size_t)len)) return 0;
  const char *w = r->watch_actions;
  for (const char *q = strstr(w, "\n"); q; q = strstr(q + 1, "\n")) {
    if (strncmp(q + 1, (const char *)action, (size_t)len) == 0 && q[1 + len] == '\n') return 1;
  }
  return 0;
}

static int watched_seq(Range *r, sqlite3_int64 seq) {
  int lo = 0, hi = r->n_watch_seqs - 1;
  while (lo <= hi) {
    int mid = (lo + hi) / 2;
    if (r->watch_seqs[mid] == seq) return 1;
    if (r->watch_seqs[mid] < seq) lo = mid + 1;
    else hi = mid - 1;
  }
  return 0;
}

static void keep_at(char **slot, const unsigned char *at, int len) {
  free(*slot);
  *slot = malloc((size_t)len + 1);
  if (*slot) memcpy(*slot, at, (size_t)len), (*slot)[len] = 0;
}

static void range_begin(sqlite3_context *ctx, int argc, sqlite3_value **argv) {
  Range *r = sqlite3_user_data(ctx);
  (void)argc;
  range_reset(r);
  r->from = sqlite3_value_int64(argv[0]);
  r->to = sqlite3_value_int64(argv[1]);
  if (r->from < 1) {
    sqlite3_result_error(ctx, "rl_range_begin: from must be >= 1", -1);
    return;
  }
  if (r->from > 1 && !from_hex(sqlite3_value_text(argv[2]), sqlite3_value_bytes(argv[2]), r->prev)) {
    sqlite3_result_error(ctx, "rl_range_begin: a range after seq 1 needs the previous chain hash", -1);
    return;
  }
  r->sizes = parse_csv(sqlite3_value_text(argv[3]), &r->n_sizes);
  r->covered_up_to = sqlite3_value_int64(argv[4]);
  const unsigned char *wa = sqlite3_value_text(argv[5]);
  if (wa && *wa) {
    size_t n = strlen((const char *)wa);
    r->watch_actions = malloc(n + 3);
    if (r->watch_actions) {
      r->watch_actions[0] = '\n';
      memcpy(r->watch_actions + 1, wa, n);
      r->watch_actions[n + 1] = '\n';
      r->watch_actions[n + 2] = 0;
    }
  }
  r->watch_seqs = parse_csv(sqlite3_value_text(argv[6]), &r->n_watch_seqs);
  r->expected = r->from;
  r->end_at = r->from - 1;
  r->newest_seq = r->oldest_seq = -1;
  r->active = 1;
  sqlite3_result_int(ctx, 1);
}

static int stop(Range *r, int kind, sqlite3_int64 seq, sqlite3_int64 found) {
  r->problem = kind;
  r->problem_seq = seq;
  r->found_seq = found;
  return 0;
}

static int feed(Range *r, sqlite3_value **argv) {
  if (!r->active || r->problem) return 0;
  sqlite3_int64 expected = r->expected;
  if (r->to >= 0 && expected > r->to) return 0;
  if (sqlite3_value_type(argv[0]) != SQLITE_INTEGER) return stop(r, P_ORDER, expected, -1);
  sqlite3_int64 seq = sqlite3_value_int64(argv[0]);
  if (seq != expected) return stop(r, seq > expected ? P_GAP : P_ORDER, expected, seq);

  unsigned char leaf[32], chain[32], in[64];
  int deferred = 0;
  if (leaf_of(&r->body, argv, leaf)) {
    char hex[64];
    to_hex(leaf, hex);
    if (sqlite3_value_type(argv[9]) != SQLITE_TEXT || sqlite3_value_bytes(argv[9]) != 64 ||
        memcmp(sqlite3_value_text(argv[9]), hex, 64) != 0)
      return stop(r, P_LEAF, expected, -1);
  } else {
    /* JavaScript recomputes this leaf; the stored one carries the chain meanwhile (a bad one stops here). */
    if (sqlite3_value_type(argv[9]) != SQLITE_TEXT || !from_hex(sqlite3_value_text(argv[9]), sqlite3_value_bytes(argv[9]), leaf))
      return stop(r, P_LEAF, expected, -1);
    deferred = 1;
  }
  memcpy(in, r->prev, 32);
  memcpy(in + 32, leaf, 32);
  sha256(in, 64, chain);
  {
    char hex[64];
    to_hex(chain, hex);
    if (sqlite3_value_type(argv[10]) != SQLITE_TEXT || sqlite3_value_bytes(argv[10]) != 64 ||
        memcmp(sqlite3_value_text(argv[10]), hex, 64) != 0)
      return stop(r, P_CHAIN, expected, -1);
  }
  memcpy(r->prev, chain, 32);
  r->expected++;
  push_leaf(r, leaf);
  r->leaves++;
  if (deferred) {
    if (r->n_deferred++) buf_add(&r->deferred, ",", 1);
    buf_i64(&r->deferred, seq);
  }

  const unsigned char *action = sqlite3_value_text(argv[5]);
  int action_len = sqlite3_value_bytes(argv[5]);
  int is_text_action = sqlite3_value_type(argv[5]) == SQLITE_TEXT;
  if (is_text_action && action_len == 16 && memcmp(action, "audit.checkpoint", 16) == 0) {
    if (r->n_checkpoints++) buf_add(&r->checkpoints, ",", 1);
    buf_i64(&r->checkpoints, seq);
  } else if (sqlite3_value_type(argv[1]) == SQLITE_TEXT) {
    /* newest and oldest uncovered event time (RangeScanner.trackTime; byte order = code point order) */
    const unsigned char *at = sqlite3_value_text(argv[1]);
    int at_len = sqlite3_value_bytes(argv[1]);
    /* Byte order is UTF-16 order for ASCII only; a time with other bytes (never written by the ledger) goes to JavaScript. */
    for (int i = 0; i < at_len; i++)
      if (at[i] >= 0x80 || at[i] == 0) r->odd_time = 1;
    if (r->newest_seq < 0 || strcmp((const char *)at, r->newest_at ? r->newest_at : "") > 0) {
      keep_at(&r->newest_at, at, at_len);
      r->newest_seq = seq;
    }
    if (seq > r->covered_up_to && (r->oldest_seq < 0 || strcmp((const char *)at, r->oldest_at ? r->oldest_at : "") < 0)) {
      keep_at(&r->oldest_at, at, at_len);
      r->oldest_seq = seq;
    }
  }
  if ((is_text_action && watched_action(r, action, action_len)) || (r->n_watch_seqs > 0 && watched_seq(r, seq))) {
    if (r->n_watched++) buf_add(&r->watched, ",", 1);
    buf_add(&r->watched, "[", 1);
    buf_i64(&r->watched, seq);
    buf_add(&r->watched, ",\"", 2);
    add_hex(&r->watched, leaf);
    buf_add(&r->watched, "\"]", 2);
  }
  if (r->size_index < r->n_sizes && r->sizes[r->size_index] == seq) {
    r->size_index++;
    record_size(r, seq);
  }
  return 1;
}

static void range_feed(sqlite3_context *ctx, int argc, sqlite3_value **argv) {
  (void)argc;
  sqlite3_result_int(ctx, feed(sqlite3_user_data(ctx), argv));
}

static void add_at(Buf *b, const char *at, sqlite3_int64 seq) {
  if (seq < 0) {
    buf_str(b, "null");
    return;
  }
  buf_add(b, "[", 1);
  quote_string(b, (const unsigned char *)at, (int)strlen(at));
  buf_add(b, ",", 1);
  buf_i64(b, seq);
  buf_add(b, "]", 1);
}

static void range_result(sqlite3_context *ctx, int argc, sqlite3_value **argv) {
  Range *r = sqlite3_user_data(ctx);
  (void)argc, (void)argv;
  if (!r->active) {
    sqlite3_result_error(ctx, "rl_range_result: no range begun", -1);
    return;
  }
  Buf b = {0};
  buf_str(&b, "{\"leaves\":");
  buf_i64(&b, r->leaves);
  buf_str(&b, ",\"expected\":");
  buf_i64(&b, r->expected);
  buf_str(&b, ",\"problem\":");
  if (r->problem) {
    buf_add(&b, "[", 1);
    buf_i64(&b, r->problem);
    buf_add(&b, ",", 1);
    buf_i64(&b, r->problem_seq);
    buf_add(&b, ",", 1);
    buf_i64(&b, r->found_seq);
    buf_add(&b, "]", 1);
  } else buf_str(&b, "null");
  buf_str(&b, ",\"roots\":[");
  buf_add(&b, r->roots.p, r->roots.n);
  buf_str(&b, "],\"partials\":[");
  buf_add(&b, r->partials.p, r->partials.n);
  buf_str(&b, "],\"watched\":[");
  buf_add(&b, r->watched.p, r->watched.n);
  buf_str(&b, "],\"checkpoints\":[");
  buf_add(&b, r->checkpoints.p, r->checkpoints.n);
  buf_str(&b, "],\"deferred\":[");
  buf_add(&b, r->deferred.p, r->deferred.n);
  buf_str(&b, "],\"nodes\":[");
  add_nodes(&b, r);
  buf_str(&b, "],\"newest\":");
  add_at(&b, r->newest_at, r->newest_seq);
  buf_str(&b, ",\"oldestUncovered\":");
  add_at(&b, r->oldest_at, r->oldest_seq);
  buf_str(&b, ",\"oddTime\":");
  buf_i64(&b, r->odd_time);
  buf_add(&b, "}", 1);
  int oom = b.oom || r->roots.oom || r->partials.oom || r->watched.oom || r->checkpoints.oom || r->deferred.oom;
  if (oom) {
    free(b.p);
    sqlite3_result_error_nomem(ctx);
    return;
  }
  sqlite3_result_text(ctx, b.p, (int)b.n, free);
}

static void sha256_hex(sqlite3_context *ctx, int argc, sqlite3_value **argv) {
  (void)argc;
  int type = sqlite3_value_type(argv[0]);
  if (type == SQLITE_NULL) {
    sqlite3_result_null(ctx);
    return;
  }
  const unsigned char *p = type == SQLITE_BLOB ? sqlite3_value_blob(argv[0]) : sqlite3_value_text(argv[0]);
  int n = sqlite3_value_bytes(argv[0]);
  unsigned char h[32];
  char hex[64];
  sha256(p ? (const void *)p : "", (size_t)n, h);
  to_hex(h, hex);
  sqlite3_result_text(ctx, hex, 64, SQLITE_TRANSIENT);
}

/*
 * rl_member_inserted_sha256(object_text, key, value_text): records.ts evaluationResultTextSha256, i.e. sha256 of
 * insertCanonicalMember(object_text, key, value_text) (value NULL: of object_text itself), in lowercase hex. NULL
 * when JavaScript must decide: a non-text argument, a key needing escapes or not ASCII, an existing top-level key
 * with an escape. (Comparing an ASCII key with another key byte by byte orders them as UTF-16 code units do.)
 */
static void member_inserted_sha256(sqlite3_context *ctx, int argc, sqlite3_value **argv) {
  (void)argc;
  if (sqlite3_value_type(argv[0]) != SQLITE_TEXT || sqlite3_value_type(argv[1]) != SQLITE_TEXT) return;
  int vtype = sqlite3_value_type(argv[2]);
  if (vtype != SQLITE_NULL && vtype != SQLITE_TEXT) return;
  const unsigned char *obj = sqlite3_value_text(argv[0]);
  int n = sqlite3_value_bytes(argv[0]);
  unsigned char h[32];
  char hex[64];
  if (vtype == SQLITE_NULL) {
    sha256(obj, (size_t)n, h);
    to_hex(h, hex);
    sqlite3_result_text(ctx, hex, 64, SQLITE_TRANSIENT);
    return;
  }
  const unsigned char *key = sqlite3_value_text(argv[1]);
  int klen = sqlite3_value_bytes(argv[1]);
  for (int i = 0; i < klen; i++)
    if (key[i] < 0x20 || key[i] >= 0x80 || key[i] == '"' || key[i] == '\\') return;
  const unsigned char *val = sqlite3_value_text(argv[2]);
  int vlen = sqlite3_value_bytes(argv[2]);
  if (n < 2 || obj[n - 1] != '}') return; /* JavaScript slices off the last character, whatever it is */
  long at = -1; /* insert the member before index `at`; -1: before the closing brace */
  if (!(n == 2 && obj[0] == '{' && obj[1] == '}')) {
    int depth = 0, in_string = 0;
    long key_start = 1;
    for (long i = 0; i < n && at < 0; i++) {
      unsigned ch = obj[i];
      if (in_string) {
        if (ch == '\\') i++;
        else if (ch == '"') in_string = 0;
        continue;
      }
      if (ch == '"') {
        if (depth == 1 && i == key_start) {
          long end = i + 1;
          while (end < n && obj[end] != '"') {
            if (obj[end] == '\\') return; /* an escaped key: JavaScript compares it decoded */
            end++;
          }
          if (end >= n) return;
          long elen = end - i - 1;
          long m = elen < klen ? elen : klen;
          int c = memcmp(key, obj + i + 1, (size_t)m);
          if (c < 0 || (c == 0 && klen < elen)) at = i;
          i = end;
          continue;
        }
        in_string = 1;
      } else if (ch == '{' || ch == '[') depth++;
      else if (ch == '}' || ch == ']') depth--;
      else if (ch == ',' && depth == 1) key_start = i + 1;
    }
  }
  SHA256_CTX c;
  SHA256_Init(&c);
  if (n == 2 && obj[0] == '{' && obj[1] == '}') {
    SHA256_Update(&c, "{\"", 2);
    SHA256_Update(&c, key, (size_t)klen);
    SHA256_Update(&c, "\":", 2);
    SHA256_Update(&c, val, (size_t)vlen);
    SHA256_Update(&c, "}", 1);
  } else if (at >= 0) {
    SHA256_Update(&c, obj, (size_t)at);
    SHA256_Update(&c, "\"", 1);
    SHA256_Update(&c, key, (size_t)klen);
    SHA256_Update(&c, "\":", 2);
    SHA256_Update(&c, val, (size_t)vlen);
    SHA256_Update(&c, ",", 1);
    SHA256_Update(&c, obj + at, (size_t)(n - at));
  } else {
    SHA256_Update(&c, obj, (size_t)(n - 1));
    SHA256_Update(&c, ",\"", 2);
    SHA256_Update(&c, key, (size_t)klen);
    SHA256_Update(&c, "\":", 2);
    SHA256_Update(&c, val, (size_t)vlen);
    SHA256_Update(&c, "}", 1);
  }
  SHA256_Final(h, &c);
  to_hex(h, hex);
  sqlite3_result_text(ctx, hex, 64, SQLITE_TRANSIENT);
}

/*
 * rl_run_params_framed(key, value_text, value_num), an aggregate over one run's run_params rows: the rows framed one
 * after another as a BLOB (check-run-params-json.ts frameRunParams builds the same bytes from a config): 'k' + u32
 * length (big-endian) + key bytes; value_text NULL as 'n', else 't' + u32 length + bytes; value_num NULL as 'n', else
 * 'd' + the double's 8 bytes big-endian. NULL over no rows. The text 'X' when JavaScript must decide row by row: a
 * key that is not TEXT or not strictly above the previous row's key (memcmp, as the (run_id, key) index orders them),
 * a value_text that is not TEXT or NULL, a value_num that is neither a number nor NULL, an INTEGER beyond 2^53 (which
 * JavaScript would read rounded).
 */
typedef struct {
  int started, bad;
  size_t prev_key, prev_len; /* where the previous row's key sits in `out` */
  Buf out;
} ParamsFramed;

static void frame_bytes(Buf *b, char tag, const void *p, int n) {
  unsigned char h[5] = {(unsigned char)tag, (unsigned char)(n >> 24), (unsigned char)(n >> 16), (unsigned char)(n >> 8), (unsigned char)n};
  buf_add(b, h, 5);
  if (n > 0) buf_add(b, p, (size_t)n);
}

/*
 * One run_params row framed into b as rl_run_params_framed frames each row (see there); 0 when the row makes the
 * run's rows 'X' (what is framed of it then does not matter).
 */
static int frame_param_row(Buf *b, sqlite3_value *key, sqlite3_value *text, sqlite3_value *num) {
  if (sqlite3_value_type(key) != SQLITE_TEXT) return 0;
  frame_bytes(b, 'k', sqlite3_value_text(key), sqlite3_value_bytes(key));
  int ttype = sqlite3_value_type(text);
  if (ttype == SQLITE_NULL) buf_add(b, "n", 1);
  else if (ttype == SQLITE_TEXT) frame_bytes(b, 't', sqlite3_value_text(text), sqlite3_value_bytes(text));
  else return 0;
  int ntype = sqlite3_value_type(num);
  if (ntype == SQLITE_NULL) {
    buf_add(b, "n", 1);
    return 1;
  }
  if (ntype != SQLITE_INTEGER && ntype != SQLITE_FLOAT) return 0;
  double v;
  if (ntype == SQLITE_INTEGER) {
    sqlite3_int64 i = sqlite3_value_int64(num);
    if (i > 9007199254740992LL || i < -9007199254740992LL) return 0;
    v = (double)i;
  } else v = sqlite3_value_double(num);
  unsigned long long bits;
  memcpy(&bits, &v, 8);
  unsigned char d[9];
  d[0] = 'd';
  for (int i = 0; i < 8; i++) d[1 + i] = (unsigned char)(bits >> (56 - 8 * i));
  buf_add(b, d, 9);
  return 1;
}

static void run_params_step(sqlite3_context *ctx, int argc, sqlite3_value **argv) {
  (void)argc;
  ParamsFramed *d = sqlite3_aggregate_context(ctx, sizeof *d);
  if (!d) {
    sqlite3_result_error_nomem(ctx);
    return;
  }
  if (d->bad) return;
  if (sqlite3_value_type(argv[0]) != SQLITE_TEXT) {
    d->bad = 1;
    return;
  }
  const unsigned char *key = sqlite3_value_text(argv[0]);
  int klen = sqlite3_value_bytes(argv[0]);
  if (d->started) {
    size_t m = d->prev_len < (size_t)klen ? d->prev_len : (size_t)klen;
    int c = m ? memcmp(d->out.p + d->prev_key, key, m) : 0;
    if (c > 0 || (c == 0 && d->prev_len >= (size_t)klen)) {
      d->bad = 1;
      return;
    }
  }
  d->started = 1;
  d->prev_key = d->out.n + 5;
  d->prev_len = (size_t)klen;
  if (!frame_param_row(&d->out, argv[0], argv[1], argv[2])) d->bad = 1;
}

static void run_params_final(sqlite3_context *ctx) {
  ParamsFramed *d = sqlite3_aggregate_context(ctx, 0);
  if (!d) return; /* no rows: NULL */
  if (d->bad || !d->started || d->out.oom || d->out.n > 0x7fffffff) {
    free(d->out.p);
    sqlite3_result_text(ctx, "X", 1, SQLITE_STATIC);
    return;
  }
  sqlite3_result_blob(ctx, d->out.p, (int)d->out.n, free);
}

/*
 * rl_unless_json_object(x): NULL when x is a TEXT that is certainly canonical JSON of an object (is_canonical_json
 * accepts only what canonicalJson prints, so JSON.parse gives an object), else x itself: a reader that needs only
 * to know that a payload is an object need not read it.
 */
static void unless_json_object(sqlite3_context *ctx, int argc, sqlite3_value **argv) {
  (void)argc;
  if (sqlite3_value_type(argv[0]) == SQLITE_TEXT) {
    const unsigned char *t = sqlite3_value_text(argv[0]);
    int n = sqlite3_value_bytes(argv[0]);
    if (t && n > 0 && t[0] == '{' && is_canonical_json(t, n)) return;
  }
  sqlite3_result_value(ctx, argv[0]);
}

/*
 * rl_distinct_ids(x): count(DISTINCT x) over row ids, without the temporary B-tree SQLite sorts them into (0.1-0.2 s
 * of the content worker's reads for the million-event ledger): a bitmap, one bit per id. NULLs are skipped, as
 * count(DISTINCT) skips them. NULL (uncertain: the caller then judges the rows the slow way) when an x is not an
 * INTEGER in [0, DISTINCT_IDS_MAX) or the bitmap cannot grow; so it only ever answers what count(DISTINCT) would.
 */
#define DISTINCT_IDS_MAX ((sqlite3_int64)1 << 28) /* a 32 MiB bitmap at most */
typedef struct {
  unsigned char *bits;
  size_t bytes;
  sqlite3_int64 count;
  int bad;
} DistinctIds;

static void distinct_ids_step(sqlite3_context *ctx, int argc, sqlite3_value **argv) {
  (void)argc;
  DistinctIds *d = sqlite3_aggregate_context(ctx, sizeof *d);
  if (!d) {
    sqlite3_result_error_nomem(ctx);
    return;
  }
  int type = sqlite3_value_type(argv[0]);
  if (d->bad || type == SQLITE_NULL) return;
  sqlite3_int64 x = type == SQLITE_INTEGER ? sqlite3_value_int64(argv[0]) : -1;
  if (x < 0 || x >= DISTINCT_IDS_MAX) {
    d->bad = 1;
    return;
  }
  size_t byte = (size_t)(x >> 3);
  if (byte >= d->bytes) {
    size_t bytes = d->bytes ? d->bytes : 4096;
    while (bytes <= byte) bytes *= 2;
    unsigned char *p = realloc(d->bits, bytes);
    if (!p) {
      d->bad = 1;
      return;
    }
    memset(p + d->bytes, 0, bytes - d->bytes);
    d->bits = p;
    d->bytes = bytes;
  }
  unsigned char bit = (unsigned char)(1u << (x & 7));
  if (!(d->bits[byte] & bit)) {
    d->bits[byte] |= bit;
    d->count++;
  }
}

static void distinct_ids_final(sqlite3_context *ctx) {
  DistinctIds *d = sqlite3_aggregate_context(ctx, 0);
  if (!d) {
    sqlite3_result_int64(ctx, 0); /* no rows */
    return;
  }
  free(d->bits);
  if (!d->bad) sqlite3_result_int64(ctx, d->count);
}

/* ---------- Event texts built from rows (bulk-events-sql.ts: the bulk events matched inside SQLite) ---------- */

/* 1 when the n bytes at s are valid UTF-8 (utf8_seq's rules: no overlong form, surrogate or code point > U+10FFFF). */
static int valid_utf8(const unsigned char *s, int n) {
  for (int i = 0; i < n; i++) {
    if (s[i] < 0x80) continue;
    int k = utf8_seq(s + i, s + n);
    if (!k) return 0;
    i += k - 1;
  }
  return 1;
}

/*
 * Appends `"name":value` as JavaScript's template would print the value better-sqlite3 reads, by the key's form:
 *   "name"   JSON.stringify(v): NULL -> null, a safe INTEGER -> its digits, a TEXT of valid UTF-8 -> quote_string;
 *   "#name"  `${v}` of a number or null: NULL -> null, a safe INTEGER -> its digits;
 *   "~name"  `${v}` of a JSON text or null: NULL -> null, a TEXT of valid UTF-8 -> its bytes as they are.
 * 0 when it cannot be certain (a REAL, a BLOB, an integer beyond 2^53 - 1, a TEXT where a number is printed, invalid
 * UTF-8, a key that is not TEXT of printable ASCII without quote or backslash).
 */
static int json_member(Buf *b, sqlite3_value *key, sqlite3_value *v) {
  if (sqlite3_value_type(key) != SQLITE_TEXT) return 0;
  const unsigned char *k = sqlite3_value_text(key);
  int klen = sqlite3_value_bytes(key);
  if (!k || klen < 1) return 0;
  char form = (k[0] == '#' || k[0] == '~') ? (char)k[0] : 0;
  if (form) k++, klen--;
  if (klen < 1) return 0;
  for (int i = 0; i < klen; i++)
    if (k[i] < 0x20 || k[i] > 0x7e || k[i] == '"' || k[i] == '\\') return 0;
  buf_add(b, "\"", 1);
  buf_add(b, k, (size_t)klen);
  buf_add(b, "\":", 2);
  int type = sqlite3_value_type(v);
  if (type == SQLITE_NULL) {
    buf_add(b, "null", 4);
    return 1;
  }
  if (type == SQLITE_INTEGER) return form != '~' && integer_value(b, v);
  if (type != SQLITE_TEXT || form == '#') return 0;
  const unsigned char *t = sqlite3_value_text(v);
  int n = sqlite3_value_bytes(v);
  if (!t) return 0;
  if (form == 0) return quote_string(b, t, n);
  if (!valid_utf8(t, n)) return 0;
  buf_add(b, t, (size_t)n);
  return 1;
}

/* The object text of the (key, value) pairs in argv, in their order; 0 when uncertain (json_member). */
static int json_object_of(Buf *b, int argc, sqlite3_value **argv) {
  if (argc % 2) return 0;
  buf_add(b, "{", 1);
  for (int i = 0; i < argc; i += 2) {
    if (i) buf_add(b, ",", 1);
    if (!json_member(b, argv[i], argv[i + 1])) return 0;
  }
  buf_add(b, "}", 1);
  return !b->oom && b->n <= 0x7fffffff;
}

/* What every function below returns when JavaScript must decide: a zero-length BLOB (equal to no TEXT, and
   uncertain again wherever it is passed as a value). */
static void result_uncertain(sqlite3_context *ctx) { sqlite3_result_zeroblob(ctx, 0); }

/*
 * rl_json_text(key1, value1, key2, value2, ...): the text `{"key1":V1,"key2":V2,...}` JavaScript builds from those
 * row values (json_member), keys in the order given (the callers give the canonical order of the text they
 * rebuild). Uncertain: the zero-length BLOB, so an event compared with it goes to JavaScript, and a text built with
 * it as a value is uncertain too: a row can only send its event to JavaScript, never match a text JavaScript would
 * not build.
 */
static void json_text(sqlite3_context *ctx, int argc, sqlite3_value **argv) {
  Buf b = {0};
  if (!json_object_of(&b, argc, argv)) {
    free(b.p);
    result_uncertain(ctx);
    return;
  }
  sqlite3_result_text(ctx, b.p, (int)b.n, free);
}

/* rl_json_sha256(key1, value1, ...): lowercase hex sha256 of rl_json_text's text (uncertain as it is). */
static void json_sha256(sqlite3_context *ctx, int argc, sqlite3_value **argv) {
  Buf b = {0};
  if (!json_object_of(&b, argc, argv)) {
    free(b.p);
    result_uncertain(ctx);
    return;
  }
  unsigned char h[32];
  char hex[64];
  sha256(b.p, b.n, h);
  free(b.p);
  to_hex(h, hex);
  sqlite3_result_text(ctx, hex, 64, SQLITE_TRANSIENT);
}

/* rl_text_sha256(v): records.ts sha256Hex(v) of a TEXT of valid UTF-8 (its UTF-8 bytes); NULL for NULL; else uncertain. */
static void text_sha256(sqlite3_context *ctx, int argc, sqlite3_value **argv) {
  (void)argc;
  int type = sqlite3_value_type(argv[0]);
  if (type == SQLITE_NULL) return;
  const unsigned char *t = type == SQLITE_TEXT ? sqlite3_value_text(argv[0]) : NULL;
  int n = sqlite3_value_bytes(argv[0]);
  if (!t || !valid_utf8(t, n)) {
    result_uncertain(ctx);
    return;
  }
  unsigned char h[32];
  char hex[64];
  sha256(t, (size_t)n, h);
  to_hex(h, hex);
  sqlite3_result_text(ctx, hex, 64, SQLITE_TRANSIENT);
}

/*
 * rl_json_array(element, id) aggregate: `[e1,e2,...]` of TEXT elements, "[]" for none, when SQLite feeds them in
 * strictly increasing INTEGER id order (the order the caller's array is sorted in; an index scan gives it without a
 * sort, and any other order is not taken on trust); uncertain when an element is not TEXT or the ids are not so.
 */
typedef struct {
  int started, bad;
  sqlite3_int64 last_id;
  Buf out;
} JsonArray;

static void json_array_step(sqlite3_context *ctx, int argc, sqlite3_value **argv) {
  (void)argc;
  JsonArray *a = sqlite3_aggregate_context(ctx, sizeof *a);
  if (!a) {
    sqlite3_result_error_nomem(ctx);
    return;
  }
  if (a->bad) return;
  if (sqlite3_value_type(argv[0]) != SQLITE_TEXT || sqlite3_value_type(argv[1]) != SQLITE_INTEGER ||
      (a->started && sqlite3_value_int64(argv[1]) <= a->last_id)) {
    a->bad = 1;
    return;
  }
  a->last_id = sqlite3_value_int64(argv[1]);
  buf_add(&a->out, a->started ? "," : "[", 1);
  a->started = 1;
  buf_add(&a->out, sqlite3_value_text(argv[0]), (size_t)sqlite3_value_bytes(argv[0]));
}

static void json_array_final(sqlite3_context *ctx) {
  JsonArray *a = sqlite3_aggregate_context(ctx, 0);
  if (!a || !a->started) {
    if (a && a->bad) result_uncertain(ctx);
    else sqlite3_result_text(ctx, "[]", 2, SQLITE_STATIC);
    if (a) free(a->out.p);
    return;
  }
  buf_add(&a->out, "]", 1);
  if (a->bad || a->out.oom || a->out.n > 0x7fffffff) {
    free(a->out.p);
    result_uncertain(ctx);
    return;
  }
  sqlite3_result_text(ctx, a->out.p, (int)a->out.n, free);
}

/* ---------- Metric series (check-metrics-native.ts: a run's points digested and summarised inside SQLite) ---------- */

/*
 * The correctly rounded k-digit significand of a double, from its correctly rounded 17 digits d17 (k < 17), into
 * out; *exp10 is raised by one when rounding carries into a new digit. 0 when the 17 digits cannot decide (the
 * dropped digits are exactly a half: the double may lie on either side of it), then printf must round.
 */
static int round_digits(const char *d17, int k, char *out, int *exp10) {
  memcpy(out, d17, (size_t)k);
  int up;
  if (d17[k] != '5') up = d17[k] > '5';
  else {
    up = -1;
    for (int i = k + 1; i < 17; i++)
      if (d17[i] != '0') up = 1;
    if (up < 0) return 0;
  }
  if (up) {
    int i = k - 1;
    while (i >= 0 && out[i] == '9') out[i--] = '0';
    if (i >= 0) out[i]++;
    else {
      out[0] = '1'; /* 99..9 rounded up: 10..0, one more digit before the point */
      (*exp10)++;
    }
  }
  return 1;
}

/* Whether the decimal digits[0..k) * 10^(exp10 - k + 1) (sign neg) reads back as exactly d (strtod rounds to nearest). */
static int reads_back(int neg, const char *digits, int k, int exp10, double d) {
  char t[48];
  int w = 0;
  if (neg) t[w++] = '-';
  t[w++] = digits[0];
  t[w++] = '.';
  memcpy(t + w, digits + 1, (size_t)(k - 1)), w += k - 1;
  w += snprintf(t + w, sizeof t - (size_t)w, "e%d", exp10);
  return strtod(t, NULL) == d;
}

/* 10^0 .. 10^22: every one exactly a double. */
static const double POW10[23] = {1e0,  1e1,  1e2,  1e3,  1e4,  1e5,  1e6,  1e7,  1e8,  1e9,  1e10, 1e11,
                                 1e12, 1e13, 1e14, 1e15, 1e16, 1e17, 1e18, 1e19, 1e20, 1e21, 1e22};

/*
 * js_number's answer without printf or strtod for a double that some decimal of at most 15 significant digits
 * denotes (most recorded metrics: 0.25, 0.006, 12.5), 1e-7 <= |d| < 1e15; 0 when it finds none (js_number then
 * decides as before). For p = 0, 1, ... it takes the integer s nearest |d| * 10^p and accepts s * 10^-p when
 * s / 10^p == |d|: s < 10^15 < 2^53 and 10^p (p <= 22) are exact doubles, so that IEEE division is the correctly
 * rounded value of the decimal s * 10^-p, which is what strtod reads from it (Clinger's fast path): the decimal
 * reads back as d. No two decimals of at most 15 digits denote the same double in this range (their spacing exceeds
 * a double's), so it is the only such decimal, the one ECMAScript prints with its trailing zeros dropped. The first
 * p that works is found: |d| * 10^p is within 0.25 of that integer (two roundings of 2^-53 relative, s < 10^15).
 */
static int js_number_short(Buf *b, double d) {
  double a = fabs(d);
  if (!(a >= 1e-7 && a < 1e15)) return 0;
  for (int p = 0; p <= 22; p++) {
    double x = a * POW10[p];
    if (x >= 1e15) return 0;
    double s = nearbyint(x);
    if (s < 1 || s / POW10[p] != a) continue;
    char digits[20];
    unsigned long long u = (unsigned long long)s;
    int k = 0;
    char rev[20];
    while (u > 0) rev[k++] = (char)('0' + (u % 10)), u /= 10;
    for (int i = 0; i < k; i++) digits[i] = rev[k - 1 - i];
    int zeros = 0;
    while (k > 1 && digits[k - 1] == '0') k--, zeros++;
    /* value = digits * 10^(zeros - p) = 0.digits * 10^(k + zeros - p) */
    char out[64];
    int w = js_layout(d < 0, digits, k, k + zeros - p, out);
    buf_add(b, out, (size_t)w);
    return 1;
  }
  return 0;
}

typedef unsigned __int128 u128;

/* 10^0 .. 10^23 as 128-bit integers. */
#define E19 ((u128)10000000000000000000ULL)
static const u128 POW10_U128[24] = {1ULL,
                                    10ULL,
                                    100ULL,
                                    1000ULL,
                                    10000ULL,
                                    100000ULL,
                                    1000000ULL,
                                    10000000ULL,
                                    100000000ULL,
                                    1000000000ULL,
                                    10000000000ULL,
                                    100000000000ULL,
                                    1000000000000ULL,
                                    10000000000000ULL,
                                    100000000000000ULL,
                                    1000000000000000ULL,
                                    10000000000000000ULL,
                                    100000000000000000ULL,
                                    1000000000000000000ULL,
                                    E19,
                                    E19 * 10,
                                    E19 * 100,
                                    E19 * 1000,
                                    E19 * 10000};
#undef E19

/*
 * The k-digit decimal nearest to a (k = 16 or 17; 1e-5 <= a < 1e15, not of the form 2^j, which js_number leaves to
 * JavaScript) when it reads back as a: its digits into `digits` (k of them) and *p, value = digits * 10^-p. Returns
 * 1 when it reads back, 0 when it does not, -1 when not certain (a tie). Exact integer arithmetic: a = M * 2^-sh
 * (M < 2^53, 3 <= sh <= 69), N = M * 10^p < 2^127, s = N / 2^sh rounded to nearest; s * 10^-p reads back as a
 * exactly when it lies within half a unit in the last place of a, i.e. 2 * |s * 2^sh - N| < 10^p (equality is a
 * tie strtod breaks to even: not certain).
 */
static int nearest_digits(double a, int k, char *digits, int *p_out) {
  int e2;
  double f = frexp(a, &e2);
  u128 m = (u128)(unsigned long long)ldexp(f, 53);
  int sh = 53 - e2;
  if (sh < 1 || sh > 69) return -1;
  int p = k - 1 - (int)floor(log10(a));
  u128 lo = POW10_U128[k - 1], hi = POW10_U128[k];
  for (int tries = 0; tries < 4; tries++) {
    if (p < 0 || p > 22) return -1;
    u128 n = m * POW10_U128[p];
    u128 s = n >> sh;
    u128 rest = n - (s << sh), half = (u128)1 << (sh - 1);
    if (rest > half) s++;
    else if (rest == half) return -1; /* two decimals as near: ECMAScript would take the even one */
    if (s >= hi) {
      p--;
      continue;
    }
    if (s < lo) {
      p++;
      continue;
    }
    u128 scaled = s << sh;
    u128 diff = scaled > n ? scaled - n : n - scaled;
    u128 limit = POW10_U128[p];
    if (2 * diff == limit) return -1;
    for (int i = k - 1; i >= 0; i--, s /= 10) digits[i] = (char)('0' + (int)(s % 10));
    *p_out = p;
    return 2 * diff < limit ? 1 : 0;
  }
  return -1;
}

/*
 * js_number's answer for 1e-5 <= |d| < 1e15 without printf or strtod: a decimal of at most 15 digits
 * (js_number_short), else the nearest 16-digit decimal when it reads back, else the nearest 17-digit one (which
 * always does): the fewest digits, and of those the nearest, as ECMAScript requires. 0 when not certain.
 */
static int js_number_exact(Buf *b, double d) {
  double a = fabs(d);
  if (js_number_short(b, d)) return 1;
  if (!(a >= 1e-5 && a < 1e15)) return 0;
  int e2;
  if (frexp(a, &e2) == 0.5) return 0; /* a power of two: its lower neighbour is nearer (see js_number) */
  char digits[17];
  int p = 0, k = 16;
  int r = nearest_digits(a, 16, digits, &p);
  if (r < 0) return 0;
  if (r == 0) {
    k = 17;
    if (nearest_digits(a, 17, digits, &p) != 1) return 0;
  }
  int n = k - p; /* value = 0.digits * 10^n */
  while (k > 1 && digits[k - 1] == '0') k--;
  char out[64];
  int w = js_layout(d < 0, digits, k, n, out);
  buf_add(b, out, (size_t)w);
  return 1;
}

/*
 * ECMAScript's Number::toString(d) appended to b (what `${d}` prints for the double better-sqlite3 reads); 0 when
 * not certain. Integral values below 2^53 print as their digits (-0 as "0", as JavaScript prints it). Any other
 * finite double between 1e-299 and 1e299: the fewest digits k (15, 16 or 17; no two decimals of at most 15 digits
 * denote the same double there) of the correctly rounded decimal that reads back as d, which is then both the
 * shortest and the nearest of the shortest, as ECMAScript requires, laid out as ECMAScript lays it out. A double
 * whose significand is a power of two needing more than 15 digits is left to JavaScript (its rounding interval is
 * uneven, so a farther decimal may be shorter). Between 1e-5 and 1e15 (recorded metrics) js_number_exact finds the
 * same digits with integer arithmetic; elsewhere printf and strtod decide (a metric series' points cost 0.60 s with
 * them alone on the million-event bench ledger, 0.37 s now). tests/native-metrics.test.ts compares it with
 * JavaScript's String() on 360k doubles, and the exact path on 500k more.
 */
static int js_number(Buf *b, double d) {
  if (!isfinite(d)) return 0;
  if (d == 0) {
    buf_add(b, "0", 1);
    return 1;
  }
  if (fabs(d) < 9007199254740992.0 && d == floor(d)) {
    buf_i64(b, (sqlite3_int64)d);
    return 1;
  }
  /* Far from 1 (subnormals: fewer significant bits) decimals of up to 15 digits are no longer unique: JavaScript decides. */
  if (fabs(d) < 1e-299 || fabs(d) >= 1e299) return 0;
  if (js_number_exact(b, d)) return 1;
  char t[48];
  snprintf(t, sizeof t, "%.16e", d); /* "[-]D.DDDDDDDDDDDDDDDDe±X": 17 correctly rounded digits */
  int neg = t[0] == '-';
  const char *m = t + neg;
  char d17[17], digits[17];
  d17[0] = m[0];
  memcpy(d17 + 1, m + 2, 16);
  int exp10 = atoi(m + 19);
  int k = 17, e = exp10;
  for (int want = 15; want <= 16; want++) {
    int ew = exp10;
    if (!round_digits(d17, want, digits, &ew)) {
      char u[48];
      snprintf(u, sizeof u, "%.*e", want - 1, fabs(d));
      digits[0] = u[0];
      memcpy(digits + 1, u + 2, (size_t)(want - 1));
      ew = atoi(u + want + 2);
    }
    if (reads_back(neg, digits, want, ew, d)) {
      k = want, e = ew;
      break;
    }
  }
  if (k == 17) memcpy(digits, d17, 17);
  if (k > 15) {
    int e2;
    if (frexp(fabs(d), &e2) == 0.5) return 0;
  }
  while (k > 1 && digits[k - 1] == '0') k--;
  char out[64];
  int w = js_layout(neg, digits, k, e + 1, out);
  buf_add(b, out, (size_t)w);
  return 1;
}

/* rl_js_number(x): js_number's text of the number JavaScript reads from x (number_of); uncertain otherwise. For tests. */
static int number_of(sqlite3_value *v, double *out);
static void js_number_sql(sqlite3_context *ctx, int argc, sqlite3_value **argv) {
  (void)argc;
  double d;
  Buf b = {0};
  if (!number_of(argv[0], &d) || !js_number(&b, d) || b.oom) {
    free(b.p);
    result_uncertain(ctx);
    return;
  }
  sqlite3_result_text(ctx, b.p, (int)b.n, free);
}

/* The number JavaScript reads from v (a REAL, or a safe INTEGER: better-sqlite3 reads INTEGER as a double); 0 otherwise. */
static int number_of(sqlite3_value *v, double *out) {
  int type = sqlite3_value_type(v);
  if (type == SQLITE_FLOAT) {
    *out = sqlite3_value_double(v);
    return isfinite(*out);
  }
  if (type != SQLITE_INTEGER) return 0;
  sqlite3_int64 x = sqlite3_value_int64(v);
  if (x > 9007199254740991LL || x < -9007199254740991LL) return 0;
  *out = (double)x;
  return 1;
}

/* A double's bits in hex: the summaries' comparison text (equal text = the same double; -0 and 0 differ, so a
   row JavaScript would find equal may be sent to JavaScript, never the reverse). */
static void add_bits(Buf *b, double d) {
  unsigned long long u;
  memcpy(&u, &d, sizeof u);
  char t[16];
  for (int i = 15; i >= 0; i--, u >>= 4) t[i] = HEX[u & 15];
  buf_add(b, t, 16);
}

/* The lowercase hex sha256 of t's bytes, appended to b (the comparison texts reach JavaScript as their digests). */
static void add_text_sha256(Buf *b, const Buf *t) {
  unsigned char h[32];
  char hex[64];
  sha256(t->p ? t->p : "", t->n, h);
  to_hex(h, hex);
  buf_add(b, hex, 64);
}

/* A key as the summaries' comparison text names it: quote_string's text, ":" (0 when not TEXT of valid UTF-8). */
static int add_key(Buf *b, sqlite3_value *key) {
  if (!quote_text_value(b, key)) return 0;
  buf_add(b, ":", 1);
  return 1;
}

/*
 * rl_metric_points(key, step, value, epoch) aggregate, fed one run's metrics rows in (key, step) order (the
 * primary key's): what records.ts MetricDigest computes from them, as the text
 *   points sha256 hex "\n" points "\n" finals "\n" summaries "\n" rollups "\n" keys "\n" blocks
 * where the sha256 is metricPointsSha256 (over `[{"epoch":E,"key":K,"step":S,"value":V},...]`, numbers as
 * JavaScript prints them), finals is `{"key":last,...}` (for JSON.parse: texts of the exact doubles), summaries and
 * rollups the sha256 hex of the comparison texts (add_bits) that rl_metric_summary_rows and rl_metric_rollup_rows
 * digest from their tables, keys and blocks how many rows those tables should hold. Uncertain (the run goes to
 * JavaScript) when a value is not a finite number JavaScript reads exactly, a key is not TEXT of valid UTF-8, keys do
 * not come in strictly increasing byte order, or steps do not increase within a key.
 */
#define METRIC_ROLLUP_BLOCK 1024.0
typedef struct {
  double first_step, last_step, min_step, min_value, max_step, max_value, index;
} MetricBlockState;

typedef struct {
  int bad, started;
  sqlite3_int64 points, keys, blocks;
  SHA256_CTX sha;
  Buf text, key, finals, summaries, rollups, key_text;
  double last, last_step, min, max;
  int has_block;
  MetricBlockState block;
} MetricPoints;

static void metric_flush_block(MetricPoints *m) {
  if (!m->has_block) return;
  MetricBlockState *b = &m->block;
  buf_add(&m->rollups, m->key_text.p, m->key_text.n);
  add_bits(&m->rollups, b->index);
  add_bits(&m->rollups, b->first_step);
  add_bits(&m->rollups, b->last_step);
  add_bits(&m->rollups, b->min_step);
  add_bits(&m->rollups, b->min_value);
  add_bits(&m->rollups, b->max_step);
  add_bits(&m->rollups, b->max_value);
  buf_add(&m->rollups, ";", 1);
  m->blocks++;
  m->has_block = 0;
}

static void metric_flush_key(MetricPoints *m) {
  if (m->key.n == 0 && m->keys == 0) return;
  metric_flush_block(m);
  buf_add(&m->summaries, m->key_text.p, m->key_text.n);
  add_bits(&m->summaries, m->last);
  add_bits(&m->summaries, m->last_step);
  add_bits(&m->summaries, m->min);
  add_bits(&m->summaries, m->max);
  buf_add(&m->summaries, ";", 1);
  if (m->finals.n > 1) buf_add(&m->finals, ",", 1);
  quote_string(&m->finals, (const unsigned char *)m->key.p, (int)m->key.n);
  buf_add(&m->finals, ":", 1);
  /* What JavaScript prints (js_number adds nothing when not certain), else all 17 digits: JSON.parse reads the
     same double from either (-0 prints as 0 then, which the finals' comparison, ===, does not tell apart). */
  if (!js_number(&m->finals, m->last)) {
    char t[40];
    int n = snprintf(t, sizeof t, "%.17g", m->last);
    buf_add(&m->finals, t, (size_t)n);
  }
}

static void metric_points_step(sqlite3_context *ctx, int argc, sqlite3_value **argv) {
  (void)argc;
  MetricPoints *m = sqlite3_aggregate_context(ctx, sizeof *m);
  if (!m) {
    sqlite3_result_error_nomem(ctx);
    return;
  }
  if (m->bad) return;
  if (!m->started) {
    m->started = 1;
    SHA256_Init(&m->sha);
    buf_add(&m->text, "[", 1);
    buf_add(&m->finals, "{", 1);
  }
  double step, value, epoch;
  if (sqlite3_value_type(argv[0]) != SQLITE_TEXT || !number_of(argv[1], &step) || !number_of(argv[2], &value) ||
      !number_of(argv[3], &epoch)) {
    m->bad = 1;
    return;
  }
  const unsigned char *key = sqlite3_value_text(argv[0]);
  int klen = sqlite3_value_bytes(argv[0]);
  if (!key) {
    m->bad = 1;
    return;
  }
  int same_key = m->points > 0 && (size_t)klen == m->key.n && memcmp(key, m->key.p, (size_t)klen) == 0;
  if (!same_key) {
    if (m->points > 0) {
      /* strictly increasing keys (byte order = the index's BINARY order), so each key's points are contiguous */
      size_t common = (size_t)klen < m->key.n ? (size_t)klen : m->key.n;
      int c = memcmp(key, m->key.p, common);
      if (c < 0 || (c == 0 && (size_t)klen <= m->key.n)) {
        m->bad = 1;
        return;
      }
      metric_flush_key(m);
    }
    m->keys++;
    m->key.n = 0;
    buf_add(&m->key, key, (size_t)klen);
    m->key_text.n = 0;
    if (!add_key(&m->key_text, argv[0])) {
      m->bad = 1;
      return;
    }
    m->last = value, m->last_step = step, m->min = value, m->max = value;
  } else {
    if (!(step > m->last_step)) {
      m->bad = 1; /* steps increase within a key (the primary key's order) */
      return;
    }
    m->last = value, m->last_step = step;
    if (value < m->min) m->min = value;
    if (value > m->max) m->max = value;
  }
  /* the point's text, as MetricDigest.add writes it */
  if (m->points > 0) buf_add(&m->text, ",", 1);
  buf_add(&m->text, "{\"epoch\":", 9);
  int ok = js_number(&m->text, epoch);
  buf_add(&m->text, ",\"key\":", 7);
  buf_add(&m->text, m->key_text.p, m->key_text.n - 1); /* without its ":" */
  buf_add(&m->text, ",\"step\":", 8);
  ok = ok && js_number(&m->text, step);
  buf_add(&m->text, ",\"value\":", 9);
  ok = ok && js_number(&m->text, value);
  buf_add(&m->text, "}", 1);
  if (!ok || m->text.oom) {
    m->bad = 1;
    return;
  }
  m->points++;
  if (m->text.n >= 65536) {
    SHA256_Update(&m->sha, m->text.p, m->text.n);
    m->text.n = 0;
  }
  /* the rollup block (MetricDigest: Math.floor(step / 1024)); steps increase, so blocks do */
  double index = floor(step / METRIC_ROLLUP_BLOCK);
  MetricBlockState *b = &m->block;
  if (!m->has_block || !same_key || index != b->index) {
    if (m->has_block && same_key && !(index > b->index)) {
      m->bad = 1;
      return;
    }
    if (same_key) metric_flush_block(m);
    m->has_block = 1;
    b->index = index;
    b->first_step = b->last_step = b->min_step = b->max_step = step;
    b->min_value = b->max_value = value;
  } else {
    b->last_step = step;
    if (value < b->min_value) b->min_value = value, b->min_step = step;
    if (value > b->max_value) b->max_value = value, b->max_step = step;
  }
}

static void metric_points_free(MetricPoints *m) {
  free(m->text.p);
  free(m->key.p);
  free(m->finals.p);
  free(m->summaries.p);
  free(m->rollups.p);
  free(m->key_text.p);
}

static void metric_points_final(sqlite3_context *ctx) {
  MetricPoints *m = sqlite3_aggregate_context(ctx, 0);
  if (!m || !m->started) {
    result_uncertain(ctx);
    if (m) metric_points_free(m);
    return;
  }
  Buf out = {0};
  if (!m->bad) {
    metric_flush_key(m);
    buf_add(&m->text, "]", 1);
    buf_add(&m->finals, "}", 1);
    unsigned char h[32];
    char hex[64];
    SHA256_Update(&m->sha, m->text.p, m->text.n);
    SHA256_Final(h, &m->sha);
    to_hex(h, hex);
    buf_add(&out, hex, 64);
    buf_add(&out, "\n", 1);
    buf_i64(&out, m->points);
    buf_add(&out, "\n", 1);
    buf_add(&out, m->finals.p, m->finals.n);
    buf_add(&out, "\n", 1);
    add_text_sha256(&out, &m->summaries);
    buf_add(&out, "\n", 1);
    add_text_sha256(&out, &m->rollups);
    buf_add(&out, "\n", 1);
    buf_i64(&out, m->keys);
    buf_add(&out, "\n", 1);
    buf_i64(&out, m->blocks);
  }
  int bad = m->bad || m->text.oom || m->finals.oom || m->summaries.oom || m->rollups.oom || out.oom || out.n > 0x7fffffff;
  metric_points_free(m);
  if (bad) {
    free(out.p);
    result_uncertain(ctx);
    return;
  }
  sqlite3_result_text(ctx, out.p, (int)out.n, free);
}

/*
 * rl_metric_summary_rows(key, last, last_step, min, max) and rl_metric_rollup_rows(key, block, first_step,
 * last_step, min_step, min_value, max_step, max_value) aggregates, fed one run's metric_summaries or metric_rollups
 * rows in primary key order: the sha256 hex of the comparison text rl_metric_points builds from the points, so equal
 * digests mean every row holds exactly what the points give and no row is missing or extra. Uncertain when a value
 * is not a number JavaScript reads exactly or a key is not TEXT of valid UTF-8.
 */
typedef struct {
  int bad;
  Buf out;
} MetricRows;

static void metric_rows_step(sqlite3_context *ctx, int argc, sqlite3_value **argv) {
  MetricRows *r = sqlite3_aggregate_context(ctx, sizeof *r);
  if (!r) {
    sqlite3_result_error_nomem(ctx);
    return;
  }
  if (r->bad) return;
  if (!add_key(&r->out, argv[0])) {
    r->bad = 1;
    return;
  }
  for (int i = 1; i < argc; i++) {
    double d;
    if (!number_of(argv[i], &d)) {
      r->bad = 1;
      return;
    }
    add_bits(&r->out, d);
  }
  buf_add(&r->out, ";", 1);
}

static void metric_rows_final(sqlite3_context *ctx) {
  MetricRows *r = sqlite3_aggregate_context(ctx, 0);
  if (!r || r->bad || r->out.oom || r->out.n > 0x7fffffff) {
    if (r) free(r->out.p);
    result_uncertain(ctx);
    return;
  }
  Buf hex = {0};
  add_text_sha256(&hex, &r->out);
  free(r->out.p);
  if (hex.oom) {
    free(hex.p);
    result_uncertain(ctx);
    return;
  }
  sqlite3_result_text(ctx, hex.p, (int)hex.n, free);
}

/*
 * The summary and rollup rows' digests compared inside SQLite, so their 2 x 124k per-run rows of the million-event
 * ledger are not handed to JavaScript (check-metrics-native.ts):
 *   rl_metric_rows_keep(kind, run_id, digest) keeps rl_metric_summary_rows' (kind 0) or rl_metric_rollup_rows'
 *     (kind 1) digest of a run, fed in increasing run id order; returns 1. An uncertain digest (not 64 bytes of
 *     TEXT) is not kept, nor one under a run id that is not an INTEGER (checkMetrics compares no row under it
 *     either); a run id not above the last one makes the kind's whole set unusable (every run then differs here,
 *     and JavaScript decides).
 *   rl_metric_points_checked(run_id, points) rewrites rl_metric_points' text of the run as
 *     points sha256 "\n" points "\n" finals "\n" rows "\n" keys "\n" blocks
 *     where rows is 1 when both digests the points call for equal the kept digests of the run's rows, else 0
 *     (none kept, uncertain, or different); anything but such a text is returned as it is.
 *   rl_metric_rows_release() forgets what was kept.
 * Invariant: rows is 1 only when JavaScript's comparison of the two digests (runPassesInSqlite) would pass.
 */
typedef struct {
  sqlite3_int64 run_id;
  char hex[64];
} KeptDigest;

typedef struct {
  KeptDigest *d;
  size_t n, cap;
  sqlite3_int64 last; /* the last INTEGER run id fed (kept or not) */
  int fed, unusable;
} KeptDigests;

typedef struct {
  KeptDigests kind[2];
} MetricRowsKept; /* one per connection (the functions' user data) */

static void metric_rows_forget(MetricRowsKept *k) {
  for (int i = 0; i < 2; i++) {
    free(k->kind[i].d);
    k->kind[i] = (KeptDigests){0};
  }
}

static void metric_rows_keep(sqlite3_context *ctx, int argc, sqlite3_value **argv) {
  (void)argc;
  MetricRowsKept *k = sqlite3_user_data(ctx);
  sqlite3_int64 kind = sqlite3_value_int64(argv[0]);
  sqlite3_result_int(ctx, 1);
  if (kind != 0 && kind != 1) return;
  KeptDigests *set = &k->kind[kind];
  if (set->unusable || sqlite3_value_type(argv[1]) != SQLITE_INTEGER) return;
  sqlite3_int64 run_id = sqlite3_value_int64(argv[1]);
  if (set->fed && run_id <= set->last) {
    set->unusable = 1;
    return;
  }
  set->fed = 1, set->last = run_id;
  if (sqlite3_value_type(argv[2]) != SQLITE_TEXT || sqlite3_value_bytes(argv[2]) != 64) return;
  if (set->n == set->cap) {
    size_t cap = set->cap ? set->cap * 2 : 1024;
    KeptDigest *d = realloc(set->d, cap * sizeof *d);
    if (!d) {
      set->unusable = 1;
      return;
    }
    set->d = d, set->cap = cap;
  }
  KeptDigest *e = &set->d[set->n++];
  e->run_id = run_id;
  memcpy(e->hex, sqlite3_value_text(argv[2]), 64);
}

/* 1 when the kind's kept digest of run_id is equal to the 64 bytes at hex. */
static int kept_digest_is(const KeptDigests *set, sqlite3_int64 run_id, const char *hex) {
  if (set->unusable) return 0;
  size_t lo = 0, hi = set->n;
  while (lo < hi) {
    size_t mid = lo + (hi - lo) / 2;
    if (set->d[mid].run_id < run_id) lo = mid + 1;
    else hi = mid;
  }
  return lo < set->n && set->d[lo].run_id == run_id && memcmp(set->d[lo].hex, hex, 64) == 0;
}

static void metric_points_checked(sqlite3_context *ctx, int argc, sqlite3_value **argv) {
  (void)argc;
  const MetricRowsKept *k = sqlite3_user_data(ctx);
  if (sqlite3_value_type(argv[1]) != SQLITE_TEXT) {
    sqlite3_result_value(ctx, argv[1]);
    return;
  }
  const char *t = (const char *)sqlite3_value_text(argv[1]);
  int n = sqlite3_value_bytes(argv[1]);
  const char *line[7];
  int len[7], at = 0;
  for (int i = 0; i < 7; i++) {
    const char *nl = i < 6 && t ? memchr(t + at, '\n', (size_t)(n - at)) : NULL;
    if (!t || (i < 6 && !nl)) {
      sqlite3_result_value(ctx, argv[1]);
      return;
    }
    line[i] = t + at;
    len[i] = i < 6 ? (int)(nl - (t + at)) : n - at;
    at += len[i] + 1;
  }
  int rows = sqlite3_value_type(argv[0]) == SQLITE_INTEGER && len[3] == 64 && len[4] == 64 &&
             kept_digest_is(&k->kind[0], sqlite3_value_int64(argv[0]), line[3]) &&
             kept_digest_is(&k->kind[1], sqlite3_value_int64(argv[0]), line[4]);
  Buf out = {0};
  for (int i = 0; i < 7; i++) {
    if (i == 4) continue;
    if (i) buf_add(&out, "\n", 1);
    if (i == 3) buf_add(&out, rows ? "1" : "0", 1);
    else buf_add(&out, line[i], (size_t)len[i]);
  }
  if (out.oom) {
    free(out.p);
    sqlite3_result_error_nomem(ctx);
    return;
  }
  sqlite3_result_text(ctx, out.p, (int)out.n, free);
}

static void metric_rows_release(sqlite3_context *ctx, int argc, sqlite3_value **argv) {
  (void)argc, (void)argv;
  metric_rows_forget(sqlite3_user_data(ctx));
  sqlite3_result_null(ctx);
}

static void metric_rows_kept_free(void *p) {
  metric_rows_forget(p);
  free(p);
}

/*
 * rl_run_config_params(config_json, seed, framed): the number of run_params rows a run's config calls for, when
 * `framed` (rl_run_params_framed of the run's rows) holds exactly those rows (check-run-params-json.ts
 * frameRunParams' bytes for the parsed config) and `seed` is what the config gives (training.seed, or NULL without
 * one). The content worker then counts the run's facts without parsing its config in JavaScript. NULL when
 * JavaScript must decide (it parses the config and compares as before, naming every difference): any difference,
 * `framed` not a BLOB, and any config this parser is not certain JSON.parse and flattenConfig read the same way:
 * not strict RFC 8259 JSON; a key that is empty, "__proto__", holds a '.', a backslash or a byte outside printable
 * ASCII, or repeats in its object; a string that is not valid UTF-8 or holds a lone surrogate; a root that is not a
 * non-empty object, or whose only key is "api" (the tracking API's config); a training.seed that is neither a
 * number nor null; more than 64 levels, 64 keys in an object or 4096 leaves.
 *
 * Why the rest reads as JavaScript reads it: with such keys flattenConfig's paths are distinct, and sort as UTF-16
 * code units sort ASCII (byte order, as the (run_id, key) index orders the rows); JSON.parse and strtod both round a
 * number token to the nearest double (the whole token must be consumed, so a locale's decimal separator can only
 * send the run to JavaScript); a string's escapes decode to the UTF-8 of the UTF-16 text JavaScript would frame.
 */
#define CFG_MAX_DEPTH 64
#define CFG_MAX_KEYS 64
#define CFG_MAX_LEAVES 4096

typedef struct {
  size_t path, path_len, val, val_len;
} CfgLeaf;

typedef struct {
  const unsigned char *end;
  Buf path;  /* the current path */
  Buf paths; /* every leaf's path */
  Buf vals;  /* every leaf's framed value: its text part, then its number part */
  CfgLeaf leaves[CFG_MAX_LEAVES];
  int order[CFG_MAX_LEAVES];
  int n, depth, root_keys, root_api;
  /* rl_run_params_collect's result (see there): every run's framed rows, by run id */
  Buf frames;
  struct CollectedRun *runs;
  size_t nruns, cap;
} Cfg; /* one per connection (the functions' user data): the walk's state reset for each call, the collection kept until released */

static const unsigned char *cfg_ws(const unsigned char *p, const unsigned char *end) {
  while (p < end && (*p == ' ' || *p == '\t' || *p == '\n' || *p == '\r')) p++;
  return p;
}

static void cfg_u32(Buf *b, size_t at, size_t n) {
  if (b->oom) return;
  unsigned char *h = (unsigned char *)b->p + at;
  h[0] = (unsigned char)(n >> 24), h[1] = (unsigned char)(n >> 16), h[2] = (unsigned char)(n >> 8), h[3] = (unsigned char)n;
}

/* Starts a leaf at the current path; its value bytes follow in c->vals. 0 when there are too many. */
static int cfg_leaf(Cfg *c) {
  if (c->n >= CFG_MAX_LEAVES) return 0;
  CfgLeaf *l = &c->leaves[c->n++];
  l->path = c->paths.n;
  l->path_len = c->path.n;
  buf_add(&c->paths, c->path.p ? c->path.p : "", c->path.n);
  l->val = c->vals.n;
  return 1;
}
static void cfg_leaf_end(Cfg *c) { c->leaves[c->n - 1].val_len = c->vals.n - c->leaves[c->n - 1].val; }

/* A leaf whose value is the text t (length n) and the number `num` (NULL when has_num is 0). */
static int cfg_leaf_text(Cfg *c, const char *t, size_t n, int has_num, double num) {
  if (!cfg_leaf(c)) return 0;
  unsigned char h[5] = {'t', 0, 0, 0, 0};
  buf_add(&c->vals, h, 5);
  cfg_u32(&c->vals, c->vals.n - 4, n);
  buf_add(&c->vals, t, n);
  if (!has_num) buf_add(&c->vals, "n", 1);
  else {
    unsigned long long bits;
    memcpy(&bits, &num, 8);
    unsigned char d[9] = {'d'};
    for (int i = 0; i < 8; i++) d[1 + i] = (unsigned char)(bits >> (56 - 8 * i));
    buf_add(&c->vals, d, 9);
  }
  cfg_leaf_end(c);
  return 1;
}

static int cfg_hex4(const unsigned char *p, const unsigned char *end, unsigned *out) {
  if (end - p < 4) return 0;
  unsigned v = 0;
  for (int i = 0; i < 4; i++) {
    unsigned h = p[i];
    int d = h >= '0' && h <= '9' ? (int)(h - '0') : h >= 'a' && h <= 'f' ? (int)(h - 'a' + 10) : h >= 'A' && h <= 'F' ? (int)(h - 'A' + 10) : -1;
    if (d < 0) return 0;
    v = v << 4 | (unsigned)d;
  }
  *out = v;
  return 1;
}

static void cfg_utf8(Buf *b, unsigned cp) {
  unsigned char u[4];
  size_t n;
  if (cp < 0x80) u[0] = (unsigned char)cp, n = 1;
  else if (cp < 0x800) u[0] = (unsigned char)(0xc0 | cp >> 6), u[1] = (unsigned char)(0x80 | (cp & 0x3f)), n = 2;
  else if (cp < 0x10000)
    u[0] = (unsigned char)(0xe0 | cp >> 12), u[1] = (unsigned char)(0x80 | ((cp >> 6) & 0x3f)), u[2] = (unsigned char)(0x80 | (cp & 0x3f)), n = 3;
  else
    u[0] = (unsigned char)(0xf0 | cp >> 18), u[1] = (unsigned char)(0x80 | ((cp >> 12) & 0x3f)), u[2] = (unsigned char)(0x80 | ((cp >> 6) & 0x3f)),
    u[3] = (unsigned char)(0x80 | (cp & 0x3f)), n = 4;
  buf_add(b, u, n);
}

/* A string leaf: the token at p (a quote) decoded into a text frame. The index after it, or NULL. */
static const unsigned char *cfg_string_leaf(Cfg *c, const unsigned char *p) {
  const unsigned char *end = c->end;
  if (!cfg_leaf(c)) return NULL;
  Buf *b = &c->vals;
  unsigned char h[5] = {'t', 0, 0, 0, 0};
  buf_add(b, h, 5);
  size_t start = b->n;
  for (p++; p < end; p++) {
    unsigned ch = *p;
    if (ch == '"') {
      cfg_u32(b, start - 4, b->n - start);
      buf_add(b, "n", 1);
      cfg_leaf_end(c);
      return p + 1;
    }
    if (ch < 0x20) return NULL;
    if (ch == '\\') {
      if (++p >= end) return NULL;
      char e;
      switch (*p) {
        case '"': e = '"'; break;
        case '\\': e = '\\'; break;
        case '/': e = '/'; break;
        case 'b': e = '\b'; break;
        case 'f': e = '\f'; break;
        case 'n': e = '\n'; break;
        case 'r': e = '\r'; break;
        case 't': e = '\t'; break;
        case 'u': {
          unsigned cp, lo;
          if (!cfg_hex4(p + 1, end, &cp)) return NULL;
          p += 4;
          if (cp >= 0xdc00 && cp <= 0xdfff) return NULL; /* a lone low surrogate */
          if (cp >= 0xd800 && cp <= 0xdbff) {
            if (end - p < 7 || p[1] != '\\' || p[2] != 'u' || !cfg_hex4(p + 3, end, &lo) || lo < 0xdc00 || lo > 0xdfff) return NULL;
            cp = 0x10000 + ((cp - 0xd800) << 10) + (lo - 0xdc00);
            p += 6;
          }
          cfg_utf8(b, cp);
          continue;
        }
        default: return NULL;
      }
      buf_add(b, &e, 1);
    } else if (ch >= 0x80) {
      int n = utf8_seq(p, end);
      if (!n) return NULL;
      buf_add(b, p, (size_t)n);
      p += n - 1;
    } else buf_add(b, p, 1);
  }
  return NULL;
}

/*
 * The double strtod reads from the number token [p, q) (RFC 8259 grammar, already checked), without strtod, when its
 * digits make an integer s < 10^15 and its decimal exponent e (value = s * 10^e) has |e| <= 22: s and 10^|e| are
 * then exact doubles, and one IEEE multiplication or division rounds their exact product or quotient correctly, as
 * strtod rounds the decimal (Clinger's fast path). 0 when the token is not of that kind (strtod decides).
 */
static int clinger_number(const unsigned char *p, const unsigned char *q, double *out) {
  int neg = *p == '-';
  if (neg) p++;
  unsigned long long s = 0;
  int e = 0, in_fraction = 0;
  for (; p < q && *p != 'e' && *p != 'E'; p++) {
    if (*p == '.') {
      in_fraction = 1;
      continue;
    }
    if (s >= 100000000000000ULL) return 0; /* one more digit could reach 10^15 */
    s = s * 10 + (unsigned)(*p - '0');
    if (in_fraction) e--;
  }
  if (p < q) {
    p++;
    int sign = 1, x = 0;
    if (*p == '+' || *p == '-') sign = *p++ == '-' ? -1 : 1;
    for (; p < q; p++) {
      if (x > 1000) return 0;
      x = x * 10 + (*p - '0');
    }
    e += sign * x;
  }
  double v;
  if (s == 0) v = 0;
  else if (e < -22 || e > 22) return 0;
  else v = e < 0 ? (double)s / POW10[-e] : (double)s * POW10[e];
  *out = neg ? -v : v;
  return 1;
}

/* A number token (RFC 8259 grammar) as a double in *out. The index after it, or NULL. */
static const unsigned char *cfg_number(const unsigned char *p, const unsigned char *end, double *out) {
  const unsigned char *q = p;
  if (q < end && *q == '-') q++;
  if (q >= end) return NULL;
  if (*q == '0') q++;
  else if (*q >= '1' && *q <= '9')
    while (q < end && is_digit(*q)) q++;
  else return NULL;
  if (q < end && *q == '.') {
    const unsigned char *d = ++q;
    while (q < end && is_digit(*q)) q++;
    if (q == d) return NULL;
  }
  if (q < end && (*q == 'e' || *q == 'E')) {
    q++;
    if (q < end && (*q == '+' || *q == '-')) q++;
    const unsigned char *d = q;
    while (q < end && is_digit(*q)) q++;
    if (q == d) return NULL;
  }
  if (clinger_number(p, q, out)) return q;
  size_t n = (size_t)(q - p);
  char text[72];
  if (n >= sizeof text) return NULL;
  memcpy(text, p, n);
  text[n] = 0;
  char *stop;
  *out = strtod(text, &stop);
  return stop == text + n ? q : NULL;
}

/* rl_json_number(text): the double rl_run_config_params reads from a JSON number token (cfg_number), NULL when the
   text is not one. For tests (native-metrics.test.ts compares it with JavaScript's Number()). */
static void json_number_sql(sqlite3_context *ctx, int argc, sqlite3_value **argv) {
  (void)argc;
  const unsigned char *t = sqlite3_value_text(argv[0]);
  int n = sqlite3_value_bytes(argv[0]);
  double d;
  if (t && cfg_number(t, t + n, &d) == t + n) sqlite3_result_double(ctx, d);
  else sqlite3_result_null(ctx);
}

static const unsigned char *cfg_value(Cfg *c, const unsigned char *p);

static const unsigned char *cfg_object(Cfg *c, const unsigned char *p) {
  const unsigned char *end = c->end, *keys[CFG_MAX_KEYS];
  size_t lens[CFG_MAX_KEYS], base = c->path.n;
  int k = 0;
  p = cfg_ws(p + 1, end);
  if (p < end && *p == '}') return base == 0 ? NULL : cfg_leaf_text(c, "{}", 2, 0, 0) ? p + 1 : NULL;
  for (;;) {
    if (p >= end || *p != '"') return NULL;
    const unsigned char *key = p + 1, *q = key;
    while (q < end && *q != '"') {
      if (*q < 0x20 || *q > 0x7e || *q == '\\' || *q == '.') return NULL;
      q++;
    }
    if (q >= end) return NULL;
    size_t len = (size_t)(q - key);
    if (len == 0 || (len == 9 && memcmp(key, "__proto__", 9) == 0) || k == CFG_MAX_KEYS) return NULL;
    for (int i = 0; i < k; i++)
      if (lens[i] == len && memcmp(keys[i], key, len) == 0) return NULL; /* JSON.parse keeps the last; flattenConfig too */
    keys[k] = key, lens[k++] = len;
    if (base == 0) {
      c->root_keys++;
      if (len == 3 && memcmp(key, "api", 3) == 0) c->root_api = 1;
    }
    c->path.n = base;
    if (base) buf_add(&c->path, ".", 1);
    buf_add(&c->path, key, len);
    p = cfg_ws(q + 1, end);
    if (p >= end || *p != ':') return NULL;
    p = cfg_value(c, cfg_ws(p + 1, end));
    if (!p) return NULL;
    p = cfg_ws(p, end);
    c->path.n = base;
    if (p >= end) return NULL;
    if (*p == '}') return p + 1;
    if (*p != ',') return NULL;
    p = cfg_ws(p + 1, end);
  }
}

static const unsigned char *cfg_array(Cfg *c, const unsigned char *p) {
  const unsigned char *end = c->end;
  size_t base = c->path.n;
  p = cfg_ws(p + 1, end);
  if (p < end && *p == ']') return cfg_leaf_text(c, "[]", 2, 0, 0) ? p + 1 : NULL;
  for (long i = 0;; i++) {
    char index[24];
    int m = snprintf(index, sizeof index, ".%ld", i);
    c->path.n = base;
    buf_add(&c->path, index, (size_t)m);
    p = cfg_value(c, p);
    if (!p) return NULL;
    p = cfg_ws(p, end);
    c->path.n = base;
    if (p >= end) return NULL;
    if (*p == ']') return p + 1;
    if (*p != ',') return NULL;
    p = cfg_ws(p + 1, end);
  }
}

static const unsigned char *cfg_value(Cfg *c, const unsigned char *p) {
  const unsigned char *end = c->end;
  if (p >= end) return NULL;
  unsigned ch = *p;
  if (ch == '"') return cfg_string_leaf(c, p);
  if (ch == '{' || ch == '[') {
    if (++c->depth > CFG_MAX_DEPTH) return NULL;
    const unsigned char *r = ch == '{' ? cfg_object(c, p) : cfg_array(c, p);
    c->depth--;
    return r;
  }
  if (ch == '-' || is_digit(ch)) {
    double v;
    const unsigned char *q = cfg_number(p, end, &v);
    if (!q || !cfg_leaf(c)) return NULL;
    unsigned long long bits;
    memcpy(&bits, &v, 8);
    unsigned char d[10] = {'n', 'd'};
    for (int i = 0; i < 8; i++) d[2 + i] = (unsigned char)(bits >> (56 - 8 * i));
    buf_add(&c->vals, d, 10);
    cfg_leaf_end(c);
    return q;
  }
  if (end - p >= 4 && memcmp(p, "null", 4) == 0) {
    if (!cfg_leaf(c)) return NULL;
    buf_add(&c->vals, "nn", 2);
    cfg_leaf_end(c);
    return p + 4;
  }
  if (end - p >= 4 && memcmp(p, "true", 4) == 0) return cfg_leaf_text(c, "true", 4, 1, 1.0) ? p + 4 : NULL;
  if (end - p >= 5 && memcmp(p, "false", 5) == 0) return cfg_leaf_text(c, "false", 5, 1, 0.0) ? p + 5 : NULL;
  return NULL;
}

static int cfg_path_cmp(const Cfg *c, const CfgLeaf *a, const CfgLeaf *b) {
  size_t m = a->path_len < b->path_len ? a->path_len : b->path_len;
  int r = m ? memcmp(c->paths.p + a->path, c->paths.p + b->path, m) : 0;
  return r ? r : a->path_len < b->path_len ? -1 : a->path_len > b->path_len ? 1 : 0;
}

/* 1 when the config's seed (training.seed, or null without one) equals the seed column as JavaScript compares them. */
static int cfg_seed_is(const Cfg *c, sqlite3_value *seed) {
  static const char SEED[] = "training.seed";
  const size_t len = sizeof SEED - 1;
  const CfgLeaf *found = NULL;
  for (int i = 0; i < c->n; i++) {
    const CfgLeaf *l = &c->leaves[i];
    if (l->path_len < len || memcmp(c->paths.p + l->path, SEED, len) != 0) continue;
    if (l->path_len > len) {
      if (c->paths.p[l->path + len] == '.') return 0; /* an object or array seed */
      continue;
    }
    found = l;
  }
  const unsigned char *v = found ? (const unsigned char *)c->vals.p + found->val : NULL;
  int type = sqlite3_value_type(seed);
  if (!found || (found->val_len == 2 && v[0] == 'n' && v[1] == 'n')) return type == SQLITE_NULL;
  if (found->val_len != 10 || v[0] != 'n' || v[1] != 'd') return 0; /* a text, a boolean, {} or [] */
  unsigned long long bits = 0;
  for (int i = 0; i < 8; i++) bits = bits << 8 | v[2 + i];
  double want;
  memcpy(&want, &bits, 8);
  if (type == SQLITE_FLOAT) return sqlite3_value_double(seed) == want;
  if (type != SQLITE_INTEGER) return 0;
  sqlite3_int64 s = sqlite3_value_int64(seed);
  return s <= 9007199254740992LL && s >= -9007199254740992LL && (double)s == want;
}

/* rl_run_config_params of a config, a seed and a run's framed rows (not NULL): the number of rows, or no result (NULL). */
static void config_params_compare(sqlite3_context *ctx, Cfg *c, sqlite3_value *config, sqlite3_value *seed, const unsigned char *framed,
                                  size_t framed_len) {
  if (sqlite3_value_type(config) != SQLITE_TEXT) return;
  const unsigned char *json = sqlite3_value_text(config);
  int len = sqlite3_value_bytes(config);
  c->path.n = c->paths.n = c->vals.n = 0;
  c->path.oom = c->paths.oom = c->vals.oom = 0;
  c->n = c->depth = c->root_keys = c->root_api = 0;
  c->end = json + len;
  const unsigned char *p = cfg_ws(json, c->end);
  int ok = p < c->end && *p == '{';
  if (ok) {
    p = cfg_value(c, p);
    ok = p != NULL && cfg_ws(p, c->end) == c->end && c->root_keys > 0 && !(c->root_keys == 1 && c->root_api);
  }
  ok = ok && !c->path.oom && !c->paths.oom && !c->vals.oom && cfg_seed_is(c, seed);
  /* The leaves in key order (insertion sort of an index: most configs come nearly sorted), compared frame by frame. */
  int *order = c->order;
  for (int i = 0; ok && i < c->n; i++) {
    int j = i;
    while (j > 0 && cfg_path_cmp(c, &c->leaves[order[j - 1]], &c->leaves[i]) > 0) order[j] = order[j - 1], j--;
    order[j] = i;
  }
  size_t at = 0;
  for (int i = 0; ok && i < c->n; i++) {
    const CfgLeaf *l = &c->leaves[order[i]];
    if (i > 0 && cfg_path_cmp(c, &c->leaves[order[i - 1]], l) >= 0) ok = 0; /* never two leaves at one path */
    unsigned char h[5] = {'k', (unsigned char)(l->path_len >> 24), (unsigned char)(l->path_len >> 16), (unsigned char)(l->path_len >> 8),
                          (unsigned char)l->path_len};
    if (!ok || framed_len - at < 5 + l->path_len + l->val_len || memcmp(framed + at, h, 5) != 0 ||
        memcmp(framed + at + 5, c->paths.p + l->path, l->path_len) != 0 ||
        memcmp(framed + at + 5 + l->path_len, c->vals.p + l->val, l->val_len) != 0)
      ok = 0;
    else at += 5 + l->path_len + l->val_len;
  }
  if (ok && at == framed_len) sqlite3_result_int64(ctx, c->n);
}

static void run_config_params(sqlite3_context *ctx, int argc, sqlite3_value **argv) {
  (void)argc;
  if (sqlite3_value_type(argv[2]) != SQLITE_BLOB) return;
  config_params_compare(ctx, sqlite3_user_data(ctx), argv[0], argv[1], sqlite3_value_blob(argv[2]), (size_t)sqlite3_value_bytes(argv[2]));
}

/*
 * rl_run_params_collect(run_id, key, value_text, value_num, max_bytes), an aggregate over the whole run_params table read in
 * rowid order (`FROM run_params NOT INDEXED`: one sequential pass, where reading each run's rows through the
 * (run_id, key) index costs a lookup of the table per row, ~0.55 s of a million-event ledger's 3.2M rows): keeps
 * each run's rows framed as rl_run_params_framed frames them in index order, for rl_run_config_params_collected.
 * A run's rows are written together, so they come as one block of rowids; within a block they are sorted here by
 * key (memcmp, then length: the index's BINARY order). Returns the number of runs kept, or -1 when the blocks do not
 * prove that each holds all of its run's rows (a run id that is not an INTEGER, or not above the previous block's:
 * rows of a run apart from each other, e.g. written later), or when the framed rows would take more than max_bytes
 * (memory stays bounded: ~35 bytes a row), and then keeps nothing: the caller reads through the index instead. A
 * run whose rows rl_run_params_framed would answer 'X' for is kept as such (NULL below).
 */
struct CollectedRun {
  sqlite3_int64 run_id;
  size_t at, len; /* its framed rows in `frames` */
  int bad;
};

typedef struct {
  int started, unclean, bad;
  sqlite3_int64 run_id;
  size_t max_bytes; /* the collection's bound (the fifth argument) */
  Buf rows;         /* the block's rows framed, in the order read */
  size_t *at;    /* where each row's frame starts in `rows` (row i ends where row i + 1 starts) */
  size_t *order; /* the rows' numbers, sorted by key when the block ends */
  size_t n, cap;
} ParamsCollect;

/* The order of rows a and b (numbers within the block) by key: memcmp, then the shorter first. */
static int collect_key_cmp(const ParamsCollect *k, size_t a, size_t b) {
  const unsigned char *pa = (const unsigned char *)k->rows.p + k->at[a], *pb = (const unsigned char *)k->rows.p + k->at[b];
  size_t la = (size_t)pa[1] << 24 | (size_t)pa[2] << 16 | (size_t)pa[3] << 8 | pa[4];
  size_t lb = (size_t)pb[1] << 24 | (size_t)pb[2] << 16 | (size_t)pb[3] << 8 | pb[4];
  size_t m = la < lb ? la : lb;
  int c = m ? memcmp(pa + 5, pb + 5, m) : 0;
  return c != 0 ? c : la < lb ? -1 : la > lb ? 1 : 0;
}

/* Moves the current block into c's collection (its rows sorted by key; equal keys make it bad). */
static void collect_flush(Cfg *c, ParamsCollect *k) {
  if (!k->started || k->unclean) return;
  size_t *order = k->order;
  for (size_t i = 0; i < k->n; i++) { /* insertion sort: a run has tens of rows */
    size_t j = i;
    while (j > 0 && collect_key_cmp(k, order[j - 1], i) > 0) order[j] = order[j - 1], j--;
    order[j] = i;
  }
  for (size_t i = 1; i < k->n; i++)
    if (collect_key_cmp(k, order[i - 1], order[i]) == 0) k->bad = 1;
  if (c->nruns == c->cap) {
    size_t cap = c->cap ? c->cap * 2 : 1024;
    struct CollectedRun *r = realloc(c->runs, cap * sizeof *r);
    if (!r) {
      k->unclean = 1;
      return;
    }
    c->runs = r, c->cap = cap;
  }
  struct CollectedRun *run = &c->runs[c->nruns++];
  run->run_id = k->run_id, run->at = c->frames.n, run->bad = k->bad;
  for (size_t i = 0; i < k->n && !k->bad; i++) {
    size_t r = order[i], end = r + 1 < k->n ? k->at[r + 1] : k->rows.n;
    buf_add(&c->frames, k->rows.p + k->at[r], end - k->at[r]);
  }
  run->len = c->frames.n - run->at;
  if (c->frames.oom || c->frames.n > k->max_bytes) k->unclean = 1;
}

static void collect_reset(Cfg *c) {
  free(c->frames.p);
  c->frames = (Buf){0};
  free(c->runs);
  c->runs = NULL;
  c->nruns = c->cap = 0;
}

static void run_params_collect_step(sqlite3_context *ctx, int argc, sqlite3_value **argv) {
  (void)argc;
  Cfg *c = sqlite3_user_data(ctx);
  ParamsCollect *k = sqlite3_aggregate_context(ctx, sizeof *k);
  if (!k) {
    sqlite3_result_error_nomem(ctx);
    return;
  }
  if (k->unclean) return;
  if (!k->started && k->n == 0 && k->rows.n == 0) { /* a new collection replaces the last */
    collect_reset(c);
    double max = sqlite3_value_double(argv[4]); /* (a bound JavaScript number arrives as a REAL) */
    k->max_bytes = max >= 1 && max < 1e18 ? (size_t)max : 0;
  }
  if (sqlite3_value_type(argv[0]) != SQLITE_INTEGER) {
    k->unclean = 1;
    return;
  }
  sqlite3_int64 run_id = sqlite3_value_int64(argv[0]);
  if (!k->started || run_id != k->run_id) {
    if (k->started) {
      if (run_id < k->run_id) {
        k->unclean = 1;
        return;
      }
      collect_flush(c, k);
      if (k->unclean) return;
    }
    k->started = 1, k->run_id = run_id, k->bad = 0, k->n = 0, k->rows.n = 0;
  }
  if (k->bad) return;
  if (k->n == k->cap) {
    size_t cap = k->cap ? k->cap * 2 : 64;
    size_t *at = realloc(k->at, cap * sizeof *at);
    if (at) k->at = at;
    size_t *order = at ? realloc(k->order, cap * sizeof *order) : NULL;
    if (order) k->order = order;
    if (!at || !order) {
      k->unclean = 1;
      return;
    }
    k->cap = cap;
  }
  k->at[k->n++] = k->rows.n;
  if (!frame_param_row(&k->rows, argv[1], argv[2], argv[3])) k->bad = 1;
  if (k->rows.oom || k->rows.n > k->max_bytes) k->unclean = 1; /* (one run's rows count against the bound too) */
}

static void run_params_collect_final(sqlite3_context *ctx) {
  Cfg *c = sqlite3_user_data(ctx);
  ParamsCollect *k = sqlite3_aggregate_context(ctx, 0);
  if (!k) { /* no rows at all */
    collect_reset(c);
    sqlite3_result_int64(ctx, 0);
    return;
  }
  collect_flush(c, k);
  free(k->rows.p);
  free(k->at);
  free(k->order);
  if (k->unclean) {
    collect_reset(c);
    sqlite3_result_int64(ctx, -1);
    return;
  }
  sqlite3_result_int64(ctx, (sqlite3_int64)c->nruns);
}

/*
 * rl_run_config_params_collected(config_json, seed, run_id): rl_run_config_params(config_json, seed, framed rows of
 * run_id) on rl_run_params_collect's last result (NULL for a run without rows, or whose rows were bad, as there).
 */
static void run_config_params_collected(sqlite3_context *ctx, int argc, sqlite3_value **argv) {
  (void)argc;
  Cfg *c = sqlite3_user_data(ctx);
  if (sqlite3_value_type(argv[2]) != SQLITE_INTEGER || c->nruns == 0) return;
  sqlite3_int64 id = sqlite3_value_int64(argv[2]);
  size_t lo = 0, hi = c->nruns; /* run ids strictly increase (rl_run_params_collect returned -1 otherwise) */
  while (lo < hi) {
    size_t mid = lo + (hi - lo) / 2;
    if (c->runs[mid].run_id < id) lo = mid + 1;
    else hi = mid;
  }
  if (lo == c->nruns || c->runs[lo].run_id != id || c->runs[lo].bad) return;
  const struct CollectedRun *r = &c->runs[lo];
  config_params_compare(ctx, c, argv[0], argv[1], (const unsigned char *)c->frames.p + r->at, r->len);
}

/* rl_run_params_release(): frees rl_run_params_collect's result. */
static void run_params_release(sqlite3_context *ctx, int argc, sqlite3_value **argv) {
  (void)argc, (void)argv;
  collect_reset(sqlite3_user_data(ctx));
  sqlite3_result_null(ctx);
}

static void cfg_free(void *p) {
  Cfg *c = p;
  free(c->path.p);
  free(c->paths.p);
  free(c->vals.p);
  collect_reset(c);
  free(c);
}

#ifdef _WIN32
__declspec(dllexport)
#endif
int sqlite3_rlaudit_init(sqlite3 *db, char **err, const sqlite3_api_routines *api) {
  SQLITE_EXTENSION_INIT2(api);
  (void)err;
  Range *r = calloc(1, sizeof *r);
  if (!r) return SQLITE_NOMEM;
  int rc = sqlite3_create_function_v2(db, "rl_range_begin", 7, SQLITE_UTF8, r, range_begin, 0, 0, range_free);
  if (rc == SQLITE_OK) rc = sqlite3_create_function_v2(db, "rl_range_feed", 11, SQLITE_UTF8, r, range_feed, 0, 0, 0);
  if (rc == SQLITE_OK) rc = sqlite3_create_function_v2(db, "rl_range_result", 0, SQLITE_UTF8, r, range_result, 0, 0, 0);
  if (rc == SQLITE_OK)
    rc = sqlite3_create_function_v2(db, "rl_sha256", 1, SQLITE_UTF8 | SQLITE_DETERMINISTIC | SQLITE_INNOCUOUS, 0, sha256_hex, 0, 0, 0);
  if (rc == SQLITE_OK)
    rc = sqlite3_create_function_v2(db, "rl_member_inserted_sha256", 3, SQLITE_UTF8 | SQLITE_DETERMINISTIC | SQLITE_INNOCUOUS, 0,
                                    member_inserted_sha256, 0, 0, 0);
  if (rc == SQLITE_OK)
    rc = sqlite3_create_function_v2(db, "rl_run_params_framed", 3, SQLITE_UTF8 | SQLITE_DETERMINISTIC | SQLITE_INNOCUOUS, 0, 0,
                                    run_params_step, run_params_final, 0);
  if (rc == SQLITE_OK)
    rc = sqlite3_create_function_v2(db, "rl_unless_json_object", 1, SQLITE_UTF8 | SQLITE_DETERMINISTIC | SQLITE_INNOCUOUS, 0, unless_json_object,
                                    0, 0, 0);
  const int pure = SQLITE_UTF8 | SQLITE_DETERMINISTIC | SQLITE_INNOCUOUS;
  if (rc == SQLITE_OK) rc = sqlite3_create_function_v2(db, "rl_json_text", -1, pure, 0, json_text, 0, 0, 0);
  if (rc == SQLITE_OK) rc = sqlite3_create_function_v2(db, "rl_json_sha256", -1, pure, 0, json_sha256, 0, 0, 0);
  if (rc == SQLITE_OK) rc = sqlite3_create_function_v2(db, "rl_text_sha256", 1, pure, 0, text_sha256, 0, 0, 0);
  if (rc == SQLITE_OK) rc = sqlite3_create_function_v2(db, "rl_json_array", 2, pure, 0, 0, json_array_step, json_array_final, 0);
  if (rc == SQLITE_OK) rc = sqlite3_create_function_v2(db, "rl_distinct_ids", 1, pure, 0, 0, distinct_ids_step, distinct_ids_final, 0);
  if (rc == SQLITE_OK) rc = sqlite3_create_function_v2(db, "rl_js_number", 1, pure, 0, js_number_sql, 0, 0, 0);
  if (rc == SQLITE_OK) rc = sqlite3_create_function_v2(db, "rl_json_number", 1, pure, 0, json_number_sql, 0, 0, 0);
  if (rc == SQLITE_OK) rc = sqlite3_create_function_v2(db, "rl_metric_points", 4, pure, 0, 0, metric_points_step, metric_points_final, 0);
  if (rc == SQLITE_OK) rc = sqlite3_create_function_v2(db, "rl_metric_summary_rows", 5, pure, 0, 0, metric_rows_step, metric_rows_final, 0);
  if (rc == SQLITE_OK) rc = sqlite3_create_function_v2(db, "rl_metric_rollup_rows", 8, pure, 0, 0, metric_rows_step, metric_rows_final, 0);
  if (rc == SQLITE_OK) {
    MetricRowsKept *kept = calloc(1, sizeof *kept);
    /* (One state, freed with rl_metric_rows_keep; these read or change it, so none is deterministic.) */
    rc = kept ? sqlite3_create_function_v2(db, "rl_metric_rows_keep", 3, SQLITE_UTF8, kept, metric_rows_keep, 0, 0, metric_rows_kept_free)
              : SQLITE_NOMEM;
    if (rc == SQLITE_OK) rc = sqlite3_create_function_v2(db, "rl_metric_points_checked", 2, SQLITE_UTF8, kept, metric_points_checked, 0, 0, 0);
    if (rc == SQLITE_OK) rc = sqlite3_create_function_v2(db, "rl_metric_rows_release", 0, SQLITE_UTF8, kept, metric_rows_release, 0, 0, 0);
  }
  if (rc == SQLITE_OK) {
    Cfg *cfg = calloc(1, sizeof *cfg);
    rc = cfg ? sqlite3_create_function_v2(db, "rl_run_config_params", 3, SQLITE_UTF8 | SQLITE_DETERMINISTIC | SQLITE_INNOCUOUS, cfg,
                                          run_config_params, 0, 0, cfg_free)
             : SQLITE_NOMEM;
    /* (The same Cfg, freed with rl_run_config_params; these read or change its collection, so none is deterministic.) */
    if (rc == SQLITE_OK)
      rc = sqlite3_create_function_v2(db, "rl_run_params_collect", 5, SQLITE_UTF8, cfg, 0, run_params_collect_step, run_params_collect_final, 0);
    if (rc == SQLITE_OK)
      rc = sqlite3_create_function_v2(db, "rl_run_config_params_collected", 3, SQLITE_UTF8, cfg, run_config_params_collected, 0, 0, 0);
    if (rc == SQLITE_OK) rc = sqlite3_create_function_v2(db, "rl_run_params_release", 0, SQLITE_UTF8, cfg, run_params_release, 0, 0, 0);
  }
  return rc;
}
