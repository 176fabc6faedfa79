/**
 * The witnesses on the Audit page: each witness configured in RUNLEDGER_WITNESSES (URL, name, key ID, reachable,
 * last success, last error, failing since), this log's origin and verifier key (what a witness operator needs),
 * and the latest stored cosignatures, each re-verified here under the configured witness keys.
 * Read-only; every signed-in role may read it.
 */
import { router, signedInProcedure } from "@/server/trpc/init";
import { formatCheckpointBody, logOrigin, logVerifierKey } from "@/server/audit/witness/checkpoint-note";
import { configuredWitnesses } from "@/server/audit/witness/start";
import { firstCheckpointKeyFingerprint, listWitnessStatus, recentCosignatures } from "@/server/audit/witness/store";
import { verifyCosignature } from "@/server/audit/witness/cosignature";

export const witnessesRouter = router({
  overview: signedInProcedure.query(({ ctx }) => {
    const { db, auditKeys } = ctx.services;
    const config = configuredWitnesses();
    const statuses = listWitnessStatus(db);
    let origin: string | null = null;
    let logVkey: string | null = null;
    let originError: string | null = null;
    try {
      origin = logOrigin(firstCheckpointKeyFingerprint(db.$client) ?? auditKeys.fingerprint);
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
    const cosignatures = recentCosignatures(db, 50).map((c) => {
      const key = config.witnesses.find((w) => w.key.name === c.witnessName && w.key.keyId.toString("hex") === c.keyId)?.key;
      let verified: boolean | null = null;
      if (key) {
        try {
          const blob = Buffer.from(c.signature, "base64");
          verified = verifyCosignature(key, formatCheckpointBody({ origin: c.origin, treeSize: c.treeSize, rootHash: c.rootHash }), { name: c.witnessName, keyId: blob.subarray(0, 4), signature: blob.subarray(4) }) !== null;
        } catch {
          verified = false;
        }
      }
      return { id: c.id, checkpointId: c.checkpointId, origin: c.origin, treeSize: c.treeSize, rootHash: c.rootHash, witnessName: c.witnessName, keyId: c.keyId, cosignedAt: new Date(c.timestamp * 1000).toISOString(), receivedAt: c.receivedAt, signature: c.signature, verified };
    });
    return { origin, logVkey, originError, configErrors: config.errors, witnesses, cosignatures };
  }),
});
