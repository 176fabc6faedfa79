/**
 * Offline verification of an auditor's report bundle, on the bundle alone (plus, optionally, a key the auditor trusts).
 *
 * Checks, in order: the ledger (server/audit/bundle.ts verifyBundle: hash chain, checkpoint signatures and roots);
 * the checkpoint the report cites is one of the bundle's verified checkpoints; the "audit.export" event recorded the
 * sha256 of exactly these report facts and this PROV document; every cited event is in the ledger with the leaf hash
 * the report shows, and every inclusion proof reproduces the signed root; report.html and the charts are exactly
 * what report.json renders to (byte for byte; for bundles exported before the React renderer, the same markup);
 * facts.json is the recorded one, matches the ledger and is what the report prints (content check); manifest.json
 * matches every file.
 * Invariant: it never trusts report.json for anything the ledger can confirm; each problem is reported in plain words.
 */
import fs from "node:fs";
import path from "node:path";
import readline from "node:readline";
import { sha256Canonical, sha256Hex } from "@/contracts/canonical";
import { BUNDLE_CHECKPOINTS_FILE, BUNDLE_EVENTS_FILE, verifyBundle } from "@/server/audit/bundle";
import type { AuditCheckpointRow } from "@/server/audit/ledger-reads";
import type { AuditEventRow } from "@/server/audit/ledger";
import { verifyInclusion } from "@/server/audit/merkle";
import type { VerifyOptions, VerifyResult } from "@/server/audit/verify";
import { REPORT_FILES, listRelative, type ExportPayload, type ReportJson } from "./bundle-layout";
import { renderReportCharts } from "./render/report-charts";
import { renderReportHtml } from "./render/report-html";
import { sameMarkup } from "./markup-equivalence";
import { verifyReportContent } from "@/server/audit/content/verify-report-content";
import { countOf } from "@/contracts/count-text";

export type ReportVerifyResult = { ok: boolean; ledger: VerifyResult; problems: string[]; checked: string[] };

async function eventsAt(file: string, seqs: Set<number>): Promise<Map<number, AuditEventRow>> {
  const out = new Map<number, AuditEventRow>();
  const lines = readline.createInterface({ input: fs.createReadStream(file, { encoding: "utf8" }), crlfDelay: Infinity });
  for await (const line of lines) {
    if (!line) continue;
    const m = /^\{"seq":(\d+),/.exec(line);
    const seq = m ? Number(m[1]) : (JSON.parse(line) as AuditEventRow).seq;
    if (seqs.has(seq)) out.set(seq, JSON.parse(line) as AuditEventRow);
  }
  return out;
}

export async function verifyReportBundle(dir: string, opts: VerifyOptions = {}): Promise<ReportVerifyResult> {
  const problems: string[] = [];
  const checked: string[] = [];
  const ledger = await verifyBundle(dir, opts);
  if (!ledger.ok) problems.push(`ledger: ${ledger.problem}`);
  else
    checked.push(
      `ledger intact: ${ledger.eventsChecked} events, ${ledger.checkpointsChecked} signed checkpoints (key ${ledger.keyFingerprint}, from ${ledger.keySource})`,
    );

  const file = (rel: string) => path.join(dir, rel);
  let report: ReportJson;
  try {
    report = JSON.parse(fs.readFileSync(file(REPORT_FILES.json), "utf8")) as ReportJson;
  } catch (err) {
    return { ok: false, ledger, problems: [...problems, `${REPORT_FILES.json} cannot be read: ${(err as Error).message}`], checked };
  }
  const { facts, integrity, generatedAt } = report;
  const cp = integrity.checkpoint;

  // The cited checkpoint must be one the ledger check verified (same signed head).
  const checkpoints = JSON.parse(fs.readFileSync(file(BUNDLE_CHECKPOINTS_FILE), "utf8")) as AuditCheckpointRow[];
  const listed = checkpoints.find((c) => c.id === cp.id);
  if (
    !listed ||
    listed.treeSize !== cp.treeSize ||
    listed.rootHash !== cp.rootHash ||
    listed.signature !== cp.signature ||
    listed.at !== cp.at ||
    listed.keyFingerprint !== cp.keyFingerprint
  ) {
    problems.push(`the report cites checkpoint #${cp.id}, which is not the same in ${BUNDLE_CHECKPOINTS_FILE}`);
  } else if (ledger.ok && ledger.keyFingerprint !== cp.keyFingerprint) {
    problems.push(`the report's checkpoint was signed by ${cp.keyFingerprint}, not the trusted key ${ledger.keyFingerprint}`);
  } else checked.push(`report cites signed checkpoint #${cp.id} (tree size ${cp.treeSize})`);

  // The export event binds the facts and the PROV document.
  const wanted = new Set([integrity.exportEventSeq, ...facts.citedEvents.map((e) => e.seq)]);
  const events = await eventsAt(file(BUNDLE_EVENTS_FILE), wanted);
  const exportEvent = events.get(integrity.exportEventSeq);
  if (!exportEvent || exportEvent.action !== "audit.export")
    problems.push(`ledger event #${integrity.exportEventSeq} is not the audit.export event of this report`);
  else {
    const p = JSON.parse(exportEvent.payload) as ExportPayload;
    if (p.factsSha256 !== sha256Canonical(facts))
      problems.push(`report.json's facts do not match the sha256 recorded at export (event #${exportEvent.seq}): the report was altered`);
    else checked.push(`report facts match the sha256 recorded in ledger event #${exportEvent.seq}`);
    try {
      const prov = JSON.parse(fs.readFileSync(file(REPORT_FILES.prov), "utf8")) as unknown;
      if (p.provSha256 !== sha256Canonical(prov)) problems.push(`${REPORT_FILES.prov} does not match the sha256 recorded at export`);
      else checked.push("PROV-JSON lineage matches the sha256 recorded at export");
    } catch (err) {
      problems.push(`${REPORT_FILES.prov} cannot be read: ${(err as Error).message}`);
    }
  }

  // Cited events: present, same leaf hash, and proven included under the signed root.
  const root = Buffer.from(cp.rootHash, "hex");
  const proofs = new Map(integrity.proofs.map((p) => [p.seq, p]));
  let proven = 0;
  for (const seq of wanted) {
    const e = events.get(seq);
    const cited = facts.citedEvents.find((c) => c.seq === seq);
    if (!e) problems.push(`cited event #${seq} is not in ${BUNDLE_EVENTS_FILE}`);
    else if (
      cited &&
      (cited.leafHash !== e.leafHash || cited.action !== e.action || cited.entityId !== e.entityId || cited.entityType !== e.entityType)
    )
      problems.push(`cited event #${seq} differs from the ledger`);
    const p = proofs.get(seq);
    if (!p) {
      problems.push(`no inclusion proof for cited event #${seq}`);
      continue;
    }
    const ok =
      p.treeSize === cp.treeSize &&
      e !== undefined &&
      p.leafHash === e.leafHash &&
      verifyInclusion(
        p.leafIndex,
        p.treeSize,
        Buffer.from(p.leafHash, "hex"),
        p.proof.map((h) => Buffer.from(h, "hex")),
        root,
      );
    if (!ok) problems.push(`the inclusion proof of event #${seq} does not reproduce the signed root`);
    else proven++;
  }
  checked.push(`${proven} of ${wanted.size} inclusion proofs verified`);

  // Content: facts.json against the ledger, and the report against facts.json (server/audit/content/verify-report-content.ts).
  const recordedFacts =
    exportEvent?.action === "audit.export" ? (JSON.parse(exportEvent.payload) as ExportPayload).contentFactsSha256 : undefined;
  const content = await verifyReportContent(dir, BUNDLE_EVENTS_FILE, recordedFacts, facts);
  problems.push(...content.problems);
  checked.push(...content.checked);

  // The page and charts are exactly what the facts render to: byte for byte, or (bundles exported before the
  // React renderer) the same elements, attributes and text serialised the old way (markup-equivalence.ts).
  const charts = renderReportCharts(facts);
  let serialisedBefore = false;
  const rendersAs = (rel: string, expected: string): boolean => {
    if (!fs.existsSync(file(rel))) return false;
    const actual = fs.readFileSync(file(rel), "utf8");
    if (actual === expected) return true;
    return sameMarkup(actual, expected) ? (serialisedBefore = true) : false;
  };
  for (const c of charts) if (!rendersAs(c.file, c.svg)) problems.push(`${c.file} is not the chart the report's data draws`);
  if (!rendersAs(REPORT_FILES.html, renderReportHtml(facts, integrity, charts, generatedAt)))
    problems.push(`${REPORT_FILES.html} is not what report.json renders to (edited page?)`);
  else
    checked.push(
      `report.html and ${countOf(charts.length, "chart")} re-render ${serialisedBefore ? "to the same elements and text (serialised by an earlier Runledger)" : "identically"} from report.json`,
    );

  // Manifest.
  try {
    const manifest = JSON.parse(fs.readFileSync(file(REPORT_FILES.manifest), "utf8")) as {
      files: Record<string, { sha256: string; bytes: number }>;
    };
    const present = listRelative(dir).filter((f) => f !== REPORT_FILES.manifest);
    for (const f of present) if (!manifest.files[f]) problems.push(`${f} is not listed in the manifest (added file?)`);
    for (const [f, m] of Object.entries(manifest.files)) {
      if (!fs.existsSync(file(f))) problems.push(`${f} is listed in the manifest but missing`);
      else if (sha256Hex(fs.readFileSync(file(f))) !== m.sha256) problems.push(`${f} does not match its manifest sha256`);
    }
    checked.push(`manifest lists ${Object.keys(manifest.files).length} files`);
  } catch (err) {
    problems.push(`${REPORT_FILES.manifest} cannot be read: ${(err as Error).message}`);
  }
  return { ok: problems.length === 0, ledger, problems, checked };
}
