/**
 * RFC 6962 / RFC 9162 Merkle tree over the ledger's leaf hashes.
 *
 * Invariants:
 * - Inputs are leaf hashes, already sha256(0x00 || leaf data): the `leaf_hash` column is the RFC 6962 leaf hash.
 * - Interior nodes are sha256(0x01 || left || right); the empty tree's root is sha256("").
 * - The tree shape is RFC 6962's MTH: split at the largest power of two below n. Everything here is iterative
 *   (no recursion over n), so a million leaves costs about a million hashes and O(log n) stack.
 * - Verifiers return false on any malformed input (wrong lengths, indexes out of range); they never throw.
 * Tree sizes and indexes are plain numbers; arithmetic avoids 32-bit bit operators so sizes above 2^31 work.
 */
import crypto from "node:crypto";

export const HASH_BYTES = 32;
export const EMPTY_TREE_ROOT: Buffer = crypto.createHash("sha256").digest();

/** One-shot SHA-256 (Node >= 20.12 has crypto.hash, which is about twice as fast as createHash for small inputs). */
const oneShotHash: (data: Buffer) => Buffer =
  typeof crypto.hash === "function"
    ? (data) => crypto.hash("sha256", data, "buffer")
    : (data) => crypto.createHash("sha256").update(data).digest();

/**
 * Writes sha256(input) into `out` at byte `at`. With crypto.hash, through a latin1 string rather than a Buffer per
 * hash (see hashChildrenLatin1 below): a million-leaf batch root took 3.0 s of CPU with a Buffer per node, 1.5 s so.
 */
const nodeHashInto: (input: Buffer, out: Buffer, at: number) => void =
  typeof crypto.hash === "function"
    ? (input, out, at) => void out.write(crypto.hash("sha256", input, "binary"), at, HASH_BYTES, "latin1")
    : (input, out, at) => void crypto.createHash("sha256").update(input).digest().copy(out, at);

/** RFC 6962 leaf hash of raw leaf data: sha256(0x00 || data). Used for test vectors; the ledger computes its own. */
export function hashLeafData(data: Uint8Array): Buffer {
  return crypto
    .createHash("sha256")
    .update(Buffer.from([0]))
    .update(data)
    .digest();
}

/** Interior node: sha256(0x01 || left || right). */
// Reused input buffer for interior nodes: safe because hashing is synchronous and the digest is a new Buffer.
const NODE_INPUT = Buffer.alloc(1 + 2 * HASH_BYTES);

export function hashChildren(left: Uint8Array, right: Uint8Array): Buffer {
  NODE_INPUT[0] = 1;
  NODE_INPUT.set(left, 1);
  NODE_INPUT.set(right, 1 + HASH_BYTES);
  return oneShotHash(NODE_INPUT);
}

/** Largest power of two strictly smaller than n (n >= 2). */
export function largestPowerOfTwoBelow(n: number): number {
  let k = 1;
  while (k * 2 < n) k *= 2;
  return k;
}

function isHash(b: unknown): b is Uint8Array {
  return b instanceof Uint8Array && b.length === HASH_BYTES;
}

/**
 * Root of the subtree over leafHashes[start, end). Reduces level by level in one scratch buffer:
 * an odd node at the end of a level is carried up unchanged, which yields exactly RFC 6962's MTH.
 */
export function subtreeRoot(leafHashes: readonly Uint8Array[], start: number, end: number): Buffer {
  const n = end - start;
  if (n <= 0) return Buffer.from(EMPTY_TREE_ROOT);
  const level = Buffer.allocUnsafe(n * HASH_BYTES);
  for (let i = 0; i < n; i++) {
    const h = leafHashes[start + i];
    if (!isHash(h)) throw new Error(`merkle: leaf ${start + i} is not a ${HASH_BYTES}-byte hash`);
    level.set(h, i * HASH_BYTES);
  }
  const scratch = Buffer.allocUnsafe(1 + 2 * HASH_BYTES);
  scratch[0] = 1;
  let width = n;
  while (width > 1) {
    const pairs = Math.floor(width / 2);
    for (let i = 0; i < pairs; i++) {
      level.copy(scratch, 1, 2 * i * HASH_BYTES, (2 * i + 2) * HASH_BYTES);
      nodeHashInto(scratch, level, i * HASH_BYTES);
    }
    if (width % 2 === 1) level.copy(level, pairs * HASH_BYTES, (width - 1) * HASH_BYTES, width * HASH_BYTES);
    width = pairs + (width % 2);
  }
  return Buffer.from(level.subarray(0, HASH_BYTES));
}

/** MTH(D[n]): the Merkle tree hash of all the given leaf hashes. */
export function merkleRoot(leafHashes: readonly Uint8Array[]): Buffer {
  return subtreeRoot(leafHashes, 0, leafHashes.length);
}

// Fast node hashing for the streaming trees below: nodes are kept as 32-character latin1 strings (one byte per
// character), which crypto.hash returns ("binary" = latin1) and Buffer#write reads back far cheaper than Buffers
// are allocated (a Buffer per hash costs about four times the hash itself).
const NODE_SCRATCH = Buffer.alloc(1 + 2 * HASH_BYTES);
NODE_SCRATCH[0] = 1;
const LEAF_SCRATCH = Buffer.alloc(HASH_BYTES);

function hashChildrenLatin1(left: string, right: string): string {
  NODE_SCRATCH.write(left, 1, HASH_BYTES, "latin1");
  NODE_SCRATCH.write(right, 1 + HASH_BYTES, HASH_BYTES, "latin1");
  return typeof crypto.hash === "function"
    ? crypto.hash("sha256", NODE_SCRATCH, "binary")
    : crypto.createHash("sha256").update(NODE_SCRATCH).digest("binary");
}

/**
 * A leaf hash given as 64 hex digits, as a latin1 node string; null when it is not a 64-hex-digit hash (hex
 * decoding stops at the first character that is not a hex digit, so fewer than 32 bytes come out).
 */
export function leafNodeFromHex(leafHex: string): string | null {
  if (leafHex.length !== 2 * HASH_BYTES || LEAF_SCRATCH.write(leafHex, 0, HASH_BYTES, "hex") !== HASH_BYTES) return null;
  return LEAF_SCRATCH.toString("latin1", 0, HASH_BYTES);
}

/**
 * A compact range [begin, end) of the tree: the roots of the perfect subtrees that cover it, each aligned as in
 * the full tree (a subtree of 2^k leaves starts at a multiple of 2^k), left to right. Leaves are pushed in order;
 * two neighbours merge only when they are the two halves of one aligned subtree. With begin = 0 this is the
 * frontier of the tree of size end, and `root()` is MTH over leaves [0, end). Ranges computed apart (range
 * workers) are joined with `append`, which is exact because every node is aligned: the tree does not depend on
 * how the leaves were split.
 * Node hashes are latin1 strings (see above); `hashes()` gives them as one string for cheap transfer.
 */
export class CompactRange {
  private readonly nodes: string[] = [];
  private readonly sizes: number[] = [];
  private endAt: number;

  constructor(readonly begin = 0) {
    if (!Number.isInteger(begin) || begin < 0) throw new Error(`merkle: bad range start ${begin}`);
    this.endAt = begin;
  }

  get end(): number {
    return this.endAt;
  }

  /** Appends one leaf hash (latin1 node string, e.g. from leafNodeFromHex). */
  pushLeaf(leaf: string): void {
    this.pushNode(leaf, 1);
  }

  /** Appends an aligned perfect subtree of `size` leaves starting at this.end (size a power of two dividing end). */
  pushNode(hash: string, size: number): void {
    let node = hash;
    let width = size;
    let start = this.endAt;
    let i = this.sizes.length - 1;
    // Merge with the left neighbour while it is the left half of an aligned subtree twice as wide.
    while (i >= 0 && this.sizes[i] === width && (start - width) % (2 * width) === 0) {
      node = hashChildrenLatin1(this.nodes[i]!, node);
      this.nodes.pop();
      this.sizes.pop();
      start -= width;
      width *= 2;
      i--;
    }
    this.nodes.push(node);
    this.sizes.push(width);
    this.endAt += size;
  }

  /** Appends a whole range that starts where this one ends (its nodes, as from `hashes()` and `nodeSizes()`). */
  append(hashes: string, sizes: readonly number[]): void {
    for (let k = 0; k < sizes.length; k++) this.pushNode(hashes.slice(k * HASH_BYTES, (k + 1) * HASH_BYTES), sizes[k]!);
  }

  hashes(): string {
    return this.nodes.join("");
  }

  nodeSizes(): number[] {
    return [...this.sizes];
  }

  clone(): CompactRange {
    const c = new CompactRange(this.begin);
    c.nodes.push(...this.nodes);
    c.sizes.push(...this.sizes);
    c.endAt = this.endAt;
    return c;
  }

  /** MTH over leaves [0, end) as hex; only for a range that starts at 0. */
  rootHex(): string {
    if (this.begin !== 0) throw new Error("merkle: only a range starting at leaf 0 has a root");
    if (this.nodes.length === 0) return EMPTY_TREE_ROOT.toString("hex");
    let acc = this.nodes[this.nodes.length - 1]!;
    for (let i = this.nodes.length - 2; i >= 0; i--) acc = hashChildrenLatin1(this.nodes[i]!, acc);
    return Buffer.from(acc, "latin1").toString("hex");
  }
}

/**
 * Streaming root computation (a compact range from leaf 0): push leaf hashes in order and read the root of the tree
 * over everything pushed so far at any moment, with O(log n) memory. Checkpoint signing uses it to continue the
 * tree from the frontier recorded with the previous checkpoint.
 */
export class MerkleAccumulator {
  private range = new CompactRange(0);

  get size(): number {
    return this.range.end;
  }

  push(leafHash: Uint8Array): void {
    if (!isHash(leafHash)) throw new Error(`merkle: leaf ${this.size} is not a ${HASH_BYTES}-byte hash`);
    this.range.pushLeaf(Buffer.from(leafHash.buffer, leafHash.byteOffset, HASH_BYTES).toString("latin1"));
  }

  /** push() for a leaf given as 64 hex characters (what the ledger stores). */
  pushHex(leafHex: string): void {
    const leaf = leafNodeFromHex(leafHex);
    if (leaf === null) throw new Error(`merkle: leaf ${this.size} is not a 64-hex-digit hash`);
    this.range.pushLeaf(leaf);
  }

  /**
   * The compact range: roots of the perfect subtrees covering leaves [0, size), left to right (one per set bit
   * of size, largest first). Enough to continue the tree later without the old leaves.
   */
  frontier(): Buffer[] {
    const all = Buffer.from(this.range.hashes(), "latin1");
    return this.range.nodeSizes().map((_, k) => Buffer.from(all.subarray(k * HASH_BYTES, (k + 1) * HASH_BYTES)));
  }

  /**
   * Resumes a tree from a frontier taken at `size`. The caller must check the resumed root against a trusted
   * (signed) root: a frontier that folds to it cannot differ from the true one without a SHA-256 collision.
   */
  static fromFrontier(size: number, frontier: readonly Uint8Array[]): MerkleAccumulator {
    if (!Number.isInteger(size) || size < 0) throw new Error(`merkle: bad tree size ${size}`);
    const sizes: number[] = [];
    for (let bit = 2 ** Math.floor(Math.log2(Math.max(size, 1))); bit >= 1; bit /= 2) if (Math.floor(size / bit) % 2 === 1) sizes.push(bit);
    if (size === 0) sizes.length = 0;
    if (sizes.length !== frontier.length || !frontier.every(isHash))
      throw new Error(`merkle: a frontier for size ${size} needs ${sizes.length} hashes`);
    const acc = new MerkleAccumulator();
    frontier.forEach((h, i) => acc.range.pushNode(Buffer.from(h).toString("latin1"), sizes[i]!));
    return acc;
  }

  /** Root over all leaves pushed so far: fold the perfect subtrees from the right, as MTH splits them. */
  root(): Buffer {
    return Buffer.from(this.range.rootHex(), "hex");
  }
}

/** RFC 9162 2.1.3.1 PATH(m, D[n]): audit path for leaf `leafIndex` (0-based) in the tree over all leafHashes. */
export function inclusionProof(leafIndex: number, leafHashes: readonly Uint8Array[]): Buffer[] {
  const n = leafHashes.length;
  if (!Number.isInteger(leafIndex) || leafIndex < 0 || leafIndex >= n) {
    throw new Error(`merkle: leaf index ${leafIndex} is outside a tree of size ${n}`);
  }
  return inclusionPathOver(leafIndex, n, (lo, hi) => subtreeRoot(leafHashes, lo, hi));
}

/** MTH of the leaves [lo, hi), from whatever holds them (leaf hashes in memory, or stored tree levels). */
export type RangeRoot = (lo: number, hi: number) => Buffer;

/**
 * RFC 9162 PATH(m, D[n]) for leaf `leafIndex` of a tree of `n` leaves (0 <= leafIndex < n, checked by the caller),
 * bottom-up, reading subtree roots from `rangeRoot` top-down.
 */
export function inclusionPathOver(leafIndex: number, n: number, rangeRoot: RangeRoot): Buffer[] {
  // Walk down from the root; each step records the sibling subtree. RFC order is bottom-up, hence the reverse.
  const topDown: Buffer[] = [];
  let lo = 0;
  let hi = n;
  while (hi - lo > 1) {
    const k = largestPowerOfTwoBelow(hi - lo);
    if (leafIndex - lo < k) {
      topDown.push(rangeRoot(lo + k, hi));
      hi = lo + k;
    } else {
      topDown.push(rangeRoot(lo, lo + k));
      lo = lo + k;
    }
  }
  return topDown.reverse();
}

/** RFC 9162 2.1.3.2: true when `proof` shows `leafHash` is leaf `leafIndex` of the tree of `treeSize` with `root`. */
export function verifyInclusion(
  leafIndex: number,
  treeSize: number,
  leafHash: Uint8Array,
  proof: readonly Uint8Array[],
  root: Uint8Array,
): boolean {
  if (!Number.isInteger(leafIndex) || !Number.isInteger(treeSize) || leafIndex < 0 || leafIndex >= treeSize) return false;
  if (!isHash(leafHash) || !isHash(root) || !proof.every(isHash)) return false;
  let fn = leafIndex;
  let sn = treeSize - 1;
  let r: Buffer = Buffer.from(leafHash);
  for (const p of proof) {
    if (sn === 0) return false;
    if (fn % 2 === 1 || fn === sn) {
      r = hashChildren(p, r);
      while (fn % 2 === 0 && fn !== 0) {
        fn = Math.floor(fn / 2);
        sn = Math.floor(sn / 2);
      }
    } else {
      r = hashChildren(r, p);
    }
    fn = Math.floor(fn / 2);
    sn = Math.floor(sn / 2);
  }
  return sn === 0 && r.equals(root);
}

/**
 * RFC 9162 2.1.4.1 PROOF(m, D[n]) via SUBPROOF(m, D[n], true): shows the tree of the first m leaves is a prefix
 * of the tree over all leafHashes. Empty for m = 0 and m = n.
 */
export function consistencyProof(m: number, leafHashes: readonly Uint8Array[]): Buffer[] {
  const n = leafHashes.length;
  if (!Number.isInteger(m) || m < 0 || m > n) throw new Error(`merkle: cannot prove consistency of size ${m} with size ${n}`);
  return consistencyPathOver(m, n, (lo, hi) => subtreeRoot(leafHashes, lo, hi));
}

/**
 * RFC 9162 PROOF(m, D[n]) via SUBPROOF(m, D[n], true) for 0 <= m <= n (checked by the caller), reading subtree
 * roots from `rangeRoot`. Empty for m = 0 and m = n.
 */
export function consistencyPathOver(m: number, n: number, rangeRoot: RangeRoot): Buffer[] {
  if (m === 0 || m === n) return [];
  const topDown: Buffer[] = [];
  let head: Buffer[] = [];
  let lo = 0;
  let hi = n;
  let mm = m;
  let startFromOldRoot = true; // SUBPROOF's b: the old tree's root itself need not be sent
  for (;;) {
    const size = hi - lo;
    if (mm === size) {
      head = startFromOldRoot ? [] : [rangeRoot(lo, hi)];
      break;
    }
    const k = largestPowerOfTwoBelow(size);
    if (mm <= k) {
      topDown.push(rangeRoot(lo + k, hi));
      hi = lo + k;
    } else {
      topDown.push(rangeRoot(lo, lo + k));
      lo = lo + k;
      mm -= k;
      startFromOldRoot = false;
    }
  }
  return head.concat(topDown.reverse());
}

/**
 * RFC 9162 2.1.4.2: true when `proof` shows the tree of size m with rootM is a prefix of the tree of size n with rootN.
 * Stricter than the RFC at the edges: m = 0 needs rootM = the empty root, m = n needs equal roots, both with an empty proof.
 */
export function verifyConsistency(m: number, n: number, rootM: Uint8Array, rootN: Uint8Array, proof: readonly Uint8Array[]): boolean {
  if (!Number.isInteger(m) || !Number.isInteger(n) || m < 0 || m > n) return false;
  if (!isHash(rootM) || !isHash(rootN) || !proof.every(isHash)) return false;
  if (m === 0) return proof.length === 0 && Buffer.from(rootM).equals(EMPTY_TREE_ROOT);
  if (m === n) return proof.length === 0 && Buffer.from(rootM).equals(rootN);
  if (proof.length === 0) return false;

  const path: Uint8Array[] = isPowerOfTwo(m) ? [rootM, ...proof] : [...proof];
  let fn = m - 1;
  let sn = n - 1;
  while (fn % 2 === 1) {
    fn = Math.floor(fn / 2);
    sn = Math.floor(sn / 2);
  }
  let fr: Buffer = Buffer.from(path[0]!);
  let sr: Buffer = Buffer.from(path[0]!);
  for (let i = 1; i < path.length; i++) {
    const c = path[i]!;
    if (sn === 0) return false;
    if (fn % 2 === 1 || fn === sn) {
      fr = hashChildren(c, fr);
      sr = hashChildren(c, sr);
      while (fn % 2 === 0 && fn !== 0) {
        fn = Math.floor(fn / 2);
        sn = Math.floor(sn / 2);
      }
    } else {
      sr = hashChildren(sr, c);
    }
    fn = Math.floor(fn / 2);
    sn = Math.floor(sn / 2);
  }
  return sn === 0 && fr.equals(rootM) && sr.equals(rootN);
}

function isPowerOfTwo(x: number): boolean {
  return x > 0 && largestPowerOfTwoBelow(x + 1) === x;
}
