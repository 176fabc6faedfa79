/**
 * C2SP signed notes (c2sp.org/signed-note): the text format shared by checkpoints and witness cosignatures.
 *
 * A signed note is `text` (ending in "\n"), a blank line, then one or more signature lines
 * "— <key name> <base64(4-byte key ID || signature)>\n". The text is separated from the signatures by the LAST
 * blank line. Key names are non-empty with no Unicode spaces and no "+".
 * Key ID = SHA-256(key name || "\n" || signature type byte || public key)[:4]. Types used here:
 * 0x01 Ed25519 note signature over the text (the log's checkpoint signature), 0x04 cosignature/v1 (witnesses).
 * Verifier keys ("vkeys") are "<name>+<8 hex key ID>+<base64(type byte || public key)>".
 * Invariants: parsing is strict (canonical base64, no control characters but "\n", at most MAX_NOTE_SIGNATURES
 * signature lines); every malformed input raises NoteFormatError saying what is wrong.
 */
import crypto, { type KeyObject } from "node:crypto";

export const SIG_TYPE_ED25519 = 0x01;
export const SIG_TYPE_COSIGNATURE_V1 = 0x04;
export type NoteSignatureType = typeof SIG_TYPE_ED25519 | typeof SIG_TYPE_COSIGNATURE_V1;
export const MAX_NOTE_SIGNATURES = 64;
const EM_DASH = "\u2014";

export class NoteFormatError extends Error {
  constructor(message: string) {
    super(message);
    this.name = "NoteFormatError";
  }
}

/** One signature line: the key name, the 4-byte key ID, and the signature bytes after it. */
export type NoteSignature = { name: string; keyId: Buffer; signature: Buffer };
export type SignedNote = { text: string; signatures: NoteSignature[] };
/** A public key a note signature can be checked against. */
export type VerifierKey = {
  name: string;
  type: NoteSignatureType;
  keyId: Buffer;
  rawPublicKey: Buffer;
  publicKey: KeyObject;
  vkey: string;
};

/** Base64 that re-encodes to itself (Node's decoder silently skips junk). */
export function strictBase64(s: string, what: string): Buffer {
  const b = Buffer.from(s, "base64");
  if (s.length === 0 || b.toString("base64") !== s) throw new NoteFormatError(`${what} is not canonical base64: "${s.slice(0, 80)}"`);
  return b;
}

export function checkKeyName(name: string): void {
  if (name.length === 0) throw new NoteFormatError("key name is empty");
  if (/[\s+]/u.test(name)) throw new NoteFormatError(`key name "${name}" contains a space or "+"`);
  if (/[\u0000-\u001f\u007f]/.test(name)) throw new NoteFormatError(`key name "${name}" contains a control character`);
}

export function keyIdFor(name: string, type: NoteSignatureType, rawPublicKey: Uint8Array): Buffer {
  checkKeyName(name);
  return crypto
    .createHash("sha256")
    .update(Buffer.from(name, "utf8"))
    .update(Buffer.from([0x0a, type]))
    .update(rawPublicKey)
    .digest()
    .subarray(0, 4);
}

export function rawEd25519PublicKey(key: KeyObject): Buffer {
  if (key.asymmetricKeyType !== "ed25519") throw new Error(`expected an Ed25519 key, got ${key.asymmetricKeyType}`);
  const pub = key.type === "private" ? crypto.createPublicKey(key) : key;
  const x = pub.export({ format: "jwk" }).x;
  if (!x) throw new Error("Ed25519 key has no public part");
  return Buffer.from(x, "base64url");
}

export function ed25519PublicKeyFromRaw(raw: Uint8Array): KeyObject {
  if (raw.length !== 32) throw new NoteFormatError(`an Ed25519 public key is 32 bytes, got ${raw.length}`);
  return crypto.createPublicKey({ key: { kty: "OKP", crv: "Ed25519", x: Buffer.from(raw).toString("base64url") }, format: "jwk" });
}

export function formatVerifierKey(name: string, type: NoteSignatureType, rawPublicKey: Uint8Array): string {
  return `${name}+${keyIdFor(name, type, rawPublicKey).toString("hex")}+${Buffer.concat([Buffer.from([type]), rawPublicKey]).toString("base64")}`;
}

export function verifierKeyFrom(name: string, type: NoteSignatureType, publicKey: KeyObject): VerifierKey {
  const raw = rawEd25519PublicKey(publicKey);
  return parseVerifierKey(formatVerifierKey(name, type, raw));
}

/** Parses "<name>+<hex key ID>+<base64(type || key)>"; the key ID must match the key. */
export function parseVerifierKey(vkey: string): VerifierKey {
  const text = vkey.trim();
  const first = text.indexOf("+");
  const second = first < 0 ? -1 : text.indexOf("+", first + 1);
  if (first < 0 || second < 0) throw new NoteFormatError(`verifier key "${text.slice(0, 80)}" is not of the form <name>+<key id>+<key>`);
  const name = text.slice(0, first);
  const idHex = text.slice(first + 1, second);
  checkKeyName(name);
  if (!/^[0-9a-f]{8}$/.test(idHex)) throw new NoteFormatError(`verifier key "${name}": key ID "${idHex}" is not 8 lowercase hex digits`);
  const data = strictBase64(text.slice(second + 1), `verifier key "${name}"`);
  const type = data[0];
  if (type !== SIG_TYPE_ED25519 && type !== SIG_TYPE_COSIGNATURE_V1)
    throw new NoteFormatError(
      `verifier key "${name}": unsupported signature type 0x${(type ?? 0).toString(16).padStart(2, "0")} (supported: 0x01 Ed25519, 0x04 cosignature/v1)`,
    );
  const rawPublicKey = data.subarray(1);
  const publicKey = ed25519PublicKeyFromRaw(rawPublicKey);
  const keyId = keyIdFor(name, type, rawPublicKey);
  if (keyId.toString("hex") !== idHex)
    throw new NoteFormatError(`verifier key "${name}": key ID ${idHex} does not match the key (expected ${keyId.toString("hex")})`);
  return { name, type, keyId, rawPublicKey: Buffer.from(rawPublicKey), publicKey, vkey: text };
}

export function formatSignatureLine(name: string, keyId: Uint8Array, signature: Uint8Array): string {
  checkKeyName(name);
  if (keyId.length !== 4) throw new Error("a note key ID is 4 bytes");
  return `${EM_DASH} ${name} ${Buffer.concat([keyId, signature]).toString("base64")}\n`;
}

/** Parses one signature line (with or without its final newline). */
export function parseSignatureLine(line: string): NoteSignature {
  const body = line.endsWith("\n") ? line.slice(0, -1) : line;
  if (!body.startsWith(`${EM_DASH} `))
    throw new NoteFormatError(`signature line does not start with "${EM_DASH} ": "${body.slice(0, 80)}"`);
  const parts = body.slice(2).split(" ");
  if (parts.length !== 2) throw new NoteFormatError(`signature line is not "${EM_DASH} <name> <base64>": "${body.slice(0, 80)}"`);
  const [name, b64] = parts as [string, string];
  checkKeyName(name);
  const blob = strictBase64(b64, `signature of "${name}"`);
  if (blob.length < 5) throw new NoteFormatError(`signature of "${name}" is too short`);
  return { name, keyId: blob.subarray(0, 4), signature: blob.subarray(4) };
}

function checkCharacters(note: string): void {
  if (/[\u0000-\u0009\u000b-\u001f]/.test(note)) throw new NoteFormatError("note contains a control character other than newline");
}

/** Splits a signed note into its text and signature lines (signatures are NOT verified here). */
export function parseSignedNote(note: string): SignedNote {
  checkCharacters(note);
  if (!note.endsWith("\n")) throw new NoteFormatError("signed note does not end with a newline");
  const split = note.lastIndexOf("\n\n");
  if (split < 0) throw new NoteFormatError("signed note has no blank line between its text and its signatures");
  const text = note.slice(0, split + 1);
  const lines = note.slice(split + 2, -1).split("\n");
  if (lines.length === 1 && lines[0] === "") throw new NoteFormatError("signed note has no signature lines");
  if (lines.length > MAX_NOTE_SIGNATURES)
    throw new NoteFormatError(`signed note has ${lines.length} signatures; at most ${MAX_NOTE_SIGNATURES} are accepted`);
  return { text, signatures: lines.map(parseSignatureLine) };
}

export function formatSignedNote(text: string, signatureLines: readonly string[]): string {
  if (!text.endsWith("\n")) throw new Error("note text must end with a newline");
  if (signatureLines.length === 0) throw new Error("a signed note needs at least one signature");
  return `${text}\n${signatureLines.join("")}`;
}

/** Ed25519 (type 0x01) note signature line over `text`. */
export function signNoteEd25519(name: string, privateKey: KeyObject, text: string): string {
  const keyId = keyIdFor(name, SIG_TYPE_ED25519, rawEd25519PublicKey(privateKey));
  return formatSignatureLine(name, keyId, crypto.sign(null, Buffer.from(text, "utf8"), privateKey));
}

/** True when `sig` is by `key` (same name and key ID) and verifies over `text` (type 0x01 only). */
export function verifyNoteEd25519(key: VerifierKey, text: string, sig: NoteSignature): boolean {
  if (key.type !== SIG_TYPE_ED25519 || sig.name !== key.name || !sig.keyId.equals(key.keyId) || sig.signature.length !== 64) return false;
  try {
    return crypto.verify(null, Buffer.from(text, "utf8"), key.publicKey, sig.signature);
  } catch {
    return false;
  }
}
