/**
 * `audit verify --witness-url URL`: ask each witness directly for the latest checkpoint it cosigned for this log
 * (GET <url>/checkpoint/<origin>, client.ts fetchWitnessCheckpoint) and turn the verified answer into an Anchor.
 * Unlike the cosignatures stored with the log, this answer cannot be deleted by the operator, so it catches a tail
 * truncated together with its checkpoints and stored cosignatures (the witness has cosigned a larger tree than the
 * log has: "truncated?") and a history rewritten after the witness's size (its root differs: split view).
 *
 * Invariants:
 * - An answer counts only when its cosignature verifies under one of the trusted witness keys (--witness-key).
 * - Ask BEFORE the verifier opens its read snapshot: the log only grows meanwhile, so an honest log is never
 *   smaller than what the witness had cosigned when asked. Verify the live data directory (or a copy taken after
 *   asking): a copy older than the witness's latest checkpoint reads as truncated, which is what it is.
 * - A witness that cannot be asked (unreachable, or it knows no checkpoint of this origin) anchors nothing: a note
 *   by default, a problem with `requireAnchor`. An answer that does not verify is always a problem.
 */
import Database from "better-sqlite3";
import fs from "node:fs";
import path from "node:path";
import type { Anchor } from "@/server/audit/anchors";
import { loadAuditPublicKey, parseAuditPublicKey } from "@/server/audit/keys";
import { logOrigin } from "./checkpoint-note";
import { WitnessFetchError, fetchWitnessCheckpoint } from "./client";
import { logOriginsOf, toWitnessKeys } from "./witness-anchors";

export type WitnessUrlOutcome = "cosigned" | "unreachable" | "unknown origin" | "invalid";

export type WitnessUrlCheck = {
  url: string;
  origin: string | null;
  outcome: WitnessUrlOutcome;
  /** The witness's latest cosigned checkpoint, when its cosignature verified. */
  witness: string | null;
  treeSize: number | null;
  rootHash: string | null;
  cosignedAt: string | null;
  /** Why there is no anchor (null when cosigned). */
  message: string | null;
};

/** What the verifier takes (verify-database.ts): anchors whose cosignatures were checked here, problems, notes. */
export type WitnessUrlAnchors = { checks: WitnessUrlCheck[]; anchors: Anchor[]; problems: string[]; notes: string[] };

/** The anchor name for a witness asked at a URL (distinct from its stored cosignatures' "witness NAME"). */
export function askedWitnessName(witness: string, url: string): string {
  return `witness ${witness} (asked at ${url})`;
}

/**
 * The log origin(s) to ask about for a data directory: as the pusher names them (first checkpoint's key, or
 * RUNLEDGER_LOG_ORIGIN); with no checkpoint row left, the trusted key's (given PEM, else the data directory's).
 */
export function logOriginsForDataDir(
  dataDir: string,
  publicKeyPem?: string,
  env: Record<string, string | undefined> = process.env,
): string[] {
  const file = path.join(dataDir, "runledger.sqlite");
  if (!fs.existsSync(file)) throw new Error(`no Runledger database at ${file}`);
  const db = new Database(file, { readonly: true, fileMustExist: true });
  try {
    const origins = logOriginsOf(db, undefined, env);
    if (origins.length > 0) return origins;
  } finally {
    db.close();
  }
  const key = publicKeyPem ? parseAuditPublicKey(publicKeyPem) : loadAuditPublicKey(dataDir);
  return [logOrigin(key.fingerprint, env)];
}

/** Asks every URL (in parallel) for the latest checkpoint cosigned for `origin`, checked under `witnessKeys`. */
export async function askWitnesses(
  urls: readonly string[],
  witnessKeys: readonly string[],
  origin: string,
  opts: { requireAnchor?: boolean; timeoutMs?: number } = {},
): Promise<WitnessUrlAnchors> {
  const keys = toWitnessKeys(witnessKeys);
  if (urls.length > 0 && keys.length === 0)
    throw new Error("--witness-url needs --witness-key: the key the witness's cosignature must verify under");
  const out: WitnessUrlAnchors = { checks: [], anchors: [], problems: [], notes: [] };
  const answers = await Promise.all(
    urls.map(async (raw) => {
      const url = raw.replace(/\/+$/, "");
      try {
        return { url, cp: await fetchWitnessCheckpoint(url, keys, origin, { timeoutMs: opts.timeoutMs ?? 10_000 }), error: null };
      } catch (err) {
        const kind = err instanceof WitnessFetchError ? err.kind : "unreachable";
        return { url, cp: null, error: { kind, message: (err as Error).message } };
      }
    }),
  );
  for (const a of answers) {
    if (a.cp) {
      out.checks.push({
        url: a.url,
        origin,
        outcome: "cosigned",
        witness: a.cp.witness,
        treeSize: a.cp.treeSize,
        rootHash: a.cp.rootHash,
        cosignedAt: a.cp.cosignedAt,
        message: null,
      });
      out.anchors.push({ kind: "witness", name: askedWitnessName(a.cp.witness, a.url), treeSize: a.cp.treeSize, rootHash: a.cp.rootHash });
      continue;
    }
    const { kind, message } = a.error!;
    out.checks.push({ url: a.url, origin, outcome: kind, witness: null, treeSize: null, rootHash: null, cosignedAt: null, message });
    if (kind === "invalid") {
      out.problems.push(`${message}: the witness at ${a.url} vouches for nothing`);
    } else {
      const what = `the witness at ${a.url} was not asked successfully (${message}), so the log is not anchored by its latest checkpoint: a tail truncated together with its stored cosignatures would go unseen`;
      if (opts.requireAnchor) out.problems.push(`${what}; an anchor by every --witness-url is required (--require-anchor)`);
      else out.notes.push(what);
    }
  }
  return out;
}
