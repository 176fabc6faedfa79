/**
 * Ed25519 audit keys and the key directory that holds the private halves.
 *
 * Invariants:
 * - Private keys live in a key directory of their own, never in the data directory: `RUNLEDGER_KEY_DIR`, else
 *   `${XDG_CONFIG_HOME:-$HOME/.config}/runledger/keys`. The directory is mode 0700, each key file 0600.
 * - A key file is named by its key: `ed25519-<sha256 hex of the SPKI DER>.key` (PKCS8 PEM), so one key directory
 *   can serve several installations and a ledger finds its key by the fingerprint it records. Loading checks
 *   that the content matches the name.
 * - Key files are written to a temporary name and hard-linked into place: never overwritten, never half-written,
 *   and two processes creating the same file cannot both win.
 * - The data directory holds only the PUBLIC key of the current signing key (`audit-ed25519.pub`, replaced
 *   atomically when the key rotates). `audit-ed25519.key` there is the old layout (refused at start, see key-custody.ts).
 * - fingerprint = "SHA256:" + sha256 hex of the SPKI DER of the public key.
 * Signatures are Ed25519 over raw bytes (crypto.sign(null, ...)), base64-encoded.
 */
import crypto, { type KeyObject } from "node:crypto";
import fs from "node:fs";
import os from "node:os";
import path from "node:path";
import { writeFileAtomic } from "@/server/fs/atomic-write";

/** The old layout: the private key inside the data directory. Only read by `audit move-key` (and when explicitly allowed). */
export const LEGACY_PRIVATE_KEY_FILE = "audit-ed25519.key";
/** Public key of the current signing key, kept in the data directory (public, harmless, shown in the app). */
export const PUBLIC_KEY_FILE = "audit-ed25519.pub";

export type AuditPublicKey = { publicKey: KeyObject; publicKeyPem: string; fingerprint: string };
export type AuditKeys = AuditPublicKey & { privateKey: KeyObject };

export class KeyCustodyError extends Error {
  constructor(message: string) {
    super(message);
    this.name = "KeyCustodyError";
  }
}

export function publicKeyFingerprint(publicKey: KeyObject): string {
  const der = publicKey.export({ type: "spki", format: "der" });
  return "SHA256:" + crypto.createHash("sha256").update(der).digest("hex");
}

/** Parses an SPKI PEM and checks it is an Ed25519 key. */
export function parseAuditPublicKey(pem: string): AuditPublicKey {
  const publicKey = crypto.createPublicKey(pem);
  if (publicKey.asymmetricKeyType !== "ed25519")
    throw new Error(`audit key: expected an Ed25519 public key, got ${publicKey.asymmetricKeyType}`);
  const publicKeyPem = publicKey.export({ type: "spki", format: "pem" }).toString();
  return { publicKey, publicKeyPem, fingerprint: publicKeyFingerprint(publicKey) };
}

export function keysFromPrivatePem(pem: string): AuditKeys {
  return keysFromPrivateKey(crypto.createPrivateKey(pem));
}

function keysFromPrivateKey(privateKey: KeyObject): AuditKeys {
  if (privateKey.asymmetricKeyType !== "ed25519")
    throw new Error(`audit key: expected an Ed25519 private key, got ${privateKey.asymmetricKeyType}`);
  const publicKey = crypto.createPublicKey(privateKey);
  const publicKeyPem = publicKey.export({ type: "spki", format: "pem" }).toString();
  return { privateKey, publicKey, publicKeyPem, fingerprint: publicKeyFingerprint(publicKey) };
}

export function privateKeyPem(keys: Pick<AuditKeys, "privateKey">): string {
  return keys.privateKey.export({ type: "pkcs8", format: "pem" }).toString();
}

/** A fresh key pair that is not stored anywhere (tests, and proving a foreign key is rejected). */
export function generateAuditKeys(): AuditKeys {
  return keysFromPrivateKey(crypto.generateKeyPairSync("ed25519").privateKey);
}

// ---------------------------------------------------------------------------------------------------------
// The key directory.

/** `explicit`, else RUNLEDGER_KEY_DIR, else `${XDG_CONFIG_HOME:-$HOME/.config}/runledger/keys`. */
export function resolveKeyDir(explicit?: string, env: NodeJS.ProcessEnv = process.env): string {
  if (explicit) return path.resolve(explicit);
  if (env.RUNLEDGER_KEY_DIR) return path.resolve(env.RUNLEDGER_KEY_DIR);
  if (env.VITEST) {
    // Tests must never create or read keys in the user's real key directory.
    throw new KeyCustodyError("tests must pass their own key directory (keyDir / --key-dir / RUNLEDGER_KEY_DIR), not use the default one");
  }
  const config = env.XDG_CONFIG_HOME || path.join(env.HOME || os.homedir(), ".config");
  return path.resolve(config, "runledger", "keys");
}

/** Creates the key directory (mode 0700) if needed; an existing one is narrowed to 0700. */
export function ensureKeyDir(keyDir: string): void {
  fs.mkdirSync(keyDir, { recursive: true, mode: 0o700 });
  if ((fs.statSync(keyDir).mode & 0o077) !== 0) fs.chmodSync(keyDir, 0o700);
}

export function keyFileName(fingerprint: string): string {
  const m = /^SHA256:([0-9a-f]{64})$/.exec(fingerprint);
  if (!m) throw new Error(`audit key: "${fingerprint}" is not a key fingerprint (SHA256:<64 hex digits>)`);
  return `ed25519-${m[1]}.key`;
}

export function keyFilePath(keyDir: string, fingerprint: string): string {
  return path.join(keyDir, keyFileName(fingerprint));
}

/** Writes `content` to `target` only if it does not exist yet; returns false if the file was already there. */
export function writeOnce(target: string, content: string, mode: number): boolean {
  return writeFileAtomic(target, content, { mode, createOnly: true });
}

/** Stores `keys` in the key directory under its fingerprint name (no-op if that file exists); returns the path. */
export function storeKeyInDir(keyDir: string, keys: AuditKeys): string {
  ensureKeyDir(keyDir);
  const file = keyFilePath(keyDir, keys.fingerprint);
  writeOnce(file, privateKeyPem(keys), 0o600);
  const stored = loadKeyFromDir(keyDir, keys.fingerprint);
  if (!stored) throw new KeyCustodyError(`audit key: ${file} could not be read back after writing it`);
  return file;
}

/** A new key pair, stored in the key directory (0600). */
export function createKeyInDir(keyDir: string): AuditKeys {
  const keys = generateAuditKeys();
  storeKeyInDir(keyDir, keys);
  return keys;
}

/** Reads a private key file and checks its mode and its content against the fingerprint it claims. */
export function readPrivateKeyFile(file: string, expectedFingerprint?: string): AuditKeys {
  const mode = fs.statSync(file).mode & 0o777;
  if ((mode & 0o077) !== 0) {
    throw new KeyCustodyError(`audit key: ${file} is readable by others (mode ${mode.toString(8)}); run: chmod 600 ${file}`);
  }
  const keys = keysFromPrivatePem(fs.readFileSync(file, "utf8"));
  if (expectedFingerprint && keys.fingerprint !== expectedFingerprint) {
    throw new KeyCustodyError(
      `audit key: ${file} holds key ${keys.fingerprint}, not ${expectedFingerprint} as its name says (renamed file?)`,
    );
  }
  return keys;
}

/** The key with this fingerprint from the key directory, or null when the directory has no file for it. */
export function loadKeyFromDir(keyDir: string, fingerprint: string): AuditKeys | null {
  const file = keyFilePath(keyDir, fingerprint);
  if (!fs.existsSync(file)) return null;
  return readPrivateKeyFile(file, fingerprint);
}

// ---------------------------------------------------------------------------------------------------------
// The public key in the data directory.

/** Writes (or atomically replaces) the data directory's public key file with `key`'s, unless it already holds it. */
export function writePublicKeyFile(dataDir: string, key: Pick<AuditPublicKey, "publicKeyPem" | "fingerprint">): void {
  const target = path.join(dataDir, PUBLIC_KEY_FILE);
  if (fs.existsSync(target)) {
    try {
      if (parseAuditPublicKey(fs.readFileSync(target, "utf8")).fingerprint === key.fingerprint) return;
    } catch {
      // unreadable: replace it
    }
  }
  fs.mkdirSync(dataDir, { recursive: true });
  writeFileAtomic(target, key.publicKeyPem, { mode: 0o644 });
}

/** Reads only the public half from a data directory (what a verifier needs; no private key access). */
export function loadAuditPublicKey(dataDir: string): AuditPublicKey {
  return parseAuditPublicKey(fs.readFileSync(path.join(dataDir, PUBLIC_KEY_FILE), "utf8"));
}

export function signBytes(keys: Pick<AuditKeys, "privateKey">, bytes: Uint8Array | string): string {
  return crypto.sign(null, typeof bytes === "string" ? Buffer.from(bytes, "utf8") : bytes, keys.privateKey).toString("base64");
}

/** True when `signatureB64` is a valid Ed25519 signature of `bytes` by `publicKey`; never throws on bad input. */
export function verifyBytes(publicKey: KeyObject, bytes: Uint8Array | string, signatureB64: string): boolean {
  try {
    const sig = Buffer.from(signatureB64, "base64");
    if (sig.length !== 64 || sig.toString("base64") !== signatureB64) return false;
    return crypto.verify(null, typeof bytes === "string" ? Buffer.from(bytes, "utf8") : bytes, publicKey, sig);
  } catch {
    return false;
  }
}
