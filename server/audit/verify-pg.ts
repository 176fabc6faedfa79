/**
 * `audit verify` of a PostgreSQL store (issue 16), with the same verifier as a data directory: every level (hash
 * chain, signed checkpoints and key rotations, content recomputed against the ledger, witness anchors), through a
 * SQLite copy of one snapshot.
 *
 * 1. One REPEATABLE READ, READ ONLY transaction on PostgreSQL: every table and artifact is copied from that snapshot
 *    into a new SQLite data directory under the system's temporary directory (server/backup/pg-snapshot.ts).
 * 2. In the same snapshot, store-copy-check.ts proves the copy equal to it: per table the row count and SHA-256 over
 *    each row's canonical JSON, the ledger streamed from PostgreSQL through the verifier with its Merkle roots
 *    compared with the copy's at every checkpoint size and at the head, and each artifact re-hashed on PostgreSQL.
 *    The protective triggers are checked on PostgreSQL itself (verify-triggers-pg.ts): the copy's own triggers
 *    prove nothing about the store's.
 * 3. verify-database.ts verifies the copy as it verifies any data directory. A copy that differs from the snapshot
 *    fails the verification, each difference named.
 *
 * The public key is never read from the store (the store is what is being checked): it is given (`--public-key`)
 * or taken from a trusted checkpoint. Nothing is written to PostgreSQL; the copy is removed afterwards unless kept.
 */
import fs from "node:fs";
import os from "node:os";
import path from "node:path";
import { checkedPgSnapshot, PgSnapshotRefused, type PgSnapshotSummary } from "@/server/backup/pg-snapshot";
import { redactUrl } from "@/server/backup/migrate-store";
import { PUBLIC_KEY_FILE } from "./keys";
import { checkTriggersPg } from "./verify-triggers-pg";
import { verifyDatabase, type VerifyDatabaseOptions } from "./verify-database";
import type { VerifyResult } from "./verify-types";

export type VerifyPgOptions = Omit<VerifyDatabaseOptions, "dataDir" | "triggerCheck"> & {
  /** The installation's artifacts live in this shared directory, not in PostgreSQL's artifact store. */
  artifactsDir?: string;
  /** Keep the SQLite copy in this new directory (to inspect it) instead of a temporary one that is removed. */
  keepCopyIn?: string;
  onProgressLine?: (line: string) => void;
};

export type VerifyPgResult = VerifyResult & {
  store: {
    url: string;
    snapshot: PgSnapshotSummary;
    /** The copy equals the snapshot (tables, ledger roots, artifacts); each difference otherwise. */
    copyEqual: boolean;
    copyDifferences: string[];
    copyCheckMs: number;
    /** Where the copy was kept, or null when it was removed. */
    keptIn: string | null;
  };
};

export class VerifyPgRefused extends Error {}

/** A new directory for a store's SQLite copy: `keep` (must be new or empty), else one under the temporary directory. */
export function copyDirectory(keep: string | undefined, prefix: string): string {
  if (!keep) return fs.mkdtempSync(path.join(os.tmpdir(), prefix));
  const dir = path.resolve(keep);
  if (fs.existsSync(dir) && fs.readdirSync(dir).length > 0) throw new VerifyPgRefused(`${dir} is not empty: give a new directory`);
  fs.mkdirSync(dir, { recursive: true });
  return dir;
}

export async function verifyPgStore(url: string, opts: VerifyPgOptions): Promise<VerifyPgResult> {
  const publicKeyPem = opts.publicKeyPem ?? opts.trustedCheckpoint?.publicKeyPem;
  if (!publicKeyPem)
    throw new VerifyPgRefused(
      "a PostgreSQL store is verified against a key you hold, never one read from the store: give --public-key FILE (the signing key's audit-ed25519.pub) or --trusted-checkpoint FILE",
    );
  if (opts.artifactsDir && !fs.existsSync(opts.artifactsDir))
    throw new VerifyPgRefused(`artifact directory not found: ${opts.artifactsDir}`);
  const dir = copyDirectory(opts.keepCopyIn, "runledger-verify-pg-");
  try {
    fs.writeFileSync(path.join(dir, PUBLIC_KEY_FILE), publicKeyPem);
    let taken;
    try {
      taken = await checkedPgSnapshot(url, dir, {
        artifactsDir: opts.artifactsDir,
        inSnapshot: checkTriggersPg,
        onProgress: opts.onProgressLine,
      });
    } catch (err) {
      if (err instanceof PgSnapshotRefused) throw new VerifyPgRefused(`${redactUrl(url)}: ${err.message}`);
      throw err;
    }
    const { snapshot, copyDifferences, copyCheckMs, extra: triggerCheck } = taken;
    const result = await verifyDatabase(dir, { ...opts, triggerCheck });
    const problems = copyDifferences.map((d) => `the verified copy differs from PostgreSQL's snapshot: ${d}`);
    return {
      ...result,
      ok: result.ok && problems.length === 0,
      problem: result.problem ?? problems[0] ?? null,
      problems: [...problems, ...result.problems],
      notes: [
        `PostgreSQL store ${redactUrl(url)}: one snapshot (${snapshot.rows} rows${snapshot.artifacts ? `, ${snapshot.artifacts.count} artifacts` : ""}) copied into SQLite in ${snapshot.copyMs} ms and compared with it (every table's row digest, the ledger's Merkle roots${opts.artifactsDir ? "" : ", every artifact's hash"}) before the checks below ran on the copy`,
        ...result.notes,
      ],
      store: {
        url: redactUrl(url),
        snapshot,
        copyEqual: problems.length === 0,
        copyDifferences,
        copyCheckMs,
        keptIn: opts.keepCopyIn ? dir : null,
      },
    };
  } finally {
    if (!opts.keepCopyIn) fs.rmSync(dir, { recursive: true, force: true });
  }
}
