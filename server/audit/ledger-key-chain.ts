/**
 * The ledger's chain of signing keys as a holder of one of its keys can vouch for it, on either store: the Audit page's
 * signature judge and its "Download latest checkpoint" (service.ts), and `audit checkpoint-export`
 * (server/cli/audit-checkpoint-export.ts) read it here.
 *
 * Invariants:
 * - The chain is key-rotation.ts KeyChain (the rule `audit verify` follows): from the installation's first key (the
 *   first checkpoint's key), each valid rotation introduces the key in force from its seq on.
 * - The first key is a voucher's key when it is that key, else the public key a rotation records as the key it
 *   replaced, accepted only when its fingerprint is the first checkpoint's (a fingerprint is a hash of the key, so no
 *   other key passes). Later keys come from the rotations' payloads, each endorsed by its predecessor.
 * - A chain none of whose keys the caller holds (a voucher) vouches for nothing: null. So a database rewritten with
 *   other keys yields no chain, and no public key is ever handed out that the caller's own key does not lead to.
 */
import { asc, eq, inArray } from "drizzle-orm";
import { reader, type Store } from "@/db/store";
import type { AuditEventRow } from "./ledger";
import { parseAuditPublicKey, type AuditPublicKey } from "./keys";
import { KEY_ROTATE_ACTION, KeyChain } from "./key-rotation";
import { treeHeadOf, type AuditCheckpointRow } from "./checkpoints";

type RotationClaims = { previousTreeSize?: unknown; oldFingerprint?: unknown; oldPublicKeyPem?: unknown };

function rotationClaims(rotation: AuditEventRow): RotationClaims {
  try {
    const parsed = JSON.parse(rotation.payload) as unknown;
    return parsed && typeof parsed === "object" ? (parsed as RotationClaims) : {};
  } catch {
    return {};
  }
}

/** The tree size a key rotation's payload says the old key endorsed, if it names one (KeyChain checks the rest). */
function endorsedTreeSize(rotation: AuditEventRow): number | null {
  const size = rotationClaims(rotation).previousTreeSize;
  return typeof size === "number" && Number.isSafeInteger(size) ? size : null;
}

/** The installation's first key (see the header); null when neither a voucher nor a rotation gives it. */
function firstKeyOf(
  firstFingerprint: string,
  vouchers: readonly AuditPublicKey[],
  rotations: readonly AuditEventRow[],
): AuditPublicKey | null {
  const held = vouchers.find((key) => key.fingerprint === firstFingerprint);
  if (held) return held;
  for (const rotation of rotations) {
    const { oldFingerprint, oldPublicKeyPem } = rotationClaims(rotation);
    if (oldFingerprint !== firstFingerprint || typeof oldPublicKeyPem !== "string") continue;
    try {
      const key = parseAuditPublicKey(oldPublicKeyPem);
      if (key.fingerprint === firstFingerprint) return key;
    } catch {
      // not a public key: try the next rotation
    }
  }
  return null;
}

/**
 * The ledger's key chain, or null when nothing is signed yet or no voucher is a key of it. Reads the first checkpoint,
 * the rotation events and only the checkpoints they endorse (a rotation is valid only when its (T, R) is the head of a
 * checkpoint signed by the key in force), not every checkpoint.
 */
export async function ledgerKeyChainOn(s: Store, vouchers: readonly AuditPublicKey[]): Promise<KeyChain | null> {
  const { auditEvents, auditCheckpoints } = s.tables;
  const [firstCheckpoint] = await reader(s)
    .select({ keyFingerprint: auditCheckpoints.keyFingerprint })
    .from(auditCheckpoints)
    .orderBy(asc(auditCheckpoints.id))
    .limit(1);
  if (!firstCheckpoint) return null;
  const rotations: AuditEventRow[] = await reader(s)
    .select()
    .from(auditEvents)
    .where(eq(auditEvents.action, KEY_ROTATE_ACTION))
    .orderBy(asc(auditEvents.seq));
  const firstKey = firstKeyOf(firstCheckpoint.keyFingerprint, vouchers, rotations);
  if (!firstKey) return null;
  const sizes = [...new Set(rotations.map(endorsedTreeSize).filter((n): n is number => n !== null))];
  const endorsed: AuditCheckpointRow[] =
    sizes.length > 0 ? await reader(s).select().from(auditCheckpoints).where(inArray(auditCheckpoints.treeSize, sizes)) : [];
  const chain = KeyChain.build(firstKey, rotations, endorsed);
  const vouched = chain.segments.some((segment) => vouchers.some((key) => key.fingerprint === segment.key.fingerprint));
  return vouched ? chain : null;
}

/** Why `cp` is not a checkpoint of `chain` (signed by the key in force at its tree size), or null when it is. */
export function checkpointProblemIn(chain: KeyChain | null, cp: AuditCheckpointRow): string | null {
  if (!chain) return `checkpoint #${cp.id}: no key this process holds leads to the key that signed it`;
  return chain.checkpointProblem(`checkpoint #${cp.id}`, treeHeadOf(cp), cp.signature);
}

/** The public key that signed `cp` (the key in force at its tree size, under which it verifies), or null. */
export function signerKeyIn(chain: KeyChain | null, cp: AuditCheckpointRow): AuditPublicKey | null {
  return chain && checkpointProblemIn(chain, cp) === null ? chain.keyAt(cp.treeSize).key : null;
}
