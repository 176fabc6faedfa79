/**
 * Anchors: tree heads the verifier trusts from OUTSIDE the log being verified, so that a holder of the server's
 * signing key cannot rewrite or truncate history unseen. Two kinds:
 * - "trusted checkpoint": a signed checkpoint the auditor exported earlier and kept elsewhere;
 * - "witness": a checkpoint cosigned by an independent witness (server/audit/witness/).
 *
 * Invariant: whoever builds an Anchor has already checked its signature (server signature of a trusted
 * checkpoint, witness cosignature). The verifier (verify.ts) then compares the log's Merkle root at
 * `treeSize` with `rootHash`: a mismatch means a split view or rewritten history, an anchor larger than the
 * log means truncation. Verification is "anchored up to N" where N is the largest matched anchor size.
 */
import type { TrustedCheckpoint } from "./checkpoints";

export type AnchorKind = "trusted checkpoint" | "witness";

export type Anchor = { kind: AnchorKind; name: string; treeSize: number; rootHash: string };

/** The anchor a trusted checkpoint file stands for (its signature is checked by the verifier against the trusted key). */
export function anchorFromTrustedCheckpoint(tc: TrustedCheckpoint, name = "the trusted checkpoint"): Anchor {
  return { kind: "trusted checkpoint", name, treeSize: tc.treeHead.treeSize, rootHash: tc.treeHead.rootHash };
}

/** What the result says when nothing outside the log vouches for it. */
export const NOT_ANCHORED_MEANING =
  "no trusted checkpoint or witness cosignature was given: the chain and signatures are consistent, but a holder of the signing key could have rewritten or truncated history and re-signed it";
