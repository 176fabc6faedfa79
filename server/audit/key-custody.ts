/**
 * Key custody: which key signs a ledger, where it may live, and moving a key out of an old data directory.
 *
 * Invariants:
 * - The ledger says which key signs it (key-rotation.ts `ledgerKeyFingerprint`: the latest rotation's new key,
 *   else the latest checkpoint's key). That key is loaded from the key directory by its fingerprint; if it is not
 *   there, start is refused with a message naming the fingerprint, the directory and how to restore it.
 *   A ledger that nothing has signed yet keeps the key its data directory's public key names (if the key directory
 *   has it), else gets a new key.
 * - A private key inside the data directory (the old layout `audit-ed25519.key`, or a key directory placed inside
 *   the data directory) is refused unless RUNLEDGER_ALLOW_KEY_IN_DATA_DIR=1: a copy or backup of the data directory
 *   would carry the key that can rewrite its history.
 * - The signing keys handed to the server are LIVE: each use re-reads (two indexed queries) which key the ledger
 *   says is in force, so a rotation made by the CLI while the server runs is picked up, and the server never signs
 *   with a key the ledger has retired (if the new key cannot be loaded, signing fails with the reason).
 */
import fs from "node:fs";
import path from "node:path";
import type { Db } from "@/db/client";
import {
  type AuditKeys,
  type AuditPublicKey,
  KeyCustodyError,
  LEGACY_PRIVATE_KEY_FILE,
  PUBLIC_KEY_FILE,
  createKeyInDir,
  keyFileName,
  keyFilePath,
  keysFromPrivatePem,
  loadAuditPublicKey,
  loadKeyFromDir,
  parseAuditPublicKey,
  readPrivateKeyFile,
  storeKeyInDir,
  writePublicKeyFile,
} from "./keys";
import { KEY_ROTATE_ACTION, ledgerKeyFingerprint, rotationNewFingerprint } from "./key-rotation";
import { asStore, reader, type Store } from "@/db/store";
import { SigningKeyNotHeldError, type LedgerFollowingKeys } from "./checkpoints";
import { desc, eq } from "drizzle-orm";

export const ALLOW_KEY_IN_DATA_DIR_ENV = "RUNLEDGER_ALLOW_KEY_IN_DATA_DIR";

/**
 * The server's signing keys: AuditKeys whose fields always belong to the key the ledger has in force. `held()` is the
 * public part of the key last loaded, without following the ledger: on SQLite, once the ledger names a key the key
 * directory lacks, the fields throw (KeyCustodyError) and `held()` is the key the server signed with before (a key of
 * the ledger's chain, so the Audit page can still judge checkpoints and say what is missing).
 */
export type SigningKeys = AuditKeys & { readonly keyDir: string; current(): AuditKeys; held(): AuditPublicKey };

function publicPartOf(keys: AuditKeys): AuditPublicKey {
  return { publicKey: keys.publicKey, publicKeyPem: keys.publicKeyPem, fingerprint: keys.fingerprint };
}

function realish(p: string): string {
  const abs = path.resolve(p);
  try {
    return fs.realpathSync(abs);
  } catch {
    return abs;
  }
}

export function isInside(dir: string, maybeChild: string): boolean {
  const rel = path.relative(realish(dir), realish(maybeChild));
  return rel === "" || (!rel.startsWith("..") && !path.isAbsolute(rel));
}

const WHY =
  "A copy or backup of the data directory would then carry the key that can rewrite the audit history and re-sign it, so its signatures would prove nothing.";

function moveHint(dataDir: string, keyDir: string): string {
  return `Move it out: npm run cli -- audit move-key --data-dir ${dataDir} --key-dir ${keyDir}\n(or set ${ALLOW_KEY_IN_DATA_DIR_ENV}=1 to keep it there knowingly).`;
}

/** Refuses a private key inside the data directory unless explicitly allowed; returns the allowed legacy key file, if any. */
export function checkKeyPlacement(dataDir: string, keyDir: string, env: NodeJS.ProcessEnv = process.env): string | null {
  const allowed = env[ALLOW_KEY_IN_DATA_DIR_ENV] === "1";
  if (!allowed && isInside(dataDir, keyDir)) {
    throw new KeyCustodyError(
      `Runledger refuses to start: the key directory ${keyDir} is inside the data directory ${dataDir}.\n${WHY}\n` +
        `Set RUNLEDGER_KEY_DIR (or --key-dir) to a directory outside it (default: ~/.config/runledger/keys), or set ${ALLOW_KEY_IN_DATA_DIR_ENV}=1 to accept the risk.`,
    );
  }
  const legacy = path.join(dataDir, LEGACY_PRIVATE_KEY_FILE);
  if (!fs.existsSync(legacy)) return null;
  if (!allowed) {
    throw new KeyCustodyError(
      `Runledger refuses to start: the audit signing key is inside the data directory (${legacy}).\n${WHY}\n${moveHint(dataDir, keyDir)}`,
    );
  }
  return legacy;
}

function missingKey(fingerprint: string, dataDir: string, keyDir: string, doing: string): KeyCustodyError {
  return new KeyCustodyError(
    `Runledger ${doing}: the audit ledger in ${dataDir} is signed with key ${fingerprint}, but the key directory ${keyDir} has no ${keyFileName(fingerprint)}.\n` +
      `Restore that file from your key backup into ${keyDir} (mode 0600), or point RUNLEDGER_KEY_DIR (or --key-dir) at the directory that holds it.\n` +
      `If the data directory still has the old layout (${LEGACY_PRIVATE_KEY_FILE}), run: npm run cli -- audit move-key --data-dir ${dataDir} --key-dir ${keyDir}\n` +
      `Without that key the signed history cannot be extended: a new key is only valid when the old one endorses it.`,
  );
}

/**
 * Opens the signing keys of the ledger in `db` (data directory `dataDir`), creating the key directory and, for a
 * new ledger, a new key. Writes the current public key to the data directory. Throws KeyCustodyError with the
 * reason and the fix when the key is misplaced or missing.
 */
export function openAuditSigningKeys(db: Db, opts: { dataDir: string; keyDir: string; env?: NodeJS.ProcessEnv }): SigningKeys {
  const { dataDir, keyDir } = opts;
  const legacyFile = checkKeyPlacement(dataDir, keyDir, opts.env);
  const legacy = legacyFile ? readPrivateKeyFile(legacyFile) : null;
  const find = (fp: string): AuditKeys | null => loadKeyFromDir(keyDir, fp) ?? (legacy?.fingerprint === fp ? legacy : null);

  const choose = (create: boolean): AuditKeys | null => {
    const fp = ledgerKeyFingerprint(db);
    if (fp) {
      const inForce = find(fp);
      if (!inForce) throw missingKey(fp, dataDir, keyDir, "refuses to start");
      return inForce;
    }
    // Nothing signed yet: keep the key this data directory already names, else a new key for a new ledger.
    let named: string | null = null;
    try {
      named = loadAuditPublicKey(dataDir).fingerprint;
    } catch {
      // no (readable) public key file yet
    }
    return (named ? find(named) : null) ?? legacy ?? (create ? createKeyInDir(keyDir) : null);
  };
  let initial = choose(false);
  if (initial) writePublicKeyFile(dataDir, initial);
  else {
    // A new key for a new ledger is created and named in the data directory under the database's write lock, the
    // choice made again inside it: processes starting together on a new data directory (web servers, workers, the
    // CLI) would otherwise each create a key and overwrite each other's public key file. The first creates the key;
    // the others find the public key file naming it.
    initial = db.$client
      .transaction((): AuditKeys => {
        const chosen = choose(true)!;
        writePublicKeyFile(dataDir, chosen);
        return chosen;
      })
      .immediate();
  }

  let keys = initial;
  const current = (): AuditKeys => {
    const fp = ledgerKeyFingerprint(db);
    if (fp !== null && fp !== keys.fingerprint) {
      const next = find(fp);
      if (!next) throw missingKey(fp, dataDir, keyDir, `refuses to sign with the retired key ${keys.fingerprint}`);
      keys = next;
      writePublicKeyFile(dataDir, next);
    }
    return keys;
  };
  const live = {} as SigningKeys;
  Object.defineProperties(live, {
    privateKey: { enumerable: true, get: () => current().privateKey },
    publicKey: { enumerable: true, get: () => current().publicKey },
    publicKeyPem: { enumerable: true, get: () => current().publicKeyPem },
    fingerprint: { enumerable: true, get: () => current().fingerprint },
    keyDir: { enumerable: false, value: keyDir },
    current: { enumerable: false, value: current },
    held: { enumerable: false, value: () => publicPartOf(keys) },
  });
  return live;
}

export type MoveKeyResult = { fingerprint: string; from: string; to: string };

/**
 * `audit move-key`: moves the old layout's private key (`audit-ed25519.key` in the data directory) into the key
 * directory under its fingerprint name, reads it back, then deletes it from the data directory. The public key
 * file stays (it is public). Idempotent for the key file: an identical key already there is fine.
 */
export function moveKeyToKeyDir(dataDir: string, keyDir: string): MoveKeyResult {
  if (isInside(dataDir, keyDir))
    throw new KeyCustodyError(`the key directory ${keyDir} is inside the data directory ${dataDir}; choose one outside it`);
  const from = path.join(dataDir, LEGACY_PRIVATE_KEY_FILE);
  if (!fs.existsSync(from)) throw new KeyCustodyError(`no private key to move: ${from} does not exist (already moved?)`);
  const keys = keysFromPrivatePem(fs.readFileSync(from, "utf8"));
  const to = storeKeyInDir(keyDir, keys); // reads it back and checks the fingerprint
  if (!fs.existsSync(path.join(dataDir, PUBLIC_KEY_FILE))) writePublicKeyFile(dataDir, keys);
  fs.rmSync(from);
  return { fingerprint: keys.fingerprint, from, to };
}

/** The latest "audit.keyRotate" event's payload, if the ledger has one. */
async function latestKeyRotationOn(store: Store): Promise<{ payload: string } | undefined> {
  const e = store.tables.auditEvents;
  const [rotation] = await reader(store)
    .select({ payload: e.payload })
    .from(e)
    .where(eq(e.action, KEY_ROTATE_ACTION))
    .orderBy(desc(e.seq))
    .limit(1);
  return rotation;
}

/** ledgerKeyFingerprint on either store: the latest rotation's new key, else the latest checkpoint's key, else null. */
export async function ledgerKeyFingerprintOn(source: Store | Db): Promise<string | null> {
  const store = asStore(source);
  if (store.dialect === "sqlite") return ledgerKeyFingerprint(store.db);
  const c = store.tables.auditCheckpoints;
  const rotation = await latestKeyRotationOn(store);
  if (rotation) return rotationNewFingerprint(rotation.payload);
  const [latest] = await reader(store).select({ fp: c.keyFingerprint }).from(c).orderBy(desc(c.id)).limit(1);
  return latest?.fp ?? null;
}

/** The fingerprints of the private keys in a key directory (files named `ed25519-<hex>.key`). */
export function keyFingerprintsInDir(keyDir: string): string[] {
  if (!fs.existsSync(keyDir)) return [];
  return fs
    .readdirSync(keyDir)
    .map((name) => /^ed25519-([0-9a-f]{64})\.key$/.exec(name)?.[1])
    .filter((hex): hex is string => hex !== undefined)
    .map((hex) => `SHA256:${hex}`);
}

/**
 * The signing keys of a web server on the PostgreSQL store (issue 16). There is no shared data directory there: every
 * web server has its own key directory, and the ledger alone says which key signs.
 * - The ledger names a key: it must be in this key directory, else start is refused (the message says which key and
 *   that it is copied from the server that has it). Two servers can never sign with two keys: a checkpoint is refused
 *   unless the previous one verifies under the signing key (checkpoints.ts rootOfCheckedLog), under the ledger lock.
 * - Nothing signed yet: the key directory's one key, else a new key. Several keys and no ledger choice is refused.
 * - Key rotation while running (`audit rotate-key` on another machine): before each signature the signer calls
 *   `followLedger` (checkpoints.ts keysToSignWith), which re-reads the key the ledger names (two indexed queries). A
 *   new key found in the key directory is taken (and its public key written to `localDir`); a missing one makes the
 *   server sign nothing (SigningKeyNotHeldError), say once which file to copy, and refuse its retired private key to
 *   every other user (the witness note); it takes the key at the first signature after the file is copied.
 * `current()` and the fields are the key last followed. `localDir` gets the public key file, for operators and
 * `audit verify --public-key`.
 */
export async function openAuditSigningKeysOn(
  source: Store | Db,
  opts: { localDir: string; keyDir: string; env?: NodeJS.ProcessEnv; log?: (line: string) => void },
): Promise<SigningKeys> {
  const store = asStore(source);
  if (store.dialect === "sqlite") return openAuditSigningKeys(store.db, { dataDir: opts.localDir, keyDir: opts.keyDir, env: opts.env });
  const { keyDir, localDir } = opts;
  const log = opts.log ?? ((line: string) => console.error(line));
  const inForce = await ledgerKeyFingerprintOn(store);
  let keys: AuditKeys;
  if (inForce) {
    const found = loadKeyFromDir(keyDir, inForce);
    if (!found)
      throw new KeyCustodyError(
        `audit key: the ledger in PostgreSQL is signed by ${inForce}, and this server's key directory ${keyDir} has no ${keyFileName(inForce)}. ` +
          `Every web server of one installation signs with the same key: copy that file (mode 0600) from the key directory of the ` +
          `server that has it. This server refuses to start rather than sign with another key.`,
      );
    keys = found;
  } else {
    const present = keyFingerprintsInDir(keyDir);
    if (present.length > 1)
      throw new KeyCustodyError(
        `audit key: nothing is signed in this PostgreSQL ledger yet and the key directory ${keyDir} holds ${present.length} keys ` +
          `(${present.join(", ")}); keep only the one every web server of this installation shares.`,
      );
    keys = present.length === 1 ? loadKeyFromDir(keyDir, present[0]!)! : createKeyInDir(keyDir);
  }
  fs.mkdirSync(localDir, { recursive: true });
  writePublicKeyFile(localDir, keys);

  /** The refusal while the ledger names a key this directory lacks (said once per missing key), else null. */
  let missing: { fingerprint: string; message: string } | null = null;
  const followLedger = async (): Promise<AuditKeys> => {
    const fp = await ledgerKeyFingerprintOn(store);
    if (fp === null || fp === keys.fingerprint) {
      missing = null;
      return keys;
    }
    const next = loadKeyFromDir(keyDir, fp);
    if (!next) {
      if (missing?.fingerprint !== fp) {
        missing = {
          fingerprint: fp,
          message:
            `audit key: the ledger's signing key is now ${fp} (a key rotation), and this server's key directory ${keyDir} has no ` +
            `${keyFileName(fp)}. This server signs no checkpoint until that file is copied there (mode 0600) from the key directory ` +
            `of the machine that ran audit rotate-key; it never signs with the retired key ${keys.fingerprint}.`,
        };
        log(missing.message);
      }
      throw new SigningKeyNotHeldError(missing.message);
    }
    missing = null;
    keys = next;
    writePublicKeyFile(localDir, next);
    log(`audit key: the ledger's signing key is now ${fp} (a key rotation); this server signs with ${keyFilePath(keyDir, fp)}`);
    return keys;
  };
  const current = (): AuditKeys => keys;
  const live = {} as SigningKeys & LedgerFollowingKeys;
  Object.defineProperties(live, {
    privateKey: {
      enumerable: true,
      get: () => {
        // A key the ledger has retired is never handed out once this server knows it (e.g. to sign a witness note).
        if (missing) throw new SigningKeyNotHeldError(missing.message);
        return keys.privateKey;
      },
    },
    publicKey: { enumerable: true, get: () => keys.publicKey },
    publicKeyPem: { enumerable: true, get: () => keys.publicKeyPem },
    fingerprint: { enumerable: true, get: () => keys.fingerprint },
    keyDir: { enumerable: false, value: keyDir },
    current: { enumerable: false, value: current },
    held: { enumerable: false, value: () => publicPartOf(keys) },
    followLedger: { enumerable: false, value: followLedger },
  });
  return live;
}

/**
 * The public key the ledger has in force, for `witness log-key` on PostgreSQL: the latest rotation's new key (its
 * payload carries the public key), else the key of the checkpoints, read from the key directory (the ledger keeps only
 * its fingerprint); nothing signed yet, the key directory's only key (the one the web servers will sign with).
 */
export async function ledgerPublicKeyOn(source: Store | Db, keyDir: string): Promise<AuditPublicKey> {
  const store = asStore(source);
  const rotation = await latestKeyRotationOn(store);
  if (rotation) {
    const pem = (JSON.parse(rotation.payload) as { newPublicKeyPem?: unknown }).newPublicKeyPem;
    if (typeof pem !== "string") throw new Error("the latest audit.keyRotate event carries no new public key (damaged ledger?)");
    const key = parseAuditPublicKey(pem);
    if (key.fingerprint !== rotationNewFingerprint(rotation.payload))
      throw new Error("the latest audit.keyRotate event's new public key does not match its fingerprint (damaged ledger?)");
    return key;
  }
  const inForce = await ledgerKeyFingerprintOn(store);
  const present = keyFingerprintsInDir(keyDir);
  const fp = inForce ?? (present.length === 1 ? present[0]! : null);
  const keys = fp ? loadKeyFromDir(keyDir, fp) : null;
  if (!keys)
    throw new KeyCustodyError(
      inForce
        ? `the ledger is signed by ${inForce}, and the key directory ${keyDir} has no ${keyFileName(inForce)} to read its public key from (--key-dir or RUNLEDGER_KEY_DIR)`
        : `nothing is signed in this ledger yet, and the key directory ${keyDir} holds ${present.length} keys instead of the one the web servers share`,
    );
  return publicPartOf(keys);
}
