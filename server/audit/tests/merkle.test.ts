/**
 * Merkle tree: known-answer vectors from the certificate-transparency / transparency-dev reference tests
 * (leaf inputs, roots for sizes 1..8, published inclusion and consistency paths), then properties over
 * every size 1..70 and malformed proofs.
 */
import { describe, expect, it } from "vitest";
import crypto from "node:crypto";
import {
  CompactRange,
  EMPTY_TREE_ROOT,
  MerkleAccumulator,
  consistencyProof,
  hashLeafData,
  inclusionProof,
  merkleRoot,
  verifyConsistency,
  verifyInclusion,
} from "../merkle";

const hex = (s: string) => Buffer.from(s, "hex");
const toHex = (bs: Buffer[]) => bs.map((b) => b.toString("hex"));

const LEAF_INPUTS = ["", "00", "10", "2021", "3031", "40414243", "5051525354555657", "606162636465666768696a6b6c6d6e6f"];
const LEAVES = LEAF_INPUTS.map((s) => hashLeafData(hex(s)));
/** Published roots for tree sizes 1..8. */
const ROOTS = [
  "6e340b9cffb37a989ca544e6bb780a2c78901d3fb33738768511a30617afa01d",
  "fac54203e7cc696cf0dfcb42c92a1d9dbaf70ad9e621f4bd8d98662f00e3c125",
  "aeb6bcfe274b70a14fb067a5e5578264db0fa9b51af5e0ba159158f329e06e77",
  "d37ee418976dd95753c1c73862b9398fa2a2cf9b4ff0fdfe8b30cd95209614b7",
  "4e3bbb1f7b478dcfe71fb631631519a3bca12c9aefca1612bfce4c13a86264d4",
  "76e67dadbcdf1e10e1b74ddc608abd2f98dfb16fbce75277b5232a127f2087ef",
  "ddb89be403809e325750d3d263cd78929c2942b7942a34b77e122c9594a74c8c",
  "5dc9da79a70659a9ad559cb701ded9a2ab9d823aad2f4960cfe370eff4604328",
];
/** Published inclusion paths: 1-based leaf, tree size, path. */
const INCLUSION: [number, number, string[]][] = [
  [1, 1, []],
  [
    1,
    8,
    [
      "96a296d224f285c67bee93c30f8a309157f0daa35dc5b87e410b78630a09cfc7",
      "5f083f0a1a33ca076a95279832580db3e0ef4584bdff1f54c8a360f50de3031e",
      "6b47aaf29ee3c2af9af889bc1fb9254dabd31177f16232dd6aab035ca39bf6e4",
    ],
  ],
  [
    6,
    8,
    [
      "bc1a0643b12e4d2d7c77918f44e0f4f79a838b6cf9ec5b5c283e1f4d88599e6b",
      "ca854ea128ed050b41b35ffc1b87b8eb2bde461e9e3b5596ece6b9d5975a0ae0",
      "d37ee418976dd95753c1c73862b9398fa2a2cf9b4ff0fdfe8b30cd95209614b7",
    ],
  ],
  [3, 3, ["fac54203e7cc696cf0dfcb42c92a1d9dbaf70ad9e621f4bd8d98662f00e3c125"]],
  [
    2,
    5,
    [
      "6e340b9cffb37a989ca544e6bb780a2c78901d3fb33738768511a30617afa01d",
      "5f083f0a1a33ca076a95279832580db3e0ef4584bdff1f54c8a360f50de3031e",
      "bc1a0643b12e4d2d7c77918f44e0f4f79a838b6cf9ec5b5c283e1f4d88599e6b",
    ],
  ],
];
/** Published consistency proofs: size1, size2, proof. */
const CONSISTENCY: [number, number, string[]][] = [
  [1, 1, []],
  [
    1,
    8,
    [
      "96a296d224f285c67bee93c30f8a309157f0daa35dc5b87e410b78630a09cfc7",
      "5f083f0a1a33ca076a95279832580db3e0ef4584bdff1f54c8a360f50de3031e",
      "6b47aaf29ee3c2af9af889bc1fb9254dabd31177f16232dd6aab035ca39bf6e4",
    ],
  ],
  [
    6,
    8,
    [
      "0ebc5d3437fbe2db158b9f126a1d118e308181031d0a949f8dededebc558ef6a",
      "ca854ea128ed050b41b35ffc1b87b8eb2bde461e9e3b5596ece6b9d5975a0ae0",
      "d37ee418976dd95753c1c73862b9398fa2a2cf9b4ff0fdfe8b30cd95209614b7",
    ],
  ],
  [
    2,
    5,
    [
      "5f083f0a1a33ca076a95279832580db3e0ef4584bdff1f54c8a360f50de3031e",
      "bc1a0643b12e4d2d7c77918f44e0f4f79a838b6cf9ec5b5c283e1f4d88599e6b",
    ],
  ],
  [
    6,
    7,
    [
      "0ebc5d3437fbe2db158b9f126a1d118e308181031d0a949f8dededebc558ef6a",
      "b08693ec2e721597130641e8211e7eedccb4c26413963eee6c1e2ed16ffb1a5f",
      "d37ee418976dd95753c1c73862b9398fa2a2cf9b4ff0fdfe8b30cd95209614b7",
    ],
  ],
];

/** Deterministic pseudo-random leaf hashes for the property tests. */
function leavesOf(n: number): Buffer[] {
  return Array.from({ length: n }, (_, i) => crypto.createHash("sha256").update(`\u0000leaf-${i}`).digest());
}

describe("merkle known answers (RFC 6962 reference vectors)", () => {
  it("hashes the empty tree to sha256 of the empty string", () => {
    expect(merkleRoot([]).toString("hex")).toBe("e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855");
    expect(new MerkleAccumulator().root().equals(EMPTY_TREE_ROOT)).toBe(true);
  });

  it("computes the published roots for sizes 1..8, in batch and streaming", () => {
    const acc = new MerkleAccumulator();
    for (let n = 1; n <= 8; n++) {
      expect(merkleRoot(LEAVES.slice(0, n)).toString("hex")).toBe(ROOTS[n - 1]);
      acc.push(LEAVES[n - 1]!);
      expect(acc.root().toString("hex")).toBe(ROOTS[n - 1]);
    }
  });

  it.each(INCLUSION)("produces and verifies the published inclusion path for leaf %i of %i", (leaf, size, path) => {
    const leaves = LEAVES.slice(0, size);
    expect(toHex(inclusionProof(leaf - 1, leaves))).toEqual(path);
    expect(verifyInclusion(leaf - 1, size, LEAVES[leaf - 1]!, path.map(hex), hex(ROOTS[size - 1]!))).toBe(true);
  });

  it.each(CONSISTENCY)("produces and verifies the published consistency proof %i -> %i", (m, n, path) => {
    expect(toHex(consistencyProof(m, LEAVES.slice(0, n)))).toEqual(path);
    expect(verifyConsistency(m, n, hex(ROOTS[m - 1]!), hex(ROOTS[n - 1]!), path.map(hex))).toBe(true);
  });
});

describe("merkle properties", () => {
  const MAX = 70;
  const leaves = leavesOf(MAX);
  const roots = Array.from({ length: MAX + 1 }, (_, n) => merkleRoot(leaves.slice(0, n)));

  it("streaming and batch roots agree for every size 0..70", () => {
    const acc = new MerkleAccumulator();
    expect(acc.root().equals(roots[0]!)).toBe(true);
    for (let n = 1; n <= MAX; n++) {
      acc.push(leaves[n - 1]!);
      expect(acc.root().equals(roots[n]!)).toBe(true);
    }
  });

  it("compact ranges computed apart (as range workers do) join into the same roots, for every split of 0..70", () => {
    const latin1 = leaves.map((b) => b.toString("latin1"));
    for (let cut = 0; cut <= MAX; cut++) {
      const left = new CompactRange(0);
      latin1.slice(0, cut).forEach((l) => left.pushLeaf(l));
      const right = new CompactRange(cut);
      for (let n = cut + 1; n <= MAX; n++) {
        right.pushLeaf(latin1[n - 1]!);
        const joined = left.clone();
        joined.append(right.hashes(), right.nodeSizes());
        expect(joined.end).toBe(n);
        expect(joined.rootHex(), `split at ${cut}, size ${n}`).toBe(roots[n]!.toString("hex"));
      }
    }
    expect(() => new CompactRange(3).rootHex()).toThrow(/only a range starting at leaf 0/);
  });

  it("a tree resumed from its frontier at any size continues exactly like the original", () => {
    for (let m = 0; m <= MAX; m += 3) {
      const original = new MerkleAccumulator();
      for (const h of leaves.slice(0, m)) original.push(h);
      const resumed = MerkleAccumulator.fromFrontier(m, original.frontier());
      expect(resumed.root().equals(roots[m]!)).toBe(true);
      for (const h of leaves.slice(m)) resumed.push(h);
      expect(resumed.root().equals(roots[MAX]!)).toBe(true);
      expect(resumed.size).toBe(MAX);
    }
    const seven = new MerkleAccumulator();
    for (const h of leaves.slice(0, 7)) seven.push(h);
    expect(seven.frontier()).toHaveLength(3);
    expect(() => MerkleAccumulator.fromFrontier(8, seven.frontier())).toThrow(/needs 1 hashes/);
  });

  it("every inclusion proof for sizes 1..70 verifies, and fails for the wrong index, leaf, size, extra or missing step or a flipped byte", () => {
    for (let n = 1; n <= MAX; n++) {
      const tree = leaves.slice(0, n);
      for (let i = 0; i < n; i++) {
        const proof = inclusionProof(i, tree);
        expect(verifyInclusion(i, n, tree[i]!, proof, roots[n]!)).toBe(true);
        if (n > 1) expect(verifyInclusion((i + 1) % n, n, tree[i]!, proof, roots[n]!)).toBe(false);
        expect(verifyInclusion(i, n, leaves[(i + 1) % MAX]!, proof, roots[n]!)).toBe(false);
        // A size the path cannot reach fails. (A path can also fit the next size up: RFC 9162 paths do not
        // bind the tree size on their own, which is why a checkpoint signs size and root together.)
        expect(verifyInclusion(i, i, tree[i]!, proof, roots[n]!)).toBe(false);
        if (proof.length > 0) expect(verifyInclusion(0, 1, tree[i]!, proof, roots[n]!)).toBe(false);
        expect(verifyInclusion(i, n, tree[i]!, [...proof, roots[n]!], roots[n]!)).toBe(false);
        if (proof.length > 0) {
          expect(verifyInclusion(i, n, tree[i]!, proof.slice(1), roots[n]!)).toBe(false);
          const flipped = proof.map((p) => Buffer.from(p));
          flipped[i % proof.length]![7]! ^= 0x10;
          expect(verifyInclusion(i, n, tree[i]!, flipped, roots[n]!)).toBe(false);
        }
      }
    }
  });

  it("every consistency proof for sizes 1..70 verifies, and fails when tampered with", () => {
    for (let n = 1; n <= MAX; n++) {
      const tree = leaves.slice(0, n);
      for (let m = 0; m <= n; m++) {
        const proof = consistencyProof(m, tree);
        expect(verifyConsistency(m, n, roots[m]!, roots[n]!, proof)).toBe(true);
        if (m > 0 && m < n) {
          expect(proof.length).toBeGreaterThan(0);
          expect(verifyConsistency(m, n, roots[m]!, roots[n]!, proof.slice(0, -1))).toBe(false);
          expect(verifyConsistency(m, n, roots[m]!, roots[n]!, [...proof, roots[n]!])).toBe(false);
          expect(verifyConsistency(m, n, roots[n]!, roots[m]!, proof)).toBe(false);
          expect(verifyConsistency(m, n, roots[m - 1]!, roots[n]!, proof)).toBe(false);
          expect(verifyConsistency(m + 1 <= n ? m + 1 : m - 1, n, roots[m]!, roots[n]!, proof)).toBe(false);
          for (let j = 0; j < proof.length; j++) {
            const flipped = proof.map((p) => Buffer.from(p));
            flipped[j]![0]! ^= 0x01;
            expect(verifyConsistency(m, n, roots[m]!, roots[n]!, flipped)).toBe(false);
          }
        }
      }
    }
  });

  it("rejects malformed inputs without throwing", () => {
    const tree = leaves.slice(0, 5);
    const proof = inclusionProof(2, tree);
    expect(verifyInclusion(2, 5, tree[2]!, [...proof.slice(0, 2), proof[2]!.subarray(0, 31)], roots[5]!)).toBe(false);
    expect(verifyInclusion(-1, 5, tree[2]!, proof, roots[5]!)).toBe(false);
    expect(verifyInclusion(5, 5, tree[2]!, proof, roots[5]!)).toBe(false);
    expect(verifyInclusion(2, 5, tree[2]!.subarray(1), proof, roots[5]!)).toBe(false);
    expect(verifyConsistency(6, 5, roots[5]!, roots[5]!, [])).toBe(false);
    expect(verifyConsistency(3, 5, roots[3]!, roots[5]!, [])).toBe(false);
    expect(verifyConsistency(0, 5, roots[1]!, roots[5]!, [])).toBe(false);
    expect(() => inclusionProof(5, tree)).toThrow();
    expect(() => consistencyProof(6, tree)).toThrow();
  });

  it("computes the root of 1,000,000 leaves, streaming as in batch (its speed: bench/audit.ts merkle_root_1m_leaves_cpu_s)", () => {
    const n = 1_000_000;
    const big = new Array<Buffer>(n);
    const seed = crypto.createHash("sha256").update("seed").digest();
    for (let i = 0; i < n; i++) {
      const b = Buffer.from(seed);
      b.writeUInt32BE(i, 0);
      big[i] = b;
    }
    const root = merkleRoot(big);
    const acc = new MerkleAccumulator();
    for (const h of big) acc.push(h);
    expect(acc.root().equals(root)).toBe(true);
    expect(root.equals(merkleRoot(big.slice(0, n - 1)))).toBe(false);
  });
});
