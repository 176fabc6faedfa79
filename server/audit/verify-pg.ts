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
import Database from "better-sqlite3";
import { openPgDatabase } from "@/db/pg-client";
import { snapshotPgIntoDataDir, type PgSnapshotSummary } from "@/server/backup/pg-snapshot";
import { checkStoreCopy } from "@/server/backup/store-copy-check";
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

export async function verifyPgStore(url: string, opts: VerifyPgOptions): Promise<VerifyPgResult> {
  const publicKeyPem = opts.publicKeyPem ?? opts.trustedCheckpoint?.publicKeyPem;
  if (!publicKeyPem)
    throw new VerifyPgRefused(
      "a PostgreSQL store is verified against a key you hold, never one read from the store: give --public-key FILE (the signing key's audit-ed25519.pub) or --trusted-checkpoint FILE",
    );
  if (opts.artifactsDir && !fs.existsSync(opts.artifactsDir))
    throw new VerifyPgRefused(`artifact directory not found: ${opts.artifactsDir}`);
  const progress = opts.onProgressLine ?? (() => undefined);
  const dir = opts.keepCopyIn ? path.resolve(opts.keepCopyIn) : fs.mkdtempSync(path.join(os.tmpdir(), "runledger-verify-pg-"));
  if (opts.keepCopyIn) {
    if (fs.existsSync(dir) && fs.readdirSync(dir).length > 0) throw new VerifyPgRefused(`${dir} is not empty: give a new directory`);
    fs.mkdirSync(dir, { recursive: true });
  }
  const pool = openPgDatabase(url, { max: 1 }).$client;
  try {
    fs.writeFileSync(path.join(dir, PUBLIC_KEY_FILE), publicKeyPem);
    const client = await pool.connect();
    let snapshot: PgSnapshotSummary;
    let triggerCheck: Awaited<ReturnType<typeof checkTriggersPg>>;
    let copyDifferences: string[];
    let copyCheckMs: number;
    try {
      await client.query("BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY");
      const ours = await client.query<{ t: string | null }>("SELECT to_regclass('audit_events')::text AS t");
      if (ours.rows[0]!.t === null) throw new VerifyPgRefused(`${redactUrl(url)} holds no Runledger store (no audit_events table)`);
      snapshot = await snapshotPgIntoDataDir({ client, dataDir: dir, artifacts: !opts.artifactsDir, onProgress: progress });
      if (opts.artifactsDir) fs.symlinkSync(path.resolve(opts.artifactsDir), path.join(dir, "artifacts"), "dir");
      triggerCheck = await checkTriggersPg(client);
      const copy = new Database(path.join(dir, "runledger.sqlite"), { readonly: true, fileMustExist: true });
      try {
        copy.prepare("BEGIN").run();
        const check = await checkStoreCopy({
          source: copy,
          dataDir: dir,
          client,
          artifacts: !opts.artifactsDir,
          storeIntegrity: false,
          onProgress: progress,
        });
        copy.prepare("COMMIT").run();
        copyDifferences = [
          ...check.tables
            .filter((t) => !t.equal)
            .map(
              (t) =>
                `table ${t.name}: ${t.targetRows} row(s) on PostgreSQL, ${t.sourceRows} in the copy (${t.firstDifference ?? "digests differ"})`,
            ),
          ...check.ledger.roots
            .filter((r) => !r.equal)
            .map((r) => `Merkle root at tree size ${r.treeSize}: copy ${r.source}, PostgreSQL ${r.target ?? "none"}`),
          ...check.mismatches.filter((m) => m.startsWith("artifact ")),
        ];
        copyCheckMs = check.durationMs;
      } finally {
        copy.close();
      }
      await client.query("COMMIT");
    } finally {
      await client.query("ROLLBACK").catch(() => undefined);
      client.release();
    }
    progress(`snapshot: the copy ${copyDifferences.length === 0 ? "equals" : "does NOT equal"} PostgreSQL's snapshot (${copyCheckMs} ms)`);

    const result = await verifyDatabase(dir, { ...opts, publicKeyPem: opts.publicKeyPem, triggerCheck });
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
    await pool.end();
    if (!opts.keepCopyIn) fs.rmSync(dir, { recursive: true, force: true });
  }
}
