/**
 * Witness cosignatures, c2sp.org/tlog-cosignature (Ed25519 "cosignature/v1", note signature type 0x04).
 *
 * The signature bytes after the 4-byte key ID are a timestamped_signature: 8-byte big-endian POSIX timestamp
 * (seconds) || 64-byte Ed25519 signature over
 *   "cosignature/v1\n" + "time <timestamp>\n" + <checkpoint note text, final newline included>.
 * Key ID = SHA-256(<witness name> || "\n" || 0x04 || 32-byte public key)[:4].
 * Invariants: a cosignature verifies only under the key whose name AND key ID it carries; timestamps above
 * 2^63-1 are rejected. `verifyNoteSignature` checks either kind of signature a checkpoint note carries.
 */
import crypto, { type KeyObject } from "node:crypto";
import {
  type NoteSignature,
  type VerifierKey,
  SIG_TYPE_COSIGNATURE_V1,
  SIG_TYPE_ED25519,
  formatSignatureLine,
  keyIdFor,
  rawEd25519PublicKey,
  verifyNoteEd25519,
} from "./note";

const MAX_TIMESTAMP = (1n << 63n) - 1n;

export function cosignedMessage(timestamp: number | bigint, noteText: string): Buffer {
  return Buffer.from(`cosignature/v1\ntime ${BigInt(timestamp).toString()}\n${noteText}`, "utf8");
}

/** A cosignature line by `name` over the checkpoint note text, at `timestamp` (seconds since the epoch). */
export function cosignNote(name: string, privateKey: KeyObject, noteText: string, timestamp: number): string {
  if (!Number.isSafeInteger(timestamp) || timestamp < 0)
    throw new Error(`cosignature timestamp must be a whole number of seconds, got ${timestamp}`);
  const keyId = keyIdFor(name, SIG_TYPE_COSIGNATURE_V1, rawEd25519PublicKey(privateKey));
  const ts = Buffer.alloc(8);
  ts.writeBigUInt64BE(BigInt(timestamp));
  const sig = crypto.sign(null, cosignedMessage(timestamp, noteText), privateKey);
  return formatSignatureLine(name, keyId, Buffer.concat([ts, sig]));
}

export type VerifiedCosignature = { name: string; keyId: string; timestamp: number; signature: string };

/** Checks a cosignature under `key`; returns its parts, or null when it is not by this key or does not verify. */
export function verifyCosignature(key: VerifierKey, noteText: string, sig: NoteSignature): VerifiedCosignature | null {
  if (key.type !== SIG_TYPE_COSIGNATURE_V1 || sig.name !== key.name || !sig.keyId.equals(key.keyId)) return null;
  if (sig.signature.length !== 8 + 64) return null;
  const ts = sig.signature.readBigUInt64BE(0);
  if (ts > MAX_TIMESTAMP || ts > BigInt(Number.MAX_SAFE_INTEGER)) return null;
  try {
    if (!crypto.verify(null, cosignedMessage(ts, noteText), key.publicKey, sig.signature.subarray(8))) return null;
  } catch {
    return null;
  }
  return {
    name: sig.name,
    keyId: sig.keyId.toString("hex"),
    timestamp: Number(ts),
    signature: Buffer.concat([sig.keyId, sig.signature]).toString("base64"),
  };
}

/** True when `sig` was made by `key` over `noteText`, for either signature type. */
export function verifyNoteSignature(key: VerifierKey, noteText: string, sig: NoteSignature): boolean {
  if (key.type === SIG_TYPE_ED25519) return verifyNoteEd25519(key, noteText, sig);
  return verifyCosignature(key, noteText, sig) !== null;
}
