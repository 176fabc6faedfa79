/**
 * Phase 3 of a report export (reads only; heavy: the whole ledger into events.jsonl, proofs, hashes): the bundle
 * files of a recorded export: report.json, report.html and the charts rendered from it, PROV, the trusted
 * checkpoint, README.txt, the standalone verifier, facts.json and artifacts, the ledger files, witness files, and
 * manifest.json last (sha256 and size of every other file).
 *
 * Invariants: report.html and the charts are pure functions of report.json (the verifier re-renders and compares
 * them); every cited event that the checkpoint covers gets an inclusion proof under that checkpoint's root.
 */
import fs from "node:fs";
import path from "node:path";
import type { Db } from "@/db/client";
import { sha256Hex } from "@/contracts/canonical";
import { readLeafHashes, trustedCheckpointFromRow } from "@/server/audit/checkpoints";
import { inclusionProof } from "@/server/audit/merkle";
import { writeBundleAuditFiles } from "@/server/audit/bundle";
import { writeWitnessBundleFiles } from "@/server/audit/witness/bundle-files";
import type { AuditPublicKey } from "@/server/audit/keys";
import type { FreshCheckpointWitnessing } from "@/server/audit/witness/fresh-cosign";
import { writeFactsFile } from "@/server/audit/content/facts-file";
import { artifactsDirOf } from "@/server/audit/content/report-content";
import {
  REPORT_FILES,
  VERIFIER_SCRIPT_SOURCE,
  listRelative,
  type RecordedExport,
  type ReportExportResult,
  type ReportJson,
} from "./bundle-layout";
import type { ReportFacts } from "./collect-report";
import type { PreparedReport } from "./export-prepare";
import { renderReportCharts } from "./render/report-charts";
import { renderReportHtml } from "./render/report-html";
import type { ReportIntegrity } from "./render/report-types";

function readme(f: ReportFacts, integrity: ReportIntegrity): string {
  return `Runledger auditor's report bundle: ${f.model.name} version ${f.version.version}
Weights sha256: ${f.version.weightsSha256}
Signed checkpoint #${integrity.checkpoint.id}: tree size ${integrity.checkpoint.treeSize}, root ${integrity.checkpoint.rootHash}
Server key fingerprint: ${integrity.checkpoint.keyFingerprint}

Open report.html in a browser (print it to PDF if you need one).

Verify this folder offline, with the server key you trust (compare its fingerprint with the one above):
  npm run cli -- audit verify --bundle <this folder> [--public-key KEY.pem]
That checks every event's hash chain, every checkpoint signature and Merkle root in events.jsonl/checkpoints.json.
  npm run cli -- export --verify <this folder>
additionally checks that report.json is the one the ledger recorded (audit.export event #${integrity.exportEventSeq}),
every inclusion proof, the manifest hashes, that report.html and the charts are exactly what report.json renders to,
and that the records in facts.json (what the report prints) match the ledger's hashes (content check).
Without Runledger's source or npm (Node 20 or later only), run the verifier shipped in this folder:
  node verify-bundle.mjs [--public-key FILE] [--trusted-checkpoint FILE] [--witness-key FILE] [--json]
`;
}

/** README.txt lines on the witnesses of the export's own checkpoint (cosignatures.json "exportCheckpoint"). */
function witnessingReadme(w: FreshCheckpointWitnessing | null | undefined): string {
  if (!w) return "";
  const lines = w.witnesses.map((x) =>
    x.cosigned
      ? `  cosigned by witness ${x.witness} (${x.url})`
      : `  NOT cosigned by witness ${x.witness} (${x.url}) at export: ${x.reason ?? "no answer"}`,
  );
  return (
    `\nWitnesses of this export's checkpoint #${w.checkpointId} (tree size ${w.treeSize}; waited ${w.waitedMs} ms):\n${lines.join("\n")}\n` +
    (w.witnesses.some((x) => !x.cosigned)
      ? "A checkpoint not cosigned here is vouched for by the server's signature only; a later cosignature can cover it (ask the witness).\n"
      : "")
  );
}

/** The integrity appendix: the checkpoint signed for this export, the key, and an inclusion proof per cited event. */
function integrityOf(db: Db, auditKeys: AuditPublicKey, facts: ReportFacts, recorded: RecordedExport): ReportIntegrity {
  const { checkpoint, exportEventSeq } = recorded;
  const leaves = readLeafHashes(db, checkpoint.treeSize);
  const proofFor = (seq: number) => ({
    seq,
    leafIndex: seq - 1,
    treeSize: checkpoint.treeSize,
    leafHash: leaves[seq - 1]!.toString("hex"),
    proof: inclusionProof(seq - 1, leaves).map((b) => b.toString("hex")),
  });
  return {
    checkpoint: {
      id: checkpoint.id,
      treeSize: checkpoint.treeSize,
      rootHash: checkpoint.rootHash,
      at: checkpoint.at,
      reason: checkpoint.reason,
      keyFingerprint: checkpoint.keyFingerprint,
      signature: checkpoint.signature,
    },
    publicKeyPem: auditKeys.publicKeyPem,
    exportEventSeq,
    proofs: [...facts.citedEvents.map((e) => e.seq), exportEventSeq].filter((s) => s <= checkpoint.treeSize).map(proofFor),
  };
}

/** Writes the bundle files of a recorded export into `outDir`. */
export function writeReportBundle(
  db: Db,
  auditKeys: AuditPublicKey,
  prepared: PreparedReport,
  recorded: RecordedExport,
  outDir: string,
): ReportExportResult {
  const { modelVersionId, facts, contentFacts, prov, factsSha256 } = prepared;
  const { checkpoint, exportEventSeq } = recorded;
  const integrity = integrityOf(db, auditKeys, facts, recorded);
  const generatedAt = new Date().toISOString();
  const charts = renderReportCharts(facts);

  fs.mkdirSync(path.join(outDir, "charts"), { recursive: true });
  const write = (rel: string, content: string) => fs.writeFileSync(path.join(outDir, rel), content);
  const reportJson: ReportJson = { facts, integrity, generatedAt };
  write(REPORT_FILES.json, JSON.stringify(reportJson, null, 2) + "\n");
  write(REPORT_FILES.html, renderReportHtml(facts, integrity, charts, generatedAt));
  for (const c of charts) write(c.file, c.svg);
  write(REPORT_FILES.prov, JSON.stringify(prov, null, 2) + "\n");
  write(REPORT_FILES.trusted, JSON.stringify(trustedCheckpointFromRow(checkpoint, auditKeys.publicKeyPem), null, 2) + "\n");
  write(REPORT_FILES.readme, readme(facts, integrity) + witnessingReadme(recorded.witnessing));
  fs.copyFileSync(VERIFIER_SCRIPT_SOURCE, path.join(outDir, REPORT_FILES.verifier));
  writeFactsFile(outDir, contentFacts, artifactsDirOf(db.$client));
  writeBundleAuditFiles(db, outDir, auditKeys);
  writeWitnessBundleFiles(db, outDir, auditKeys.fingerprint, recorded.witnessing);

  const files = listRelative(outDir).filter((f) => f !== REPORT_FILES.manifest);
  const manifest = {
    format: facts.format,
    model: facts.model.name,
    version: facts.version.version,
    modelVersionId,
    weightsSha256: facts.version.weightsSha256,
    generatedAt,
    exportEventSeq,
    checkpoint: { id: checkpoint.id, treeSize: checkpoint.treeSize, rootHash: checkpoint.rootHash },
    files: Object.fromEntries(
      files.map((f) => {
        const bytes = fs.readFileSync(path.join(outDir, f));
        return [f, { sha256: sha256Hex(bytes), bytes: bytes.length }];
      }),
    ),
  };
  const manifestText = JSON.stringify(manifest, null, 2) + "\n";
  write(REPORT_FILES.manifest, manifestText);
  return {
    dir: outDir,
    files: [...files, REPORT_FILES.manifest],
    modelVersionId,
    model: facts.model.name,
    version: facts.version.version,
    weightsSha256: facts.version.weightsSha256,
    exportEventSeq,
    checkpoint: integrity.checkpoint,
    factsSha256,
    manifestSha256: sha256Hex(manifestText),
  };
}
