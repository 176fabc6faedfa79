/**
 * Canonical bytes for hashing: RFC 8785 (JSON Canonicalization Scheme) via the `canonicalize` library,
 * and SHA-256 helpers. Every hash in Runledger is SHA-256 over these bytes, hex-encoded.
 */
import canonicalizeLib from "canonicalize";
import { createHash } from "node:crypto";

export function canonicalJson(value: unknown): string {
  const out = canonicalizeLib(value);
  if (out === undefined) throw new Error("canonicalJson: value cannot be represented as JSON");
  return out;
}

export function sha256Hex(data: string | Uint8Array): string {
  return createHash("sha256").update(data).digest("hex");
}

export function sha256Canonical(value: unknown): string {
  return sha256Hex(canonicalJson(value));
}
