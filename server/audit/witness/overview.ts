/**
 * The witnesses on the Audit page: each witness configured in RUNLEDGER_WITNESSES (URL, name, key ID, reachable,
 * last success, last error, failing since), this log's origin and verifier key (what a witness operator needs),
 * and the latest stored cosignatures, each re-verified here under the configured witness keys.
 * Read-only, on either store (awaited reads). The witnesses router (./router.ts) serves it to every signed-in role.
 */
import type { Db } from "@/db/client";
import type { Store } from "@/db/store";
import type { AuditKeys } from "@/server/audit/keys";
import { formatCheckpointBody, logOrigin, logVerifierKey } from "./checkpoint-note";
import { configuredWitnesses } from "./start";
import { firstCheckpointKeyFingerprintOn, listWitnessStatusOn, recentCosignaturesOn } from "./store";
import { verifyCosignature } from "./cosignature";

/** Configured witnesses with their last known status, this log's origin and verifier key, and recent cosignatures re-verified. */
export async function witnessOverview({ db, auditKeys }: { db: Store | Db; auditKeys: AuditKeys }) {
  const config = configuredWitnesses();
  const statuses = await listWitnessStatusOn(db);
  const firstKey = await firstCheckpointKeyFingerprintOn(db);
  const recent = await recentCosignaturesOn(db, 50);
  let origin: string | null = null;
  let logVkey: string | null = null;
  let originError: string | null = null;
  try {
    origin = logOrigin(firstKey ?? auditKeys.fingerprint);
    logVkey = logVerifierKey(origin, auditKeys.publicKey).vkey;
  } catch (err) {
    originError = (err as Error).message;
  }
  const witnesses = config.witnesses.map((w) => {
    const s = statuses.find((x) => x.url === w.url && x.witnessName === w.key.name && x.keyId === w.key.keyId.toString("hex"));
    return {
      url: w.url,
      name: w.key.name,
      keyId: w.key.keyId.toString("hex"),
      vkey: w.key.vkey,
      reachable: s?.reachable ?? null,
      cosignedSize: s?.cosignedSize ?? null,
      lastAttemptAt: s?.lastAttemptAt ?? null,
      lastSuccessAt: s?.lastSuccessAt ?? null,
      lastError: s?.lastError ?? null,
      lastErrorAt: s?.lastErrorAt ?? null,
      failingSince: s?.failingSince ?? null,
    };
  });
  const cosignatures = recent.map((c) => {
    const key = config.witnesses.find((w) => w.key.name === c.witnessName && w.key.keyId.toString("hex") === c.keyId)?.key;
    let verified: boolean | null = null;
    if (key) {
      try {
        const blob = Buffer.from(c.signature, "base64");
        verified =
          verifyCosignature(key, formatCheckpointBody({ origin: c.origin, treeSize: c.treeSize, rootHash: c.rootHash }), {
            name: c.witnessName,
            keyId: blob.subarray(0, 4),
            signature: blob.subarray(4),
          }) !== null;
      } catch {
        verified = false;
      }
    }
    return {
      id: c.id,
      checkpointId: c.checkpointId,
      origin: c.origin,
      treeSize: c.treeSize,
      rootHash: c.rootHash,
      witnessName: c.witnessName,
      keyId: c.keyId,
      cosignedAt: new Date(c.timestamp * 1000).toISOString(),
      receivedAt: c.receivedAt,
      signature: c.signature,
      verified,
    };
  });
  return { origin, logVkey, originError, configErrors: config.errors, witnesses, cosignatures };
}
