/**
 * Witness evidence in an exported audit bundle (written next to events.jsonl and checkpoints.json):
 *   cosignatures.json   { format, origin, cosignatures: [...] }: every stored cosignature row, plus for each the
 *                       checkpoint note text it covers and its note signature line (c2sp.org/tlog-cosignature), so
 *                       other C2SP tools can check it too;
 *                       exportCheckpoint (report exports): the export's own fresh checkpoint and, per configured
 *                       witness, whether it cosigned it within the export's wait (fresh-cosign.ts) and why not;
 *   witness-keys/       one "<witness name>.vkey" per witness configured at export (RUNLEDGER_WITNESSES).
 * The keys in the bundle come from the log's operator: like public-key.pem they say which witnesses were used, but
 * an auditor verifies with witness keys obtained from the witnesses themselves (`--witness-key`).
 * Reading back: witnessAnchorsForBundle checks the cosignatures exactly as witnessAnchors does for a database.
 */
import fs from "node:fs";
import path from "node:path";
import type { Db } from "@/db/client";
import type { AuditCheckpointRow } from "@/server/audit/ledger-reads";
import { defaultLogOrigin, formatCheckpointBody, logOrigin } from "./checkpoint-note";
import { configuredWitnesses } from "./start";
import type { FreshCheckpointWitnessing } from "./fresh-cosign";
import { type CosignatureRecord, allCosignatureRecords, firstCheckpointKeyFingerprint } from "./store";
import { type VerifierKey } from "./note";
import { type TailFacts, type WitnessAnchorsResult, witnessAnchorsFromRecords } from "./witness-anchors";

export const BUNDLE_COSIGNATURES_FILE = "cosignatures.json";
export const BUNDLE_WITNESS_KEYS_DIR = "witness-keys";
export const COSIGNATURES_FORMAT = "runledger-witness-cosignatures/1";

type BundleCosignature = CosignatureRecord & { checkpointNote: string; cosignatureLine: string };
type CosignaturesFile = { format: string; origin: string; cosignatures: BundleCosignature[]; exportCheckpoint?: FreshCheckpointWitnessing };

export function writeWitnessBundleFiles(
  db: Db,
  dir: string,
  currentKeyFingerprint: string,
  exportCheckpoint?: FreshCheckpointWitnessing | null,
): void {
  const cosignatures = allCosignatureRecords(db.$client).map((c) => ({
    ...c,
    checkpointNote: formatCheckpointBody({ origin: c.origin, treeSize: c.treeSize, rootHash: c.rootHash }),
    cosignatureLine: `\u2014 ${c.witnessName} ${c.signature}\n`,
  }));
  const file: CosignaturesFile = {
    format: COSIGNATURES_FORMAT,
    origin: logOrigin(firstCheckpointKeyFingerprint(db.$client) ?? currentKeyFingerprint),
    cosignatures,
    ...(exportCheckpoint ? { exportCheckpoint } : {}),
  };
  fs.writeFileSync(path.join(dir, BUNDLE_COSIGNATURES_FILE), `${JSON.stringify(file, null, 2)}\n`);
  const witnesses = configuredWitnesses().witnesses;
  if (witnesses.length === 0) return;
  fs.mkdirSync(path.join(dir, BUNDLE_WITNESS_KEYS_DIR), { recursive: true });
  for (const w of witnesses) {
    fs.writeFileSync(path.join(dir, BUNDLE_WITNESS_KEYS_DIR, `${w.key.name.replace(/[^A-Za-z0-9._-]/g, "_")}.vkey`), `${w.key.vkey}\n`);
  }
}

/** Cosignatures of a bundle checked against trusted witness keys; origins as for a database (given, pinned, or derived). */
export function witnessAnchorsForBundle(
  bundleDir: string,
  witnessKeys: readonly (VerifierKey | string)[],
  checkpoints: readonly Pick<AuditCheckpointRow, "id" | "keyFingerprint">[],
  opts: { origin?: string } = {},
): WitnessAnchorsResult {
  const file = path.join(bundleDir, BUNDLE_COSIGNATURES_FILE);
  const records = fs.existsSync(file) ? (JSON.parse(fs.readFileSync(file, "utf8")) as CosignaturesFile) : null;
  if (records && (records.format !== COSIGNATURES_FORMAT || !Array.isArray(records.cosignatures)))
    throw new Error(`${BUNDLE_COSIGNATURES_FILE} is not a ${COSIGNATURES_FORMAT} file`);
  const pinned = process.env.RUNLEDGER_LOG_ORIGIN?.trim();
  const first = [...checkpoints].sort((a, b) => a.id - b.id)[0];
  const origins = opts.origin ? [opts.origin] : pinned ? [pinned] : first ? [defaultLogOrigin(first.keyFingerprint)] : [];
  const result = witnessAnchorsFromRecords(records?.cosignatures ?? [], witnessKeys, origins);
  if (!records) result.notes.push(`the bundle has no ${BUNDLE_COSIGNATURES_FILE}`);
  return result;
}

/** Lag facts from events in seq order (for bundles): the events after `coveredSize`. */
export function tailFactsOf(events: Iterable<{ seq: number; at: string }>, coveredSize: number): TailFacts {
  const facts: TailFacts = { count: 0, oldestAt: null, firstSeq: null, newestAt: null };
  for (const e of events) {
    facts.newestAt = e.at;
    if (e.seq <= coveredSize) continue;
    facts.count++;
    facts.firstSeq ??= e.seq;
    if (facts.oldestAt === null || e.at < facts.oldestAt) facts.oldestAt = e.at;
  }
  return facts;
}
