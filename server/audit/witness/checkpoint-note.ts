/**
 * The audit log's checkpoints as C2SP checkpoint notes (c2sp.org/tlog-checkpoint), the form witnesses cosign.
 *
 * Note text: "<origin>\n<tree size>\n<base64 root>\n" (no extension lines). The root is the RFC 6962 Merkle root
 * over the ledger's leaf hashes 1..size, the same root the server's own checkpoints sign (checkpoints.ts).
 * The log signs the note with its Ed25519 audit key as a type 0x01 note signature whose key name is the origin.
 * Origin: RUNLEDGER_LOG_ORIGIN, else "runledger/<first 16 hex of the fingerprint of the key that signed the
 * ledger's FIRST checkpoint>": no configuration, and stable across key rotations (after a rotation the witness is
 * given the new key under the same origin, and keeps checking consistency with what it cosigned before).
 * Invariants: sizes are decimal with no leading zeros and at most 2^53-1; roots are exactly 32 bytes.
 */
import type { KeyObject } from "node:crypto";
import {
  type VerifierKey,
  NoteFormatError,
  SIG_TYPE_ED25519,
  checkKeyName,
  formatSignedNote,
  formatVerifierKey,
  parseVerifierKey,
  rawEd25519PublicKey,
  signNoteEd25519,
  strictBase64,
} from "./note";
import { countOf } from "@/contracts/count-text";

export type CheckpointBody = { origin: string; treeSize: number; rootHash: string /* hex */ };

export function defaultLogOrigin(keyFingerprint: string): string {
  const hex = keyFingerprint.replace(/^SHA256:/, "");
  if (!/^[0-9a-f]{16}/.test(hex)) throw new Error(`cannot derive a log origin from key fingerprint "${keyFingerprint}"`);
  return `runledger/${hex.slice(0, 16)}`;
}

/** The origin this log uses: RUNLEDGER_LOG_ORIGIN when set (checked), else derived from the first signing key's fingerprint. */
export function logOrigin(firstKeyFingerprint: string, env: Record<string, string | undefined> = process.env): string {
  const configured = env.RUNLEDGER_LOG_ORIGIN?.trim();
  if (configured) {
    try {
      checkKeyName(configured);
    } catch (err) {
      throw new Error(`RUNLEDGER_LOG_ORIGIN: ${(err as Error).message}`);
    }
    return configured;
  }
  return defaultLogOrigin(firstKeyFingerprint);
}

export function parseTreeSize(s: string, what = "tree size"): number {
  if (!/^(0|[1-9][0-9]*)$/.test(s)) throw new NoteFormatError(`${what} "${s.slice(0, 40)}" is not a decimal number without leading zeros`);
  const n = Number(s);
  if (!Number.isSafeInteger(n)) throw new NoteFormatError(`${what} ${s} is too large`);
  return n;
}

export function formatCheckpointBody({ origin, treeSize, rootHash }: CheckpointBody): string {
  checkKeyName(origin);
  if (!Number.isSafeInteger(treeSize) || treeSize < 0) throw new Error(`tree size must be a whole number, got ${treeSize}`);
  if (!/^[0-9a-f]{64}$/.test(rootHash)) throw new Error(`root hash must be 64 lowercase hex digits, got "${rootHash}"`);
  return `${origin}\n${treeSize}\n${Buffer.from(rootHash, "hex").toString("base64")}\n`;
}

/** Parses a checkpoint note text (not its signatures); extension lines are kept but not interpreted. */
export function parseCheckpointBody(text: string): CheckpointBody & { extensions: string[] } {
  if (!text.endsWith("\n")) throw new NoteFormatError("checkpoint text does not end with a newline");
  const lines = text.slice(0, -1).split("\n");
  if (lines.length < 3)
    throw new NoteFormatError(`checkpoint text has ${countOf(lines.length, "line")}; it needs origin, tree size and root hash`);
  const [origin, size, root, ...extensions] = lines as [string, string, string, ...string[]];
  if (origin.length === 0) throw new NoteFormatError("checkpoint origin line is empty");
  if (extensions.some((l) => l.length === 0)) throw new NoteFormatError("checkpoint extension lines must not be empty");
  const rootBytes = strictBase64(root, "checkpoint root hash");
  if (rootBytes.length !== 32) throw new NoteFormatError(`checkpoint root hash is ${rootBytes.length} bytes, expected 32`);
  return { origin, treeSize: parseTreeSize(size), rootHash: rootBytes.toString("hex"), extensions };
}

/** The log's verifier key for `origin` (what a witness is configured with). */
export function logVerifierKey(origin: string, publicKey: KeyObject): VerifierKey {
  return parseVerifierKey(formatVerifierKey(origin, SIG_TYPE_ED25519, rawEd25519PublicKey(publicKey)));
}

/** A checkpoint note signed by the log's key (key name = origin). */
export function signCheckpointNote(privateKey: KeyObject, body: CheckpointBody): string {
  const text = formatCheckpointBody(body);
  return formatSignedNote(text, [signNoteEd25519(body.origin, privateKey, text)]);
}
