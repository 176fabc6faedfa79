/**
 * The server's Ed25519 audit key pair, kept in the data directory.
 *
 * Invariants:
 * - `audit-ed25519.key` (PKCS8 PEM, mode 0600) is created once, on first start, and never overwritten;
 *   `audit-ed25519.pub` (SPKI PEM) is derived from it and must match it.
 * - Files are written to a temporary name and hard-linked into place, so two processes starting together
 *   cannot both create a key or see a half-written file: the loser of the race reads the winner's key.
 * - fingerprint = "SHA256:" + sha256 hex of the SPKI DER of the public key.
 * Signatures are Ed25519 over raw bytes (crypto.sign(null, ...)), base64-encoded.
 */
import crypto, { type KeyObject } from "node:crypto";
import fs from "node:fs";
import path from "node:path";

export const PRIVATE_KEY_FILE = "audit-ed25519.key";
export const PUBLIC_KEY_FILE = "audit-ed25519.pub";

export type AuditPublicKey = { publicKey: KeyObject; publicKeyPem: string; fingerprint: string };
export type AuditKeys = AuditPublicKey & { privateKey: KeyObject };

export function publicKeyFingerprint(publicKey: KeyObject): string {
  const der = publicKey.export({ type: "spki", format: "der" });
  return "SHA256:" + crypto.createHash("sha256").update(der).digest("hex");
}

/** Parses an SPKI PEM and checks it is an Ed25519 key. */
export function parseAuditPublicKey(pem: string): AuditPublicKey {
  const publicKey = crypto.createPublicKey(pem);
  if (publicKey.asymmetricKeyType !== "ed25519") throw new Error(`audit key: expected an Ed25519 public key, got ${publicKey.asymmetricKeyType}`);
  const publicKeyPem = publicKey.export({ type: "spki", format: "pem" }).toString();
  return { publicKey, publicKeyPem, fingerprint: publicKeyFingerprint(publicKey) };
}

function keysFromPrivate(privateKey: KeyObject): AuditKeys {
  if (privateKey.asymmetricKeyType !== "ed25519") throw new Error(`audit key: expected an Ed25519 private key, got ${privateKey.asymmetricKeyType}`);
  const publicKey = crypto.createPublicKey(privateKey);
  const publicKeyPem = publicKey.export({ type: "spki", format: "pem" }).toString();
  return { privateKey, publicKey, publicKeyPem, fingerprint: publicKeyFingerprint(publicKey) };
}

/** A fresh key pair that is not stored anywhere (tests, and proving a foreign key is rejected). */
export function generateAuditKeys(): AuditKeys {
  return keysFromPrivate(crypto.generateKeyPairSync("ed25519").privateKey);
}

/** Writes `content` to `target` only if it does not exist yet; returns false if another writer got there first. */
function writeOnce(target: string, content: string, mode: number): boolean {
  const tmp = `${target}.${process.pid}.${crypto.randomBytes(6).toString("hex")}.tmp`;
  const fd = fs.openSync(tmp, "wx", mode);
  try {
    fs.writeSync(fd, content);
    fs.fsyncSync(fd);
  } finally {
    fs.closeSync(fd);
  }
  fs.chmodSync(tmp, mode); // the umask may have narrowed it; make it exact
  try {
    fs.linkSync(tmp, target); // atomic, and fails if the target exists
    return true;
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === "EEXIST") return false;
    throw err;
  } finally {
    fs.rmSync(tmp, { force: true });
  }
}

/** Loads the audit key pair from `dataDir`, creating it on first start. */
export function loadOrCreateAuditKeys(dataDir: string): AuditKeys {
  fs.mkdirSync(dataDir, { recursive: true });
  const privatePath = path.join(dataDir, PRIVATE_KEY_FILE);
  const publicPath = path.join(dataDir, PUBLIC_KEY_FILE);

  if (!fs.existsSync(privatePath)) {
    const fresh = generateAuditKeys();
    const pem = fresh.privateKey.export({ type: "pkcs8", format: "pem" }).toString();
    writeOnce(privatePath, pem, 0o600);
  }
  const keys = keysFromPrivate(crypto.createPrivateKey(fs.readFileSync(privatePath, "utf8")));

  if (!fs.existsSync(publicPath)) writeOnce(publicPath, keys.publicKeyPem, 0o644);
  const stored = parseAuditPublicKey(fs.readFileSync(publicPath, "utf8"));
  if (stored.fingerprint !== keys.fingerprint) {
    throw new Error(`audit key: ${publicPath} (${stored.fingerprint}) does not match ${privatePath} (${keys.fingerprint})`);
  }
  return keys;
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
