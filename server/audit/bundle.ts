/**
 * Audit bundles: a directory with events.jsonl (one event row per line, all columns), checkpoints.json (the
 * checkpoint rows) and public-key.pem (the server's SPKI key), written from one read snapshot and verified
 * offline with the same verifier as the live database. The bundle's own key is only used when the auditor
 * gives none, and the result then says so. With facts.json (the report's records, server/audit/content) the
 * content level is checked too, against the events of the same pass. key-rotations.json (only when the key was rotated) lists the
 * "audit.keyRotate" event rows, so the verifier knows the chain of keys before its pass; the pass checks that list
 * against events.jsonl.
 */
import fs from "node:fs";
import path from "node:path";
import readline from "node:readline";
import type { AuditEventRow } from "./ledger";
import type { AuditPublicKey } from "./keys";
import { parseAuditPublicKey } from "./keys";
import {
  type AuditCheckpointRow,
  type AuditDbSource,
  auditEventsWithAction,
  iterateAuditEvents,
  listAuditCheckpoints,
  sqliteOf,
} from "./ledger-reads";
import { KEY_ROTATE_ACTION } from "./key-rotation";
import { AuditLogVerifier, chooseTrustedKey, type VerifyOptions, type VerifyResult } from "./verify";
import { tailFactsOf, witnessAnchorsForBundle } from "./witness/bundle-files";
import { witnessLagProblemFor } from "./witness/witness-anchors";
import { readFactsFile, verifyBundleContent } from "./content/verify-bundle-content";

/** Seqs of the events the bundle's facts.json relies on (empty when it has none or it cannot be read: the content check says why). */
function relatedSeqsOf(bundleDir: string): Set<number> {
  try {
    return new Set(readFactsFile(bundleDir)?.relatedSeqs ?? []);
  } catch {
    return new Set();
  }
}

export const BUNDLE_EVENTS_FILE = "events.jsonl";
export const BUNDLE_CHECKPOINTS_FILE = "checkpoints.json";
export const BUNDLE_PUBLIC_KEY_FILE = "public-key.pem";
export const BUNDLE_KEY_ROTATIONS_FILE = "key-rotations.json";

/** Verifies an exported bundle offline. The bundle's own key is used only when no other key is given. */
export async function verifyBundle(bundleDir: string, opts: VerifyOptions = {}): Promise<VerifyResult> {
  const { key, source: keySource } = chooseTrustedKey(
    opts,
    () => parseAuditPublicKey(fs.readFileSync(path.join(bundleDir, BUNDLE_PUBLIC_KEY_FILE), "utf8")),
    "bundle",
  );
  const checkpoints = JSON.parse(fs.readFileSync(path.join(bundleDir, BUNDLE_CHECKPOINTS_FILE), "utf8")) as AuditCheckpointRow[];
  if (!Array.isArray(checkpoints)) throw new Error(`${BUNDLE_CHECKPOINTS_FILE} is not a list of checkpoints`);
  const rotationsFile = path.join(bundleDir, BUNDLE_KEY_ROTATIONS_FILE);
  const rotations = fs.existsSync(rotationsFile) ? (JSON.parse(fs.readFileSync(rotationsFile, "utf8")) as AuditEventRow[]) : [];
  if (!Array.isArray(rotations)) throw new Error(`${BUNDLE_KEY_ROTATIONS_FILE} is not a list of events`);
  const witness =
    opts.witnessKeys && opts.witnessKeys.length > 0 ? witnessAnchorsForBundle(bundleDir, opts.witnessKeys, checkpoints) : null;
  const v = new AuditLogVerifier(key, keySource, checkpoints, opts.trustedCheckpoint, rotations, witness?.anchors ?? []);
  v.setRequireAnchor(opts.requireAnchor ?? false);
  if (witness) v.addAnchorProblems(witness.problems, witness.notes);
  // Witness lag facts: the events after the largest cosigned size (if that anchor does not match, the pass says so).
  const witnessSize = (witness?.anchors ?? []).reduce((m, a) => Math.max(m, a.treeSize), 0);
  const tail: { seq: number; at: string }[] = [];
  // Content: the events facts.json relies on are kept from the pass (verify-bundle-content.ts checks the rest).
  const wanted = opts.content === false ? null : relatedSeqsOf(bundleDir);
  const related: AuditEventRow[] = [];
  const lines = readline.createInterface({
    input: fs.createReadStream(path.join(bundleDir, BUNDLE_EVENTS_FILE), { encoding: "utf8", highWaterMark: 1 << 20 }),
    crlfDelay: Infinity,
  });
  let lineNo = 0;
  let lastAt: { seq: number; at: string } | null = null;
  try {
    for await (const line of lines) {
      lineNo++;
      if (line.length === 0) continue;
      let row: AuditEventRow;
      try {
        row = JSON.parse(line) as AuditEventRow;
      } catch {
        v.abort(`${BUNDLE_EVENTS_FILE} line ${lineNo} is not valid JSON (damaged bundle?)`);
        break;
      }
      if (!v.add(row)) break;
      if (wanted?.has(row.seq)) related.push(row);
      if (witness) {
        lastAt = { seq: row.seq, at: row.at };
        if (row.seq > witnessSize) tail.push(lastAt);
      }
    }
  } finally {
    lines.close();
  }
  if (witness) {
    const facts = tailFactsOf(tail, witnessSize);
    if (lastAt) facts.newestAt = lastAt.at;
    const lag = witnessLagProblemFor(facts, witnessSize);
    if (lag) v.addAnchorProblems([lag]);
  }
  if (opts.content !== false) v.setContent(verifyBundleContent(bundleDir, related));
  return v.finish();
}

/**
 * Writes events.jsonl, checkpoints.json and public-key.pem into `dir` (created if needed) from one consistent
 * read snapshot. Used by the report export; the result verifies with `verifyBundle`.
 */
export function writeBundleAuditFiles(
  db: AuditDbSource,
  dir: string,
  keys: Pick<AuditPublicKey, "publicKeyPem">,
): { events: number; checkpoints: number; files: string[] } {
  fs.mkdirSync(dir, { recursive: true });
  const files = [BUNDLE_EVENTS_FILE, BUNDLE_CHECKPOINTS_FILE, BUNDLE_PUBLIC_KEY_FILE].map((f) => path.join(dir, f));
  const [eventsPath, checkpointsPath, keyPath] = files as [string, string, string];
  const sqlite = sqliteOf(db);
  return sqlite.transaction(() => {
    const checkpoints = listAuditCheckpoints(db);
    const fd = fs.openSync(eventsPath, "w");
    let events = 0;
    try {
      let chunk: string[] = [];
      let chunkChars = 0;
      for (const row of iterateAuditEvents(db)) {
        const line = JSON.stringify(row) + "\n";
        chunk.push(line);
        chunkChars += line.length;
        events++;
        if (chunkChars > 1 << 20) {
          fs.writeSync(fd, chunk.join(""));
          chunk = [];
          chunkChars = 0;
        }
      }
      if (chunk.length > 0) fs.writeSync(fd, chunk.join(""));
      fs.fsyncSync(fd);
    } finally {
      fs.closeSync(fd);
    }
    fs.writeFileSync(checkpointsPath, JSON.stringify(checkpoints, null, 2) + "\n");
    fs.writeFileSync(keyPath, keys.publicKeyPem);
    const rotations = auditEventsWithAction(db, KEY_ROTATE_ACTION);
    if (rotations.length > 0) {
      const rotationsPath = path.join(dir, BUNDLE_KEY_ROTATIONS_FILE);
      fs.writeFileSync(rotationsPath, JSON.stringify(rotations, null, 2) + "\n");
      files.push(rotationsPath);
    }
    return { events, checkpoints: checkpoints.length, files };
  })();
}
