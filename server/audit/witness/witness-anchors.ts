/**
 * Witness cosignatures as verification anchors, and the witness lag policy, for `audit verify --witness-key`.
 *
 * witnessAnchors: every stored cosignature by a TRUSTED witness key (name and key ID match) for THIS log's origin
 * is re-verified (cosignature/v1 over the checkpoint note rebuilt from origin, size and root); valid ones become
 * Anchors (the verifier compares each with the log's root at that size: a mismatch is a split view or rewritten
 * history). A row that claims a trusted key but does not verify is a problem (forged or edited). Rows of unknown
 * witnesses are ignored (spec: unknown keys are ignored); rows of other origins are ignored with a note (a
 * cosignature of some other log says nothing about this one).
 * The log's origin: the one given, else RUNLEDGER_LOG_ORIGIN, else derived from the key of the first checkpoint.
 *
 * Lag policy (WITNESS_MAX_LAG_MINUTES = 2 × the checkpoint interval = 20 minutes): every event more than 20
 * minutes older than the NEWEST event must be covered by a cosignature (seq <= the largest cosigned tree size).
 * Measured against the newest event, not the clock, so a copy verified a year later gives the same answer. The
 * server checkpoints at least every 10 minutes while events arrive and pushes at once, so an honest, reachable
 * witness is always within the lag; a witness down for longer, or cosignatures deleted, fail as "witness lag".
 */
import type Database from "better-sqlite3";
import type { Anchor } from "@/server/audit/anchors";
import { CHECKPOINT_EVERY_MINUTES } from "@/server/audit/checkpoint-policy";
import { defaultLogOrigin, formatCheckpointBody } from "./checkpoint-note";
import { verifyCosignature } from "./cosignature";
import { type VerifierKey, SIG_TYPE_COSIGNATURE_V1, parseVerifierKey } from "./note";
import { type CosignatureRecord, allCosignatureRecords, firstCheckpointKeyFingerprint, uncoveredTail } from "./store";
import { countOf } from "@/contracts/count-text";

export const WITNESS_MAX_LAG_MINUTES = 2 * CHECKPOINT_EVERY_MINUTES;

export type LatestCosigned = { witness: string; keyId: string; treeSize: number; rootHash: string; cosignedAt: string };
export type WitnessAnchorsResult = {
  anchors: Anchor[];
  problems: string[];
  notes: string[];
  /** The largest verified cosigned tree (any trusted witness), null when none. */
  latestCosigned: LatestCosigned | null;
  /** Largest verified cosigned tree size per trusted witness. */
  byWitness: LatestCosigned[];
};

type RecordLike = Pick<CosignatureRecord, "id" | "origin" | "treeSize" | "rootHash" | "witnessName" | "keyId" | "timestamp" | "signature">;

export function toWitnessKeys(keys: readonly (VerifierKey | string)[]): VerifierKey[] {
  return keys.map((k) => {
    const key = typeof k === "string" ? parseVerifierKey(k) : k;
    if (key.type !== SIG_TYPE_COSIGNATURE_V1) throw new Error(`"${key.vkey}" is not a witness (cosignature/v1, type 0x04) key`);
    return key;
  });
}

/** Checks cosignature records (from the database or a bundle's cosignatures.json) against trusted witness keys. */
export function witnessAnchorsFromRecords(
  records: readonly RecordLike[],
  witnessKeys: readonly (VerifierKey | string)[],
  origins: readonly string[],
): WitnessAnchorsResult {
  const keys = toWitnessKeys(witnessKeys);
  const out: WitnessAnchorsResult = { anchors: [], problems: [], notes: [], latestCosigned: null, byWitness: [] };
  const seen = new Set<string>();
  const foreign = new Set<string>();
  let unknown = 0;
  const best = new Map<string, LatestCosigned>();
  for (const r of records) {
    const key = keys.find((k) => k.name === r.witnessName && k.keyId.toString("hex") === r.keyId);
    if (!key) {
      unknown++;
      continue;
    }
    if (!origins.includes(r.origin)) {
      foreign.add(r.origin);
      continue;
    }
    const what = `cosignature #${r.id} by witness ${r.witnessName} (tree size ${r.treeSize})`;
    let valid = null;
    try {
      const blob = Buffer.from(r.signature, "base64");
      const sig = { name: r.witnessName, keyId: blob.subarray(0, 4), signature: blob.subarray(4) };
      const stampMatches = blob.length === 76 && Number(blob.readBigUInt64BE(4)) === r.timestamp;
      valid = stampMatches
        ? verifyCosignature(key, formatCheckpointBody({ origin: r.origin, treeSize: r.treeSize, rootHash: r.rootHash }), sig)
        : null;
    } catch {
      valid = null;
    }
    if (!valid) {
      out.problems.push(
        `${what} does not verify under the witness key ${key.vkey.split("+").slice(0, 2).join("+")} (forged or altered cosignature)`,
      );
      continue;
    }
    const id = `${key.vkey}|${r.treeSize}|${r.rootHash}`;
    if (!seen.has(id)) {
      seen.add(id);
      out.anchors.push({ kind: "witness", name: `witness ${r.witnessName}`, treeSize: r.treeSize, rootHash: r.rootHash });
    }
    const latest: LatestCosigned = {
      witness: r.witnessName,
      keyId: r.keyId,
      treeSize: r.treeSize,
      rootHash: r.rootHash,
      cosignedAt: new Date(r.timestamp * 1000).toISOString(),
    };
    const prev = best.get(key.vkey);
    if (!prev || prev.treeSize < r.treeSize) best.set(key.vkey, latest);
  }
  out.byWitness = [...best.values()];
  out.latestCosigned = out.byWitness.reduce<LatestCosigned | null>((m, x) => (!m || x.treeSize > m.treeSize ? x : m), null);
  if (unknown > 0)
    out.notes.push(`${countOf(unknown, "cosignature")} by witnesses whose keys were not given ${unknown === 1 ? "was" : "were"} ignored`);
  if (foreign.size > 0)
    out.notes.push(
      `cosignatures for other log origins (${[...foreign].join(", ")}) were ignored; this log's origin is ${origins.join(" or ")} (pass the right origin if RUNLEDGER_LOG_ORIGIN was set)`,
    );
  for (const k of keys) if (!best.has(k.vkey)) out.notes.push(`no valid cosignature by witness ${k.name} is stored`);
  return out;
}

/** The log's origins, as the pusher named them (see file header). */
export function logOriginsOf(sqlite: Database.Database, origin?: string, env: Record<string, string | undefined> = process.env): string[] {
  if (origin) return [origin];
  const pinned = env.RUNLEDGER_LOG_ORIGIN?.trim();
  if (pinned) return [pinned];
  const first = firstCheckpointKeyFingerprint(sqlite);
  return first ? [defaultLogOrigin(first)] : [];
}

/** Contract for verify.ts: anchors from the cosignatures stored in a live database (any connection, read-only fine). */
export function witnessAnchors(
  sqlite: Database.Database,
  witnessKeys: readonly (VerifierKey | string)[],
  opts: { origin?: string } = {},
): WitnessAnchorsResult {
  return witnessAnchorsFromRecords(allCosignatureRecords(sqlite), witnessKeys, logOriginsOf(sqlite, opts.origin));
}

export type TailFacts = { count: number; oldestAt: string | null; firstSeq: number | null; newestAt: string | null };

/** The lag rule over facts about the uncovered tail (events after `coveredSize`); null when within the lag. */
export function witnessLagProblemFor(tail: TailFacts, coveredSize: number, maxLagMinutes = WITNESS_MAX_LAG_MINUTES): string | null {
  if (tail.count === 0 || !tail.oldestAt || !tail.newestAt) return null;
  const lagMs = Date.parse(tail.newestAt) - Date.parse(tail.oldestAt);
  if (!(lagMs > maxLagMinutes * 60_000)) return null;
  const minutes = Math.round(lagMs / 60_000);
  return (
    `witness lag: ${countOf(tail.count, "event")} from seq ${tail.firstSeq ?? coveredSize + 1} on are not covered by any witness cosignatures (largest cosigned tree size ${coveredSize}), ` +
    `and the oldest of them (${tail.oldestAt}) is ${minutes} minutes older than the newest event (${tail.newestAt}); at most ${maxLagMinutes} minutes are allowed`
  );
}

/** The lag rule on a live database. */
export function witnessLagProblem(sqlite: Database.Database, coveredSize: number, maxLagMinutes = WITNESS_MAX_LAG_MINUTES): string | null {
  return witnessLagProblemFor(uncoveredTail(sqlite, coveredSize), coveredSize, maxLagMinutes);
}
