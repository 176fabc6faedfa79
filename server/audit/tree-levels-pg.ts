/**
 * The stored tree levels (tree-levels.ts: audit_tree_nodes, its invariant "stored size" and who writes and reads it)
 * on the PostgreSQL store (issue 16). The same nodes as on SQLite: the extension walks the same TreeLevelExtender.
 *
 * Invariants: `storeTreeLevelsForCheckpointPg` runs inside the checkpoint's transaction, under the ledger's advisory
 * lock (checkpoints.ts), so one writer at a time extends the table; it works in a savepoint and never throws (a
 * derived index must not block signing), leaving the table as it was on failure.
 */
import { and, asc, gt, lte, sql } from "drizzle-orm";
import type { PgTx } from "@/db/pg-client";
import { auditEvents, auditTreeNodes } from "@/db/schema-pg";
import { EXTEND_CHUNK, foldSubtreeRoots, perfectSubtreesOf, TreeLevelExtender, type TreeLevelsOutcome, type TreeNode } from "./tree-levels";

/** Rows per INSERT (3 parameters each, under PostgreSQL's 65,535). */
const INSERT_ROWS = 5_000;

/** Number of leaves whose perfect subtrees (height >= 1) are all stored. */
export async function storedTreeSizePg(tx: PgTx): Promise<number> {
  const r = await tx.execute<{ i: string | null }>(sql`SELECT max(idx) AS i FROM audit_tree_nodes WHERE level = 1`);
  const i = r.rows[0]?.i ?? null;
  return i === null ? 0 : (Number(i) + 1) * 2;
}

/** The stored nodes (level >= 1) at these positions, keyed "level:idx". */
async function storedNodes(tx: PgTx, at: readonly { level: number; idx: number }[]): Promise<Map<string, Buffer>> {
  const found = new Map<string, Buffer>();
  if (at.length === 0) return found;
  const pairs = sql.join(
    at.map((n) => sql`(${n.level}::bigint, ${n.idx}::bigint)`),
    sql`, `,
  );
  const r = await tx.execute<{ level: string; idx: string; hash: Buffer }>(
    sql`SELECT level, idx, hash FROM audit_tree_nodes WHERE (level, idx) IN (${pairs})`,
  );
  for (const row of r.rows) found.set(`${Number(row.level)}:${Number(row.idx)}`, row.hash);
  return found;
}

async function leafHex(tx: PgTx, seq: number): Promise<string> {
  const r = await tx.execute<{ h: string }>(sql`SELECT leaf_hash AS h FROM audit_events WHERE seq = ${seq}`);
  const h = r.rows[0]?.h;
  if (h === undefined) throw new Error(`no event seq ${seq} in the log`);
  return h;
}

/**
 * Root (hex) over leaves [0, size) from the stored nodes (and the last leaf when size is odd), as TreeLevelReader.root;
 * null when a node it needs is not stored (the table is then rebuilt, as for a wrong root).
 */
async function rootFromStoredLevels(tx: PgTx, size: number, storedSize: number): Promise<string | null> {
  const parts = perfectSubtreesOf(size);
  const nodes = await storedNodes(
    tx,
    parts.filter((p) => p.level >= 1),
  );
  const roots: Buffer[] = [];
  for (const { level, idx } of parts) {
    if (level === 0) {
      roots.push(Buffer.from(await leafHex(tx, idx + 1), "hex"));
      continue;
    }
    const hash = (idx + 1) * 2 ** level <= storedSize ? nodes.get(`${level}:${idx}`) : undefined;
    if (!hash) return null;
    roots.push(Buffer.from(hash));
  }
  return foldSubtreeRoots(roots).toString("hex");
}

/** Writes the perfect subtrees completed by leaves (stored size, toSize]; returns the number of nodes written. */
async function extendTreeLevelsPg(tx: PgTx, toSize: number): Promise<number> {
  const from = await storedTreeSizePg(tx);
  if (toSize <= from) return 0;
  const frontierAt = perfectSubtreesOf(from);
  const stored = await storedNodes(tx, frontierAt);
  const frontier: TreeNode[] = frontierAt.map(({ level, idx }) => {
    const hash = stored.get(`${level}:${idx}`);
    if (!hash) throw new Error(`tree levels: node (${level}, ${idx}) of the stored frontier is missing`);
    return { level, idx, hash };
  });
  const extender = new TreeLevelExtender(frontier, from + 1);
  let written = 0;
  let next = from + 1;
  while (next <= toSize) {
    const chunk = await tx
      .select({ seq: auditEvents.seq, leafHash: auditEvents.leafHash })
      .from(auditEvents)
      .where(and(gt(auditEvents.seq, next - 1), lte(auditEvents.seq, Math.min(toSize, next - 1 + EXTEND_CHUNK))))
      .orderBy(asc(auditEvents.seq));
    if (chunk.length === 0) throw new Error(`tree levels: seq ${next} missing`);
    const completed: TreeNode[] = [];
    for (const { seq, leafHash } of chunk) {
      completed.push(...extender.push(seq, leafHash));
      next++;
    }
    // Nodes complete in leaf order, so the stored size read back (max idx at level 1) never runs ahead of a node.
    for (let i = 0; i < completed.length; i += INSERT_ROWS) await tx.insert(auditTreeNodes).values(completed.slice(i, i + INSERT_ROWS));
    written += completed.length;
  }
  return written;
}

/**
 * storeTreeLevelsForCheckpoint (tree-levels.ts) on PostgreSQL: extends the stored levels up to `treeSize`, checks the
 * root they give against the root being signed, and rebuilds the table from the leaves on a mismatch. In a savepoint;
 * never throws.
 */
export async function storeTreeLevelsForCheckpointPg(tx: PgTx, treeSize: number, rootHash: string): Promise<TreeLevelsOutcome> {
  try {
    return await tx.transaction(async (sp): Promise<TreeLevelsOutcome> => {
      let written = await extendTreeLevelsPg(sp, treeSize);
      let rebuilt = false;
      if ((await rootFromStoredLevels(sp, treeSize, await storedTreeSizePg(sp))) !== rootHash) {
        await sp.execute(sql`DELETE FROM audit_tree_nodes`);
        written = await extendTreeLevelsPg(sp, treeSize);
        rebuilt = true;
        const again = await rootFromStoredLevels(sp, treeSize, await storedTreeSizePg(sp));
        if (again !== rootHash)
          throw new Error(`the leaves 1..${treeSize} give root ${again ?? "(nodes missing)"}, not the root being signed ${rootHash}`);
      }
      return { ok: true, storedSize: await storedTreeSizePg(sp), written, rebuilt };
    });
  } catch (err) {
    const error = `audit tree levels not stored: ${(err as Error).message}`;
    console.error(error);
    return { ok: false, error };
  }
}
