/**
 * The stored tree levels (tree-levels.ts: audit_tree_nodes, its invariant "stored size" and who writes and reads it)
 * on the PostgreSQL store (issue 16). The same nodes as on SQLite: the extension walks the same TreeLevelExtender.
 *
 * Readers (proofs): a walk of the stored levels (TreeLevelWalk, the SQLite reader's walk) over rows fetched in a
 * few round trips instead of one query per node: each pass notes the rows it lacked, they are fetched at once, and the
 * walk runs again until it lacks none (usually twice), all in one read-only snapshot.
 *
 * Invariants: `storeTreeLevelsForCheckpointPg` runs inside the checkpoint's transaction, under the ledger's advisory
 * lock (checkpoints.ts), so one writer at a time extends the table; it works in a savepoint and never throws (a
 * derived index must not block signing), leaving the table as it was on failure.
 */
import { and, asc, desc, eq, gt, lte, sql } from "drizzle-orm";
import type { PgDb, PgTx } from "@/db/pg-client";
import { auditCheckpoints, auditEvents, auditTreeNodes } from "@/db/schema-pg";
import type { AuditCheckpointRow } from "./ledger-reads";
import {
  DEFAULT_LEAF_BUDGET,
  EXTEND_CHUNK,
  foldSubtreeRoots,
  leafHashOf,
  levelInclusionProof,
  type LevelInclusionProof,
  perfectSubtreesOf,
  TreeLevelExtender,
  TreeLevelWalk,
  type TreeLevelsOutcome,
  type TreeNode,
} from "./tree-levels";

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

const PLACEHOLDER = Buffer.alloc(32);

/**
 * TreeLevelWalk over rows already fetched (null: fetched and absent). A row it lacks is noted in `wanted` and answered
 * with a placeholder: the pass's result is then discarded, and which rows a walk reads depends only on positions, never
 * on hash values, so the next pass asks for no other rows because of a placeholder.
 */
class FetchedTreeLevels extends TreeLevelWalk {
  readonly wanted = { nodes: [] as { level: number; idx: number }[], leaves: [] as number[] };

  constructor(
    stored: number,
    private readonly nodes: Map<string, Buffer | null>,
    private readonly leaves: Map<number, Buffer | null>,
    leafBudget: number,
  ) {
    super(stored, leafBudget);
  }

  get complete(): boolean {
    return this.wanted.nodes.length === 0 && this.wanted.leaves.length === 0;
  }

  leaf(index: number): Buffer {
    const hash = this.leaves.get(index);
    if (hash === undefined) {
      this.wanted.leaves.push(index);
      return PLACEHOLDER;
    }
    if (hash === null) throw new Error(`no event seq ${index + 1} in the log`);
    return hash;
  }

  protected storedNode(level: number, idx: number): Buffer | undefined {
    const hash = this.nodes.get(`${level}:${idx}`);
    if (hash === undefined) {
      this.wanted.nodes.push({ level, idx });
      return PLACEHOLDER;
    }
    return hash ?? undefined;
  }
}

/** Runs `compute` over the stored levels inside `tx` (see the header: passes until no row is lacking). */
export async function withTreeLevelsPg<T>(tx: PgTx, compute: (walk: TreeLevelWalk) => T, leafBudget = DEFAULT_LEAF_BUDGET): Promise<T> {
  const stored = await storedTreeSizePg(tx);
  const nodes = new Map<string, Buffer | null>();
  const leaves = new Map<number, Buffer | null>();
  let rowsRead = 1;
  for (;;) {
    const walk = new FetchedTreeLevels(stored, nodes, leaves, leafBudget);
    walk.rowsRead = rowsRead;
    let result: { value: T } | { error: unknown };
    try {
      result = { value: compute(walk) };
    } catch (error) {
      result = { error };
    }
    if (walk.complete) {
      if ("error" in result) throw result.error;
      return result.value;
    }
    const found = await storedNodes(tx, walk.wanted.nodes);
    for (const { level, idx } of walk.wanted.nodes) nodes.set(`${level}:${idx}`, found.get(`${level}:${idx}`) ?? null);
    const seqs = walk.wanted.leaves.map((i) => i + 1);
    const r = await tx.execute<{ seq: string; h: string }>(
      sql`SELECT seq, leaf_hash AS h FROM audit_events WHERE seq = ANY(${`{${seqs.join(",")}}`}::bigint[])`,
    );
    for (const i of walk.wanted.leaves) leaves.set(i, null);
    for (const row of r.rows) leaves.set(Number(row.seq) - 1, leafHashOf(Number(row.seq) - 1, row.h));
    rowsRead += found.size + r.rows.length;
  }
}

/** A read-only snapshot of the store for proofs. */
function inSnapshot<T>(db: PgDb, read: (tx: PgTx) => Promise<T>): Promise<T> {
  return db.transaction(read, { isolationLevel: "repeatable read", accessMode: "read only" });
}

/** inclusionProofFromLevels (tree-levels.ts) on PostgreSQL: the same proof, size and checkpoint rules. */
export function inclusionProofFromLevelsPg(db: PgDb, seq: number, treeSize?: number): Promise<LevelInclusionProof> {
  return inSnapshot(db, async (tx) => {
    let size = treeSize;
    let checkpoint: AuditCheckpointRow | null = null;
    let extraRows = 0;
    if (size === undefined) {
      const [latest] = await tx.select().from(auditCheckpoints).orderBy(desc(auditCheckpoints.id)).limit(1);
      extraRows++;
      if (latest && latest.treeSize >= seq) {
        size = latest.treeSize;
        checkpoint = latest;
      } else {
        const r = await tx.execute<{ n: string | null }>(sql`SELECT max(seq) AS n FROM audit_events`);
        size = Number(r.rows[0]?.n ?? 0);
        extraRows++;
      }
    } else {
      const [last] = await tx
        .select()
        .from(auditCheckpoints)
        .where(eq(auditCheckpoints.treeSize, size))
        .orderBy(desc(auditCheckpoints.id))
        .limit(1);
      checkpoint = last ?? null;
    }
    if (!Number.isInteger(seq) || seq < 1 || seq > size) throw new Error(`no event seq ${seq} in a tree of size ${size}`);
    const inTree = size;
    return withTreeLevelsPg(tx, (walk) => levelInclusionProof(walk, seq, inTree, checkpoint, extraRows));
  });
}

/** TreeLevelReader.consistencyPath on PostgreSQL (the witness pusher's proof), in one snapshot. */
export function consistencyPathFromLevelsPg(db: PgDb, m: number, n: number, leafBudget = DEFAULT_LEAF_BUDGET): Promise<Buffer[]> {
  return inSnapshot(db, (tx) => withTreeLevelsPg(tx, (walk) => walk.consistencyPath(m, n), leafBudget));
}
