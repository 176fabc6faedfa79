/**
 * The installation's audit signing key as a command on PostgreSQL finds it in this machine's key directory (issue 16),
 * by cli-store.ts's rule: the key the ledger names, or (nothing signed yet) the directory's only key. A command never
 * creates one: the key of a PostgreSQL installation belongs to its web servers, and a key minted here would make them
 * refuse to start. Used by the commands that must sign on PostgreSQL (export, audit checkpoint-export --new) and
 * refuse when the key is not here.
 */
import type { Store } from "@/db/store";
import { keyFingerprintsInDir, ledgerKeyFingerprintOn } from "@/server/audit/key-custody";
import { type AuditKeys, keyFileName, loadKeyFromDir } from "@/server/audit/keys";

export type InstallationKey = { keys: AuditKeys; missing?: undefined } | { keys: null; missing: string };

/** The signing key, or why it is not in `keyDir` (a clause, e.g. for "cannot sign: …"). Reads the ledger, writes nothing. */
export async function installationKeyOnPostgres(store: Store, keyDir: string): Promise<InstallationKey> {
  const inForce = await ledgerKeyFingerprintOn(store);
  if (inForce) {
    const keys = loadKeyFromDir(keyDir, inForce);
    if (keys) return { keys };
    return { keys: null, missing: `the ledger is signed by ${inForce} and the key directory ${keyDir} has no ${keyFileName(inForce)}` };
  }
  const present = keyFingerprintsInDir(keyDir);
  if (present.length === 1) return { keys: loadKeyFromDir(keyDir, present[0]!)! };
  return {
    keys: null,
    missing:
      present.length === 0
        ? `nothing is signed in this ledger yet and the key directory ${keyDir} holds no signing key`
        : `nothing is signed in this ledger yet and the key directory ${keyDir} holds ${present.length} keys (${present.join(", ")}), not the one key of this installation`,
  };
}

/** What to do about a missing key: said after the refusal. */
export const COPY_THE_KEY_HINT =
  "copy the installation's key file (mode 0600) from the key directory of one of its web servers into this machine's key directory (--key-dir or RUNLEDGER_KEY_DIR)";
