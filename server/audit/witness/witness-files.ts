/**
 * What a witness keeps in its key directory D (its own machine, not the log's):
 *   witness-ed25519.key  PKCS8 PEM private key, mode 0600, created once on first start, never overwritten;
 *   witness-name         the witness's key name (part of its key ID, so it never changes once written);
 *   logs/<hex(origin)>.json  per log origin: the latest cosigned checkpoint (size, root, note, cosignature);
 *   evidence.jsonl       validly signed checkpoints it refused (rollback, fork, bad proof): proof of misbehaviour;
 *   witness.lock         pid of the serving process, so two witnesses never share one state.
 * Invariants: state files are replaced atomically (temp file, fsync, rename, fsync of the directory), so a crash
 * leaves either the old or the new state, never a torn one (server/fs/atomic-write.ts). Created files are written
 * with exact modes.
 */
import crypto, { type KeyObject } from "node:crypto";
import fs from "node:fs";
import os from "node:os";
import path from "node:path";
import { writeFileAtomic } from "@/server/fs/atomic-write";
import { type VerifierKey, SIG_TYPE_COSIGNATURE_V1, checkKeyName, verifierKeyFrom } from "./note";

export const WITNESS_KEY_FILE = "witness-ed25519.key";
export const WITNESS_NAME_FILE = "witness-name";
export const WITNESS_LOCK_FILE = "witness.lock";
export const WITNESS_EVIDENCE_FILE = "evidence.jsonl";

export type WitnessIdentity = { name: string; privateKey: KeyObject; verifierKey: VerifierKey };

function defaultWitnessName(publicKey: KeyObject): string {
  const host =
    os
      .hostname()
      .toLowerCase()
      .replace(/[^a-z0-9.-]/g, "-") || "localhost";
  const tag = crypto
    .createHash("sha256")
    .update(publicKey.export({ type: "spki", format: "der" }))
    .digest("hex")
    .slice(0, 8);
  return `${host}/runledger-witness-${tag}`;
}

/** Loads the witness key and name from `keyDir`, creating them on first use. `name` must match a stored one. */
export function loadOrCreateWitnessIdentity(keyDir: string, name?: string): { identity: WitnessIdentity; created: boolean } {
  if (name !== undefined) checkKeyName(name);
  fs.mkdirSync(keyDir, { recursive: true, mode: 0o700 });
  const keyPath = path.join(keyDir, WITNESS_KEY_FILE);
  const namePath = path.join(keyDir, WITNESS_NAME_FILE);
  let created = false;
  if (!fs.existsSync(keyPath)) {
    const pem = crypto.generateKeyPairSync("ed25519").privateKey.export({ type: "pkcs8", format: "pem" }).toString();
    created = writeFileAtomic(keyPath, pem, { mode: 0o600, createOnly: true });
  }
  const mode = fs.statSync(keyPath).mode & 0o777;
  if (mode & 0o077) throw new Error(`witness key ${keyPath} is readable by others (mode ${mode.toString(8)}); run: chmod 600 ${keyPath}`);
  const privateKey = crypto.createPrivateKey(fs.readFileSync(keyPath, "utf8"));
  if (privateKey.asymmetricKeyType !== "ed25519") throw new Error(`witness key ${keyPath} is not an Ed25519 key`);
  if (!fs.existsSync(namePath))
    writeFileAtomic(namePath, `${name ?? defaultWitnessName(crypto.createPublicKey(privateKey))}\n`, { mode: 0o644, createOnly: true });
  const stored = fs.readFileSync(namePath, "utf8").trim();
  checkKeyName(stored);
  if (name !== undefined && name !== stored) {
    throw new Error(`this witness is named "${stored}" (${namePath}); its name is part of its key ID and cannot become "${name}"`);
  }
  const verifierKey = verifierKeyFrom(stored, SIG_TYPE_COSIGNATURE_V1, crypto.createPublicKey(privateKey));
  return { identity: { name: stored, privateKey, verifierKey }, created };
}

export type WitnessLogState = {
  origin: string;
  treeSize: number;
  rootHash: string; // hex
  /** The cosigned checkpoint's note text and the log signature lines that verified. */
  noteText: string;
  logSignatures: string[];
  /** This witness's cosignature line over noteText. */
  cosignature: string;
  cosignedAt: string;
};

function stateFile(keyDir: string, origin: string): string {
  return path.join(keyDir, "logs", `${Buffer.from(origin, "utf8").toString("hex")}.json`);
}

export function readLogState(keyDir: string, origin: string): WitnessLogState | null {
  const file = stateFile(keyDir, origin);
  if (!fs.existsSync(file)) return null;
  const state = JSON.parse(fs.readFileSync(file, "utf8")) as WitnessLogState;
  if (state.origin !== origin || !Number.isSafeInteger(state.treeSize) || !/^[0-9a-f]{64}$/.test(state.rootHash)) {
    throw new Error(`witness state ${file} is corrupt (refusing to guess the log's last cosigned size)`);
  }
  return state;
}

export function writeLogState(keyDir: string, state: WitnessLogState): void {
  const file = stateFile(keyDir, state.origin);
  fs.mkdirSync(path.dirname(file), { recursive: true, mode: 0o700 });
  writeFileAtomic(file, `${JSON.stringify(state, null, 2)}\n`, { mode: 0o600 });
}

export function appendEvidence(keyDir: string, entry: Record<string, unknown>): void {
  fs.appendFileSync(path.join(keyDir, WITNESS_EVIDENCE_FILE), `${JSON.stringify({ at: new Date().toISOString(), ...entry })}\n`, {
    mode: 0o600,
  });
}

function processAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (err) {
    return (err as NodeJS.ErrnoException).code === "EPERM";
  }
}

/** Takes the key directory's lock for this process (a stale lock of a dead process is taken over). Returns a release function. */
export function lockWitnessDir(keyDir: string): () => void {
  const file = path.join(keyDir, WITNESS_LOCK_FILE);
  for (let attempt = 0; attempt < 2; attempt++) {
    try {
      fs.writeFileSync(file, `${process.pid}\n`, { flag: "wx", mode: 0o600 });
      return () => fs.rmSync(file, { force: true });
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== "EEXIST") throw err;
      const pid = Number(fs.readFileSync(file, "utf8").trim());
      if (Number.isInteger(pid) && pid > 0 && pid !== process.pid && processAlive(pid)) {
        throw new Error(`another witness (pid ${pid}) is serving from ${keyDir}; two witnesses must never share one state`);
      }
      fs.rmSync(file, { force: true });
    }
  }
  throw new Error(`could not lock ${file}`);
}
