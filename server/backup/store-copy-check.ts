/**
 * Checks that a PostgreSQL store equals the SQLite installation it was copied from (issue 16, `migrate-store`; run
 * at the end of every copy, and alone with `migrate-store --check`). Both sides are read in one snapshot each (the
 * caller holds a read transaction on the SQLite source and a transaction on `client`); rows are streamed (SQLite
 * `.iterate()`, PostgreSQL cursors), never all in memory.
 *
 * What it compares, naming every mismatch:
 * - tables: per table, the row count and a SHA-256 digest over each row's canonical JSON in primary-key order
 *   (store-tables.ts), with the first differing row's key;
 * - the ledger on PostgreSQL: streamed through the verifier SQLite uses (verify.ts's AuditLogVerifier: seq, leaf and
 *   chain hashes, checkpoint signatures by the key chain, checkpoint roots, the coverage rule), and its Merkle roots
 *   (merkle.ts) at every checkpoint's tree size and at its head, against the source's;
 * - artifacts: the same names on both sides, every one streamed back from the PostgreSQL store with its hash checked;
 * - identity sequences past the largest copied id (and past SQLite's AUTOINCREMENT high-water mark), and the
 *   protective triggers of db/migrations-pg present and enabled.
 * What it does not do: the content level of `audit verify` (tables and files recomputed against the ledger) runs on
 * SQLite only until the verifier is ported; since every row equals the source's, the source's `audit verify` speaks
 * for the copy's content (PROVES / NOT_PROVED say so in the output).
 */
import fs from "node:fs";
import { createHash } from "node:crypto";
import path from "node:path";
import type Database from "better-sqlite3";
import type pg from "pg";
import { pgCursorRows } from "@/db/pg-cursor";
import { PG_MIGRATIONS_DIR } from "@/db/pg-client";
import { AuditLogVerifier } from "@/server/audit/verify";
import { MerkleAccumulator } from "@/server/audit/merkle";
import { loadAuditPublicKey, type AuditPublicKey } from "@/server/audit/keys";
import { KEY_ROTATE_ACTION } from "@/server/audit/key-rotation";
import type { AuditEventRow } from "@/server/audit/ledger";
import { auditEventsWithAction, iterateAuditEvents, listAuditCheckpoints, type AuditCheckpointRow } from "@/server/audit/ledger-reads";
import { auditEventsWithActionPg, iterateAuditEventsPg, listAuditCheckpointsPg } from "@/server/audit/ledger-pg-reads";
import { listFileArtifacts } from "@/server/artifacts/async-store";
import { listArtifactsPg, verifyArtifactPg } from "@/server/artifacts/pg-store";
import { canonicalRow, orderedSelect, quoteIdent, rowKey, storeTables, type StoreTable } from "./store-tables";
import { countOf } from "@/contracts/count-text";

export const PROVES =
  "the copy equals the source: every table has the same rows (count and SHA-256 of each row's canonical JSON, in primary-key order); " +
  "the ledger on PostgreSQL verifies with the verifier's own functions (hash chain, signed checkpoints, key rotations) and its Merkle roots " +
  "equal the source's at every checkpoint size and at the head; every artifact is in the PostgreSQL store and hashes to its name; " +
  "identity sequences are past the copied ids; the protective triggers are present and enabled";
export const NOT_PROVED =
  "whether the record itself holds (tables and files recomputed against the ledger): run `audit verify --database URL --public-key FILE` " +
  "on the copy, or `audit verify --data-dir` on the source (the rows are equal)";

export type TableComparison = {
  name: string;
  sourceRows: number;
  targetRows: number;
  sourceDigest: string;
  targetDigest: string;
  equal: boolean;
  firstDifference: string | null;
};

export type RootComparison = { treeSize: number; source: string; target: string | null; equal: boolean };

export type StoreCopyCheck = {
  ok: boolean;
  /** Every mismatch, in plain words; [] when the copy equals the source. */
  mismatches: string[];
  tables: TableComparison[];
  ledger: {
    events: number;
    checkpoints: number;
    sourceVerifies: boolean;
    targetVerifies: boolean;
    targetProblem: string | null;
    roots: RootComparison[];
  };
  artifacts: { source: number; target: number; bytes: number; hashChecked: number };
  sequences: { table: string; column: string; maxId: number; next: number | null; ok: boolean }[];
  triggers: { expected: number; missingOrDisabled: string[] };
  proves: string;
  notProved: string;
  durationMs: number;
};

type LedgerPass = { result: ReturnType<AuditLogVerifier["finish"]>; roots: Map<number, string>; events: number };

/** Streams events into the verifier and a Merkle accumulator, recording the root at each of `sizes`. */
async function ledgerPass(
  events: AsyncIterable<AuditEventRow> | Iterable<AuditEventRow>,
  key: AuditPublicKey,
  checkpoints: AuditCheckpointRow[],
  rotations: AuditEventRow[],
  sizes: Set<number>,
): Promise<LedgerPass> {
  const verifier = new AuditLogVerifier(key, "data directory", checkpoints, undefined, rotations);
  const acc = new MerkleAccumulator();
  const roots = new Map<number, string>();
  if (sizes.has(0)) roots.set(0, acc.root().toString("hex"));
  let feeding = true;
  let events_ = 0;
  for await (const row of events) {
    if (feeding) feeding = verifier.add(row);
    try {
      acc.pushHex(row.leafHash);
    } catch {
      acc.pushHex("0".repeat(64)); // a malformed leaf: the verifier names it; keep the sizes aligned
    }
    events_++;
    if (sizes.has(acc.size)) roots.set(acc.size, acc.root().toString("hex"));
  }
  return { result: verifier.finish(), roots, events: events_ };
}

async function compareTable(source: Database.Database, client: pg.ClientBase, t: StoreTable): Promise<TableComparison> {
  const src = source.prepare(orderedSelect(t, "sqlite")).raw(true).iterate() as IterableIterator<unknown[]>;
  const hs = sha256Stream();
  const ht = sha256Stream();
  let sourceRows = 0;
  let targetRows = 0;
  let firstDifference: string | null = null;
  try {
    for await (const trow of pgCursorRows(client, orderedSelect(t, "postgres"))) {
      const tline = canonicalRow(t, trow);
      ht.update(tline);
      targetRows++;
      const s = src.next();
      if (s.done) {
        firstDifference ??= `row ${rowKey(t, trow)} is on PostgreSQL only`;
        continue;
      }
      const sline = canonicalRow(t, s.value);
      hs.update(sline);
      sourceRows++;
      if (sline !== tline && firstDifference === null)
        firstDifference =
          rowKey(t, s.value) === rowKey(t, trow)
            ? `row ${rowKey(t, trow)} differs`
            : `row ${rowKey(t, s.value)} on the source, ${rowKey(t, trow)} on PostgreSQL`;
    }
    for (let s = src.next(); !s.done; s = src.next()) {
      hs.update(canonicalRow(t, s.value));
      sourceRows++;
      firstDifference ??= `row ${rowKey(t, s.value)} is missing on PostgreSQL`;
    }
  } finally {
    src.return?.();
  }
  const sourceDigest = hs.digest();
  const targetDigest = ht.digest();
  return {
    name: t.name,
    sourceRows,
    targetRows,
    sourceDigest,
    targetDigest,
    equal: sourceRows === targetRows && sourceDigest === targetDigest,
    firstDifference,
  };
}

/**
 * SHA-256 over canonical row lines, each followed by "\n". The lines are handed to the hash in batches of about
 * 64 KiB (the same bytes, so the same digest): two hash calls per row cost more than the hashing itself.
 */
function sha256Stream() {
  const h = createHash("sha256");
  let pending = "";
  return {
    update: (line: string) => {
      pending += `${line}\n`;
      if (pending.length >= 65_536) {
        h.update(pending);
        pending = "";
      }
    },
    digest: () => h.update(pending).digest("hex"),
  };
}

/** The trigger names the PostgreSQL migrations create. */
function expectedTriggers(): string[] {
  const names = new Set<string>();
  for (const f of fs.readdirSync(PG_MIGRATIONS_DIR).filter((n) => n.endsWith(".sql")))
    for (const m of fs.readFileSync(path.join(PG_MIGRATIONS_DIR, f), "utf8").matchAll(/CREATE TRIGGER\s+"?(\w+)"?/gi)) names.add(m[1]!);
  return [...names].sort();
}

function sqliteSequence(source: Database.Database, table: string): number {
  try {
    const r = source.prepare("SELECT seq FROM sqlite_sequence WHERE name = ?").get(table) as { seq: number } | undefined;
    return r?.seq ?? 0;
  } catch {
    return 0; // no AUTOINCREMENT table ever written: no sqlite_sequence
  }
}

export { sqliteSequence };

export async function checkStoreCopy(opts: {
  /** The SQLite source, inside a read transaction held by the caller (one snapshot). */
  source: Database.Database;
  /** The source's data directory: its public key and artifact files. */
  dataDir: string;
  /** A PostgreSQL client inside a transaction held by the caller. */
  client: pg.ClientBase;
  /** Compare the artifact files with PostgreSQL's artifact store (default true; false: the installation keeps them in a shared directory). */
  artifacts?: boolean;
  /** Check PostgreSQL's identity sequences and protective triggers too (default true; audit verify checks the triggers itself). */
  storeIntegrity?: boolean;
  onProgress?: (line: string) => void;
}): Promise<StoreCopyCheck> {
  const started = performance.now();
  const { source, client, dataDir } = opts;
  const progress = opts.onProgress ?? (() => undefined);
  const mismatches: string[] = [];

  // Tables.
  const tables: TableComparison[] = [];
  for (const t of storeTables()) {
    const c = await compareTable(source, client, t);
    tables.push(c);
    if (!c.equal)
      mismatches.push(
        `table ${t.name}: ${c.sourceRows} row(s) on the source, ${c.targetRows} on PostgreSQL, digests ${c.sourceDigest.slice(0, 12)}… / ${c.targetDigest.slice(0, 12)}…${c.firstDifference ? ` (first difference: ${c.firstDifference})` : ""}`,
      );
  }
  progress(`check: ${tables.length} tables compared (${tables.filter((t) => !t.equal).length} differ)`);

  // Ledger: the verifier and Merkle roots on both sides.
  const key = loadAuditPublicKey(dataDir);
  const sourceCheckpoints = listAuditCheckpoints(source);
  const targetCheckpoints = await listAuditCheckpointsPg(client);
  const sizes = new Set<number>([...sourceCheckpoints, ...targetCheckpoints].map((c) => c.treeSize));
  const sourceHead = (source.prepare("SELECT count(*) AS n FROM audit_events").get() as { n: number }).n;
  const targetHead = Number((await client.query<{ n: string }>("SELECT count(*) AS n FROM audit_events")).rows[0]!.n);
  sizes.add(sourceHead).add(targetHead);
  const src = await ledgerPass(iterateAuditEvents(source), key, sourceCheckpoints, auditEventsWithAction(source, KEY_ROTATE_ACTION), sizes);
  const tgt = await ledgerPass(
    iterateAuditEventsPg(client),
    key,
    targetCheckpoints,
    await auditEventsWithActionPg(client, KEY_ROTATE_ACTION),
    sizes,
  );
  if (!src.result.levels.chain.ok)
    mismatches.push(
      `the source's ledger does not verify (${src.result.levels.chain.problem}): run audit verify --data-dir ${dataDir} and settle that first`,
    );
  if (!tgt.result.levels.chain.ok) mismatches.push(`the ledger on PostgreSQL does not verify: ${tgt.result.levels.chain.problem}`);
  const roots: RootComparison[] = [...sizes]
    .filter((s) => s <= sourceHead)
    .sort((a, b) => a - b)
    .map((treeSize) => {
      const s = src.roots.get(treeSize)!;
      const t = tgt.roots.get(treeSize) ?? null;
      return { treeSize, source: s, target: t, equal: s === t };
    });
  for (const r of roots)
    if (!r.equal)
      mismatches.push(
        r.target === null
          ? `Merkle root at tree size ${r.treeSize}: PostgreSQL's ledger has only ${countOf(tgt.events, "event")}`
          : `Merkle root at tree size ${r.treeSize} differs: source ${r.source}, PostgreSQL ${r.target}`,
      );
  if (targetHead > sourceHead) mismatches.push(`the ledger on PostgreSQL has ${targetHead} events, the source ${sourceHead}`);
  progress(
    `check: ledger of ${tgt.events} events ${tgt.result.levels.chain.ok ? "verifies" : "does NOT verify"} on PostgreSQL; Merkle roots compared at ${roots.length} tree size(s)`,
  );

  // Artifacts.
  const compareArtifacts = opts.artifacts ?? true;
  const sourceArtifacts = compareArtifacts ? listFileArtifacts(dataDir) : [];
  const targetNames = new Set<string>();
  if (compareArtifacts) for await (const a of listArtifactsPg(client)) targetNames.add(a.sha256);
  const targetCount = targetNames.size;
  let bytes = 0;
  let hashChecked = 0;
  for (const a of sourceArtifacts) {
    if (!targetNames.delete(a.sha256)) {
      mismatches.push(`artifact ${a.sha256} is missing on PostgreSQL`);
      continue;
    }
    try {
      const size = await verifyArtifactPg(client, a.sha256); // streamed and hashed, never whole in memory
      hashChecked++;
      bytes += size;
      if (size !== a.bytes) mismatches.push(`artifact ${a.sha256}: ${size} bytes on PostgreSQL, ${a.bytes} in the source's file`);
    } catch (err) {
      mismatches.push((err as Error).message);
    }
  }
  for (const extra of targetNames) mismatches.push(`artifact ${extra} is on PostgreSQL only`);
  if (compareArtifacts) progress(`check: ${hashChecked} artifact(s) read back with their SHA-256 checked (${bytes} bytes)`);

  // Identity sequences.
  const storeIntegrity = opts.storeIntegrity ?? true;
  const sequences: StoreCopyCheck["sequences"] = [];
  for (const t of storeTables().filter((x) => storeIntegrity && x.identity)) {
    const col = t.identity!;
    const r = await client.query<{ max: string | null; last: string | null }>(
      `SELECT (SELECT max(${quoteIdent(col)}) FROM ${quoteIdent(t.name)}) AS max,
              pg_sequence_last_value(pg_get_serial_sequence($1, $2)::regclass) AS last`,
      [t.name, col],
    );
    const maxId = Math.max(Number(r.rows[0]!.max ?? 0), sqliteSequence(source, t.name));
    const last = r.rows[0]!.last === null ? null : Number(r.rows[0]!.last);
    const next = last === null ? 1 : last + 1;
    const ok = next > maxId;
    sequences.push({ table: t.name, column: col, maxId, next, ok });
    if (!ok) mismatches.push(`sequence of ${t.name}.${col} would hand out ${next}, but ids go up to ${maxId}`);
  }

  // Protective triggers.
  const expected = storeIntegrity ? expectedTriggers() : [];
  const live = await client.query<{ name: string; enabled: string }>(
    "SELECT tgname AS name, tgenabled AS enabled FROM pg_trigger WHERE NOT tgisinternal",
  );
  const enabled = new Set(live.rows.filter((r) => r.enabled !== "D").map((r) => r.name));
  const missingOrDisabled = expected.filter((n) => !enabled.has(n));
  for (const n of missingOrDisabled) mismatches.push(`protective trigger ${n} is missing or disabled on PostgreSQL`);

  return {
    ok: mismatches.length === 0,
    mismatches,
    tables,
    ledger: {
      events: tgt.events,
      checkpoints: targetCheckpoints.length,
      sourceVerifies: src.result.levels.chain.ok,
      targetVerifies: tgt.result.levels.chain.ok,
      targetProblem: tgt.result.levels.chain.problem,
      roots,
    },
    artifacts: { source: sourceArtifacts.length, target: targetCount, bytes, hashChecked },
    sequences,
    triggers: { expected: expected.length, missingOrDisabled },
    proves: PROVES,
    notProved: NOT_PROVED,
    durationMs: Math.round(performance.now() - started),
  };
}
