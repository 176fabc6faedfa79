/**
 * The installation's audit signing key as a command on PostgreSQL finds it in this machine's key directory (issue 16):
 * the key the ledger names; nothing signed yet, the directory's only key (cli-store.ts's rule) for the commands that
 * may sign the first checkpoint (export, audit checkpoint-export --new), or a refusal for those that need a key the
 * ledger names (audit rotate-key, witness push). A command never creates one: the key of a PostgreSQL installation
 * belongs to its web servers, and a key minted here would make them refuse to start.
 */
import type { Store } from "@/db/store";
import { keyFingerprintsInDir, ledgerKeyFingerprintOn } from "@/server/audit/key-custody";
import { type AuditKeys, KeyCustodyError, keyFileName, loadKeyFromDir } from "@/server/audit/keys";

/** `missing` says why the key is not in the key directory (a clause); `inForce` is the key the ledger names, if any. */
export type InstallationKey = { keys: AuditKeys; missing?: undefined } | { keys: null; missing: string; inForce: string | null };

/**
 * The signing key, or why it is not in `keyDir` (a clause, e.g. for "cannot sign: …"). Reads the ledger, writes nothing.
 * Nothing signed yet: the key directory's only key (the one the web servers will sign with), or with
 * `whenNothingSigned: "refuse"` no key.
 */
export async function installationKeyOnPostgres(
  store: Store,
  keyDir: string,
  opts: { whenNothingSigned?: "take-the-only-key" | "refuse" } = {},
): Promise<InstallationKey> {
  const inForce = await ledgerKeyFingerprintOn(store);
  if (inForce) {
    const keys = loadKeyFromDir(keyDir, inForce);
    if (keys) return { keys };
    return {
      keys: null,
      inForce,
      missing: `the ledger is signed by ${inForce}, and the key directory ${keyDir} has no ${keyFileName(inForce)}`,
    };
  }
  if (opts.whenNothingSigned === "refuse")
    return {
      keys: null,
      inForce,
      missing:
        "nothing is signed in this ledger yet, so it names no signing key (the first web server makes the key and signs the first checkpoint)",
    };
  const present = keyFingerprintsInDir(keyDir);
  if (present.length === 1) return { keys: loadKeyFromDir(keyDir, present[0]!)! };
  return {
    keys: null,
    inForce,
    missing:
      present.length === 0
        ? `nothing is signed in this ledger yet and the key directory ${keyDir} holds no signing key`
        : `nothing is signed in this ledger yet and the key directory ${keyDir} holds ${present.length} keys (${present.join(", ")}), not the one key of this installation`,
  };
}

/**
 * The key the ledger names, for a command that extends what that key signed (`audit rotate-key`, `witness push`);
 * nothing signed yet is refused. Throws KeyCustodyError "<doing>: why" (naming the missing file and where to get it).
 */
export async function ledgerKeyForCommandOn(store: Store, keyDir: string, doing: string): Promise<AuditKeys> {
  const key = await installationKeyOnPostgres(store, keyDir, { whenNothingSigned: "refuse" });
  if (key.keys) return key.keys;
  const where = key.inForce
    ? ". Run this on a machine whose key directory holds it (--key-dir or RUNLEDGER_KEY_DIR), or copy that file there (mode 0600) " +
      "from a web server's key directory."
    : "";
  throw new KeyCustodyError(`${doing}: ${key.missing}${where}`);
}

/** What to do about a missing key: said after the refusal. */
export const COPY_THE_KEY_HINT =
  "copy the installation's key file (mode 0600) from the key directory of one of its web servers into this machine's key directory (--key-dir or RUNLEDGER_KEY_DIR)";
