/**
 * Stored levels of the ledger's RFC 6962 Merkle tree (table audit_tree_nodes), so that an inclusion or
 * consistency proof reads O(log n) rows instead of every leaf hash.
 *
 * Invariant ("stored size" S): every perfect subtree of height >= 1 that lies inside leaves [0, S) has its root
 * stored as (level, idx), covering leaves [idx * 2^level, (idx + 1) * 2^level); nothing else is stored. S is even
 * and read back as 2 * (max idx at level 1 + 1), because the nodes of one extension are written in one savepoint
 * in leaf order. Level 0 is audit_events.leaf_hash (seq = index + 1).
 *
 * Who writes: `storeTreeLevelsForCheckpoint`, called by createAuditCheckpoint inside its transaction, right after
 * the signer has checked the new events' chain and computed the root it signs. It extends S from the previous
 * stored size up to the new tree size (reading only the new leaves; the first call on an older database
 * back-fills once), then recomputes the root at that size from the stored nodes and compares it with the root
 * being signed; on a mismatch it rebuilds the table from the leaves. It never throws: this table is a derived
 * index, not evidence, and must not block signing.
 *
 * Who reads: `TreeLevelReader` (proofs for the app and the witness client). Every proof built from it is checked
 * against the signed root before it is reported as verified, so an altered row can only make a proof fail, never
 * make a false one pass. Perfect subtrees not yet stored (events after the stored size) are computed from their
 * leaves, up to a read budget; `audit verify` never reads this table. Plain ANSI SQL, as in ledger-reads.ts.
 *
 * PostgreSQL (issue 16): tree-levels-pg.ts writes the same nodes (TreeLevelExtender) inside the checkpoint's
 * transaction and walks them for proofs (TreeLevelWalk over fetched rows); this file holds the SQLite side.
 */
import type Database from "better-sqlite3";
import { EMPTY_TREE_ROOT, consistencyPathOver, hashChildren, inclusionPathOver, verifyInclusion } from "./merkle";
import {
  type AuditCheckpointRow,
  type AuditDbSource,
  auditCheckpointsWithTreeSize,
  latestAuditCheckpoint,
  maxAuditSeq,
  sqliteOf,
} from "./ledger-reads";
import type { Db } from "@/db/client";

/** Leaves read from audit_events at most per proof for subtrees beyond the stored size (the unsigned tail). */
export const DEFAULT_LEAF_BUDGET = 65_536;
export const EXTEND_CHUNK = 16_384;

/** Number of leaves whose perfect subtrees (height >= 1) are all stored. */
export function storedTreeSize(source: AuditDbSource): number {
  const row = sqliteOf(source).prepare("SELECT max(idx) AS i FROM audit_tree_nodes WHERE level = 1").get() as { i: number | null };
  return row.i === null ? 0 : (row.i + 1) * 2;
}

export type TreeNode = { level: number; idx: number; hash: Buffer };

/** The perfect subtrees that make up leaves [0, size) (RFC 6962's splits), largest first; level 0 is one leaf. */
export function perfectSubtreesOf(size: number): { level: number; idx: number }[] {
  const out: { level: number; idx: number }[] = [];
  let offset = 0;
  for (let level = Math.floor(Math.log2(Math.max(size, 1))); level >= 0; level--) {
    const width = 2 ** level;
    if (Math.floor(size / width) % 2 === 0) continue;
    out.push({ level, idx: offset / width });
    offset += width;
  }
  return out;
}

/** The root over perfect subtree roots given largest first (perfectSubtreesOf's order); the empty tree's root for none. */
export function foldSubtreeRoots(roots: readonly Buffer[]): Buffer {
  if (roots.length === 0) return Buffer.from(EMPTY_TREE_ROOT);
  let acc = roots[roots.length - 1]!;
  for (let i = roots.length - 2; i >= 0; i--) acc = hashChildren(roots[i]!, acc);
  return acc;
}

/**
 * Grows the stored levels leaf by leaf from the stored frontier (perfect subtrees of the stored size, largest first):
 * each leaf returns the perfect subtrees of height >= 1 it completes, in the order they are to be written. Shared by
 * both stores (tree-levels-pg.ts), so they store the same nodes.
 */
export class TreeLevelExtender {
  private readonly stack: TreeNode[];

  constructor(
    frontier: readonly TreeNode[],
    private next: number,
  ) {
    this.stack = [...frontier];
  }

  push(seq: number, leafHex: string): TreeNode[] {
    if (seq !== this.next) throw new Error(`tree levels: seq ${this.next} missing (found ${seq})`);
    const leaf = Buffer.from(leafHex, "hex");
    if (leaf.length !== 32) throw new Error(`tree levels: seq ${seq} has no valid leaf hash`);
    const completed: TreeNode[] = [];
    let node: TreeNode = { level: 0, idx: seq - 1, hash: leaf };
    while (this.stack.length > 0 && this.stack[this.stack.length - 1]!.level === node.level) {
      const left = this.stack.pop()!;
      node = { level: left.level + 1, idx: left.idx / 2, hash: hashChildren(left.hash, node.hash) };
      completed.push(node);
    }
    this.stack.push(node);
    this.next++;
    return completed;
  }
}

/** The frontier at an even size: the stored perfect subtrees of its binary decomposition, largest first. */
function storedFrontier(sqlite: Database.Database, size: number): TreeNode[] {
  const get = sqlite.prepare("SELECT hash FROM audit_tree_nodes WHERE level = ? AND idx = ?");
  return perfectSubtreesOf(size).map(({ level, idx }) => {
    const row = get.get(level, idx) as { hash: Buffer } | undefined;
    if (!row) throw new Error(`tree levels: node (${level}, ${idx}) of the stored frontier is missing`);
    return { level, idx, hash: row.hash };
  });
}

/** Writes the perfect subtrees completed by leaves (from, toSize]; returns the number of nodes written. */
function extendTreeLevels(sqlite: Database.Database, toSize: number): number {
  const from = storedTreeSize(sqlite);
  if (toSize <= from) return 0;
  const extender = new TreeLevelExtender(storedFrontier(sqlite, from), from + 1);
  const insert = sqlite.prepare("INSERT INTO audit_tree_nodes (level, idx, hash) VALUES (?, ?, ?)");
  const leaves = sqlite.prepare("SELECT seq, leaf_hash FROM audit_events WHERE seq > ? AND seq <= ? ORDER BY seq").raw(true);
  let written = 0;
  let next = from + 1;
  while (next <= toSize) {
    // Read a chunk, then write: one connection cannot write while a read statement is still iterating.
    const chunk = leaves.all(next - 1, Math.min(toSize, next - 1 + EXTEND_CHUNK)) as [number, string][];
    if (chunk.length === 0) throw new Error(`tree levels: seq ${next} missing`);
    for (const [seq, leafHex] of chunk) {
      for (const node of extender.push(seq, leafHex)) {
        insert.run(node.level, node.idx, node.hash);
        written++;
      }
      next++;
    }
  }
  return written;
}

export type TreeLevelsOutcome = { ok: true; storedSize: number; written: number; rebuilt: boolean } | { ok: false; error: string };

/**
 * Keeps the stored levels in step with a checkpoint being signed (call inside its transaction, after the root is
 * computed). Runs in a savepoint; on any failure the table is left as it was and the error is returned, not thrown.
 */
export function storeTreeLevelsForCheckpoint(source: AuditDbSource, treeSize: number, rootHash: string): TreeLevelsOutcome {
  const sqlite = sqliteOf(source);
  try {
    return sqlite.transaction((): TreeLevelsOutcome => {
      let written = extendTreeLevels(sqlite, treeSize);
      let rebuilt = false;
      if (new TreeLevelReader(sqlite).root(treeSize).toString("hex") !== rootHash) {
        sqlite.prepare("DELETE FROM audit_tree_nodes").run();
        written = extendTreeLevels(sqlite, treeSize);
        rebuilt = true;
        const again = new TreeLevelReader(sqlite).root(treeSize).toString("hex");
        if (again !== rootHash) throw new Error(`the leaves 1..${treeSize} give root ${again}, not the root being signed ${rootHash}`);
      }
      return { ok: true, storedSize: storedTreeSize(sqlite), written, rebuilt };
    })();
  } catch (err) {
    const error = `audit tree levels not stored: ${(err as Error).message}`;
    console.error(error);
    return { ok: false, error };
  }
}

/**
 * Walks the stored levels for proofs: stored nodes by (level, idx), leaves by index, anything not stored computed from
 * its children (counted against `leafBudget`). `rowsRead` counts the rows read, for tests and the UI. Where the rows
 * come from is the subclass's: SQLite statements (TreeLevelReader) or rows fetched from PostgreSQL (tree-levels-pg.ts).
 */
export abstract class TreeLevelWalk {
  rowsRead = 0;
  private leavesComputed = 0;
  private readonly cache = new Map<string, Buffer>();

  constructor(
    protected readonly stored: number,
    private readonly leafBudget = DEFAULT_LEAF_BUDGET,
  ) {}

  /** The leaf hash at `index` (seq index + 1); throws when there is no such event or no valid hash. */
  abstract leaf(index: number): Buffer;
  /** The stored node (level >= 1) inside the stored size, or undefined when its row is missing. */
  protected abstract storedNode(level: number, idx: number): Buffer | undefined;

  get storedSize(): number {
    return this.stored;
  }

  /** Root of the perfect subtree (level, idx). */
  node(level: number, idx: number): Buffer {
    if (level === 0) return this.leaf(idx);
    const key = `${level}:${idx}`;
    const hit = this.cache.get(key);
    if (hit) return hit;
    let hash: Buffer | null = null;
    if ((idx + 1) * 2 ** level <= this.stored) hash = this.storedNode(level, idx) ?? null;
    if (!hash) {
      this.leavesComputed += 2 ** level;
      if (this.leavesComputed > this.leafBudget) {
        throw new Error(
          `this proof needs more than ${this.leafBudget} leaves beyond the stored tree levels (stored up to ${this.stored} events); they are stored when the next checkpoint is signed`,
        );
      }
      hash = hashChildren(this.node(level - 1, 2 * idx), this.node(level - 1, 2 * idx + 1));
    }
    this.cache.set(key, hash);
    return hash;
  }

  /** MTH of leaves [lo, hi), where lo is a multiple of a power of two >= the largest power below hi - lo (RFC 6962 splits). */
  range(lo: number, hi: number): Buffer {
    if (hi <= lo) return Buffer.from(EMPTY_TREE_ROOT);
    const parts: Buffer[] = [];
    let pos = lo;
    while (pos < hi) {
      let width = 1;
      while (width * 2 <= hi - pos && pos % (width * 2) === 0) width *= 2;
      parts.push(this.node(Math.log2(width), pos / width));
      pos += width;
    }
    let acc = parts.pop()!;
    while (parts.length > 0) acc = hashChildren(parts.pop()!, acc);
    return acc;
  }

  root(size: number): Buffer {
    return this.range(0, size);
  }

  /** RFC 9162 PATH(m, D[n]), bottom-up (the walk merkle.ts's inclusionProof uses, over stored levels). */
  inclusionPath(leafIndex: number, size: number): Buffer[] {
    if (!Number.isInteger(leafIndex) || leafIndex < 0 || leafIndex >= size)
      throw new Error(`leaf index ${leafIndex} is outside a tree of size ${size}`);
    return inclusionPathOver(leafIndex, size, (lo, hi) => this.range(lo, hi));
  }

  /** RFC 9162 PROOF(m, D[n]) (the walk merkle.ts's consistencyProof uses, over stored levels). */
  consistencyPath(m: number, n: number): Buffer[] {
    if (!Number.isInteger(m) || !Number.isInteger(n) || m < 0 || m > n)
      throw new Error(`cannot prove consistency from size ${m} to size ${n}`);
    return consistencyPathOver(m, n, (lo, hi) => this.range(lo, hi));
  }
}

/** TreeLevelWalk over a SQLite database (prepared statements, one row per read). */
export class TreeLevelReader extends TreeLevelWalk {
  private readonly nodeStmt: Database.Statement;
  private readonly leafStmt: Database.Statement;

  constructor(source: AuditDbSource, leafBudget = DEFAULT_LEAF_BUDGET) {
    const sqlite = sqliteOf(source);
    super(storedTreeSize(sqlite), leafBudget);
    this.rowsRead++;
    this.nodeStmt = sqlite.prepare("SELECT hash FROM audit_tree_nodes WHERE level = ? AND idx = ?");
    this.leafStmt = sqlite.prepare("SELECT leaf_hash AS h FROM audit_events WHERE seq = ?");
  }

  leaf(index: number): Buffer {
    const row = this.leafStmt.get(index + 1) as { h: string } | undefined;
    if (!row) throw new Error(`no event seq ${index + 1} in the log`);
    this.rowsRead++;
    return leafHashOf(index, row.h);
  }

  protected storedNode(level: number, idx: number): Buffer | undefined {
    const row = this.nodeStmt.get(level, idx) as { hash: Buffer } | undefined;
    if (!row) return undefined;
    this.rowsRead++;
    return Buffer.from(row.hash);
  }
}

/** A stored leaf hash (hex) as bytes; throws when it is not a 32-byte hash. */
export function leafHashOf(index: number, hex: string): Buffer {
  const hash = Buffer.from(hex, "hex");
  if (hash.length !== 32) throw new Error(`event seq ${index + 1} has no valid leaf hash`);
  return hash;
}

export type LevelInclusionProof = {
  seq: number;
  leafIndex: number;
  treeSize: number;
  leafHash: string;
  /** Root recomputed from the stored levels. */
  rootHash: string;
  proof: string[];
  /** The signed checkpoint at this size, if any. */
  checkpoint: AuditCheckpointRow | null;
  /** The proof checks against the signed checkpoint's root (or, with no checkpoint at this size, the recomputed root). */
  verified: boolean;
  /** The recomputed root equals the signed checkpoint's root. */
  signedRoot: boolean;
  rowsRead: number;
};

/**
 * Inclusion proof of event `seq` from the stored levels. Without `treeSize`: against the latest checkpoint when
 * it covers seq (so the proof checks against a signed root), else against the current log. O(log n) row reads for
 * any tree size up to the stored size (looking up the checkpoint of an explicit tree size scans the checkpoints).
 */
export function inclusionProofFromLevels(db: Db, seq: number, treeSize?: number): LevelInclusionProof {
  let size = treeSize;
  let checkpoint: AuditCheckpointRow | null = null;
  let extraRows = 0;
  if (size === undefined) {
    const latest = latestAuditCheckpoint(db) ?? null;
    extraRows++;
    if (latest && latest.treeSize >= seq) {
      size = latest.treeSize;
      checkpoint = latest;
    } else {
      size = maxAuditSeq(db);
      extraRows++;
    }
  } else {
    checkpoint = auditCheckpointsWithTreeSize(db, size).at(-1) ?? null;
  }
  if (!Number.isInteger(seq) || seq < 1 || seq > size) throw new Error(`no event seq ${seq} in a tree of size ${size}`);
  return levelInclusionProof(new TreeLevelReader(db), seq, size, checkpoint, extraRows);
}

/** The inclusion proof of `seq` in a tree of `size` over a walk of the stored levels (both stores). */
export function levelInclusionProof(
  reader: TreeLevelWalk,
  seq: number,
  size: number,
  checkpoint: AuditCheckpointRow | null,
  extraRows: number,
): LevelInclusionProof {
  const leaf = reader.leaf(seq - 1);
  const proof = reader.inclusionPath(seq - 1, size);
  const root = reader.root(size);
  const signed = checkpoint && /^[0-9a-f]{64}$/.test(checkpoint.rootHash) ? Buffer.from(checkpoint.rootHash, "hex") : null;
  return {
    seq,
    leafIndex: seq - 1,
    treeSize: size,
    leafHash: leaf.toString("hex"),
    rootHash: root.toString("hex"),
    proof: proof.map((b) => b.toString("hex")),
    checkpoint,
    verified: verifyInclusion(seq - 1, size, leaf, proof, signed ?? root),
    signedRoot: signed !== null && signed.equals(root),
    rowsRead: reader.rowsRead + extraRows,
  };
}
