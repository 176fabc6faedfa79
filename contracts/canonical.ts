/**
 * Canonical bytes for hashing: RFC 8785 (JSON Canonicalization Scheme) via the `canonicalize` library,
 * and SHA-256 helpers. Every hash in Runledger is SHA-256 over these bytes, hex-encoded.
 *
 * This is the leaf module both the trainer and the server hash with (contracts/ imports nothing from server/ or
 * db/), so a run's config, data and weights hashes are computed by the same code wherever they are computed.
 *
 * Invariants:
 * - canonicalize@2.x (CommonJS, no engines restriction) is used rather than 5.x, which declares Node >= 22 and is
 *   ESM-only: the project supports Node >= 20.9, and workers load this file through tsx's require(). Its output for
 *   JSON data is byte-identical to 5.x (server/audit/tests/event-hashing.test.ts checks the published vectors and
 *   the standalone verifier's own implementation).
 * - Lone surrogates are refused, as RFC 8785 (I-JSON) requires and as 5.x and server/audit/report/verify-bundle.mjs
 *   do: 2.x passes strings to JSON.stringify, which spells a lone surrogate as a \udXXX escape and never spells any
 *   other character with a \ud8xx-\udfxx escape, so the check scans the output once.
 * - A value with no JSON representation (undefined at the top level) throws instead of hashing "undefined".
 */
import canonicalizeLib from "canonicalize";
import { createHash } from "node:crypto";

// An escape `\udXXX` for a surrogate code unit, preceded by an even number of backslashes (so the backslash starts
// an escape and is not itself an escaped `\\`).
const LONE_SURROGATE_ESCAPE = /(?<!\\)(?:\\\\)*\\ud[89a-f][0-9a-f]{2}/;

export function canonicalJson(value: unknown): string {
  const out = canonicalizeLib(value);
  if (out === undefined) throw new Error("canonicalJson: value cannot be represented as JSON");
  if (out.includes("\\ud") && LONE_SURROGATE_ESCAPE.test(out)) throw new Error("canonicalJson: lone surrogate is not allowed (RFC 8785)");
  return out;
}

export function sha256Hex(data: string | Uint8Array): string {
  return createHash("sha256").update(data).digest("hex");
}

export function sha256Canonical(value: unknown): string {
  return sha256Hex(canonicalJson(value));
}
