/**
 * Exports the auditor's report bundle of one model version: a folder that a verifier checks on its own.
 *
 * Bundle layout (BUNDLE_LAYOUT.md in words; README.txt inside each bundle):
 *   report.html          the human-readable report (prints to PDF)
 *   report.json          { facts, integrity, generatedAt }: everything the page shows, as data
 *   charts/*.svg         training curves, rendered on the server from the recorded metric points
 *   lineage.prov.json    W3C PROV-JSON lineage of the version
 *   events.jsonl, checkpoints.json, public-key.pem   the whole audit ledger (server/audit/bundle.ts format)
 *   key-rotations.json   only when the signing key was rotated: the "audit.keyRotate" events (server/audit/bundle.ts)
 *   trusted-checkpoint.json   the checkpoint the report cites, in the `audit verify --trusted-checkpoint` format
 *   cosignatures.json, witness-keys/   witness cosignatures of the checkpoints and the witnesses used (witness/bundle-files.ts)
 *   facts.json, artifacts/<sha256>   the records the report prints with their covering events, and the version's
 *                        weights file when ≤ 50 MB (server/audit/content/facts-file.ts documents the format)
 *   manifest.json        sha256 and size of every other file
 *   verify-bundle.mjs    standalone verifier, Node standard library only: `node verify-bundle.mjs` in the folder
 *
 * Invariants (what makes the bundle verifiable offline):
 * - The export is recorded BEFORE the checkpoint is signed: an "audit.export" event carries the sha256 of the
 *   report facts and of the PROV document, so the signed tree head covers exactly what the report shows.
 * - The cited checkpoint is signed for this export (fresh), so every cited event has an inclusion proof.
 * - report.html and charts are pure functions of report.json: the verifier re-renders and compares them.
 * - --out FILE.tar produces the same folder as a ustar archive (top folder = FILE without .tar); any other
 *   --out is a directory, which must be empty or absent.
 * - Three phases: prepareReport (reads: content check, facts, PROV), recordReportExport (the only write: the
 *   export event, then the checkpoint) and writeReportBundle (reads: files, proofs, manifest). exportReportBundle
 *   runs them in a row; the browser route runs phases 1 and 3 in a worker thread (export-in-worker.ts).
 */
import fs from "node:fs";
import os from "node:os";
import path from "node:path";
import { and, desc, eq } from "drizzle-orm";
import { modelAliasEvents, modelVersions, models } from "@/db/schema";
import type { Db, DbOrTx } from "@/db/client";
import { appendAuditEvent, type Actor } from "@/server/audit/ledger";
import { sha256Canonical, sha256Hex } from "@/contracts/canonical";
import { createAuditCheckpoint, readLeafHashes, trustedCheckpointFromRow } from "@/server/audit/checkpoints";
import { inclusionProof } from "@/server/audit/merkle";
import { writeBundleAuditFiles } from "@/server/audit/bundle";
import { writeWitnessBundleFiles } from "@/server/audit/witness/bundle-files";
import type { AuditKeys, AuditPublicKey } from "@/server/audit/keys";
import type { AuditCheckpointRow } from "@/server/audit/ledger-reads";
import type { FreshCheckpointWitnessing } from "@/server/audit/witness/fresh-cosign";
import { collectLineage } from "@/server/lineage/collect";
import { lineageToProvJson } from "@/server/lineage/prov";
import { validateProvJson } from "@/server/lineage/prov-schema";
import { notFound } from "@/server/errors";
import { collectReportFacts, type ReportFacts } from "./collect-report";
import { maxAuditSeq } from "@/server/audit/ledger-reads";
import { factsFileText, writeFactsFile } from "@/server/audit/content/facts-file";
import { artifactsDirOf, contentForExport } from "@/server/audit/content/report-content";
import { renderReportHtml, type ReportChart, type ReportIntegrity } from "./render-html";
import { renderLineChartSvg } from "./svg-chart";
import { tarDirectory } from "./tar";

export const REPORT_FILES = {
  html: "report.html",
  json: "report.json",
  prov: "lineage.prov.json",
  trusted: "trusted-checkpoint.json",
  manifest: "manifest.json",
  readme: "README.txt",
  /** The standalone verifier (Node standard library only): `node verify-bundle.mjs` checks the folder it sits in. */
  verifier: "verify-bundle.mjs",
} as const;

/** Source of the standalone verifier copied into every bundle (resolved from the project root: Next.js bundles server code). */
export const VERIFIER_SCRIPT_SOURCE = path.join(process.cwd(), "server", "audit", "report", "verify-bundle.mjs");

export type ReportJson = { facts: ReportFacts; integrity: ReportIntegrity; generatedAt: string };
export type ExportPayload = { model: string; version: number; modelVersionId: number; weightsSha256: string; format: string; factsSha256: string; provSha256: string; citedEvents: number; /** sha256 of facts.json's bytes (bundles since content verification) */ contentFactsSha256?: string };

/** Which model version a request names: an explicit version, an alias (e.g. production), or the latest version. */
export function resolveModelVersion(db: DbOrTx, modelName: string, pick: { version?: number; alias?: string } = {}): { modelVersionId: number; model: string; version: number } {
  const model = db.select().from(models).where(eq(models.name, modelName)).get();
  if (!model) notFound(`model "${modelName}"`);
  let versionId: number | null | undefined;
  if (pick.version !== undefined) {
    versionId = db.select({ id: modelVersions.id }).from(modelVersions).where(and(eq(modelVersions.modelId, model.id), eq(modelVersions.version, pick.version))).get()?.id;
    if (!versionId) notFound(`version ${pick.version} of model "${modelName}"`);
  } else if (pick.alias !== undefined) {
    versionId = db.select().from(modelAliasEvents).where(and(eq(modelAliasEvents.modelId, model.id), eq(modelAliasEvents.alias, pick.alias))).orderBy(desc(modelAliasEvents.createdAt), desc(modelAliasEvents.id)).limit(1).get()?.modelVersionId;
    if (!versionId) notFound(`a version of "${modelName}" with alias "${pick.alias}"`);
  } else {
    versionId = db.select({ id: modelVersions.id }).from(modelVersions).where(eq(modelVersions.modelId, model.id)).orderBy(desc(modelVersions.version)).limit(1).get()?.id;
    if (!versionId) notFound(`any version of model "${modelName}"`);
  }
  const v = db.select().from(modelVersions).where(eq(modelVersions.id, versionId)).get()!;
  return { modelVersionId: v.id, model: model.name, version: v.version };
}

/** The training-curve charts of every run in the report (pure: same facts, same SVG bytes). */
export function renderReportCharts(facts: ReportFacts): ReportChart[] {
  const charts: ReportChart[] = [];
  for (const r of facts.training) {
    const c = r.curves;
    const series = (keys: string[]) => keys.filter((k) => c[k]?.length).map((k) => ({ name: k, points: c[k]! }));
    const loss = series(["loss", "val_loss"]);
    if (loss.length) charts.push({ runId: r.id, file: `charts/run-${r.id}-loss.svg`, title: `Run #${r.id}: loss per epoch`, svg: renderLineChartSvg(loss, { title: `Run #${r.id}: loss per epoch`, xLabel: "epoch", yLabel: "loss" }) });
    const metricKey = c.accuracy?.length || c.val_accuracy?.length ? "accuracy" : c.mae?.length || c.val_mae?.length ? "mae" : null;
    if (metricKey) {
      const t = `Run #${r.id}: ${metricKey} per epoch`;
      charts.push({ runId: r.id, file: `charts/run-${r.id}-${metricKey}.svg`, title: t, svg: renderLineChartSvg(series([metricKey, `val_${metricKey}`]), { title: t, xLabel: "epoch", yLabel: metricKey }) });
    }
  }
  return charts;
}

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
  const lines = w.witnesses.map((x) => (x.cosigned ? `  cosigned by witness ${x.witness} (${x.url})` : `  NOT cosigned by witness ${x.witness} (${x.url}) at export: ${x.reason ?? "no answer"}`));
  return `\nWitnesses of this export's checkpoint #${w.checkpointId} (tree size ${w.treeSize}; waited ${w.waitedMs} ms):\n${lines.join("\n")}\n` +
    (w.witnesses.some((x) => !x.cosigned) ? "A checkpoint not cosigned here is vouched for by the server's signature only; a later cosignature can cover it (ask the witness).\n" : "");
}

export type ReportExportResult = {
  dir: string;
  files: string[];
  modelVersionId: number;
  model: string;
  version: number;
  weightsSha256: string;
  exportEventSeq: number;
  checkpoint: ReportIntegrity["checkpoint"];
  factsSha256: string;
  manifestSha256: string;
};

/**
 * What phase 1 of an export gathers from one read snapshot: the report's facts (labelled with the content check's
 * result), facts.json's records, the PROV document, and the payload the "audit.export" event records.
 */
export type PreparedReport = { modelVersionId: number; facts: ReportFacts; contentFacts: ReturnType<ReturnType<typeof contentForExport>["factsFor"]>; prov: ReturnType<typeof lineageToProvJson>; factsSha256: string; payload: ExportPayload };
/** What phase 2 recorded: the export event and the checkpoint signed over it. */
export type RecordedExport = {
  exportEventSeq: number;
  checkpoint: AuditCheckpointRow;
  /** Whether the configured witnesses cosigned that checkpoint within the export's wait (export-cosigned.ts); null: none configured. */
  witnessing?: FreshCheckpointWitnessing | null;
};

/** Phase 1 (reads only; the heavy part: the content check over the whole ledger). */
export function prepareReport(db: Db, modelVersionId: number): PreparedReport {
  // One read: the content check (every row and file against the ledger), the report's facts labelled with its
  // result, and facts.json (the printed records with their covering events).
  const { facts, contentFacts } = db.$client.transaction(() => {
    const content = contentForExport(db.$client, maxAuditSeq(db));
    const facts = collectReportFacts(db, modelVersionId, content.result);
    return { facts, contentFacts: content.factsFor(facts) };
  })();
  const prov = lineageToProvJson(collectLineage(db, modelVersionId));
  const provProblems = validateProvJson(prov);
  if (provProblems.length) throw new Error(`PROV-JSON of ${facts.model.name} v${facts.version.version} is malformed: ${provProblems.slice(0, 5).join("; ")}`);
  const factsSha256 = sha256Canonical(facts);
  const payload: ExportPayload = { model: facts.model.name, version: facts.version.version, modelVersionId, weightsSha256: facts.version.weightsSha256, format: facts.format, factsSha256, provSha256: sha256Canonical(prov), citedEvents: facts.citedEvents.length, contentFactsSha256: sha256Hex(factsFileText(contentFacts)) };
  return { modelVersionId, facts, contentFacts, prov, factsSha256, payload };
}

/** Phase 2 (the writer; cheap): records "audit.export" BEFORE signing the checkpoint that covers it. */
export function recordReportExport(deps: { db: Db; auditKeys: AuditKeys }, actor: Actor, payload: ExportPayload): RecordedExport {
  const exportEvent = deps.db.transaction((tx) => appendAuditEvent(tx, { actor, action: "audit.export", entityType: "modelVersion", entityId: payload.modelVersionId, payload }));
  const { checkpoint } = createAuditCheckpoint(deps.db, deps.auditKeys, `auditor's report of ${payload.model} v${payload.version}`);
  return { exportEventSeq: exportEvent.seq, checkpoint };
}

/** Writes the bundle into `outDir` (created; must be empty if it exists). Records "audit.export" and signs a checkpoint. */
export function exportReportBundle(deps: { db: Db; auditKeys: AuditKeys }, actor: Actor, modelVersionId: number, outDir: string): ReportExportResult {
  assertEmptyOutDir(outDir);
  const prepared = prepareReport(deps.db, modelVersionId);
  return writeReportBundle(deps.db, deps.auditKeys, prepared, recordReportExport(deps, actor, prepared.payload), outDir);
}

export function assertEmptyOutDir(outDir: string): void {
  if (fs.existsSync(outDir) && fs.readdirSync(outDir).length > 0) throw new Error(`${outDir} is not empty: choose a new folder for the bundle`);
}

/** Phase 3 (reads only; heavy: the whole ledger into events.jsonl, proofs, hashes): the bundle files of a recorded export. */
export function writeReportBundle(db: Db, auditKeys: AuditPublicKey, prepared: PreparedReport, recorded: RecordedExport, outDir: string): ReportExportResult {
  const { modelVersionId, facts, contentFacts, prov, factsSha256 } = prepared;
  const { checkpoint } = recorded;
  const exportEvent = { seq: recorded.exportEventSeq };
  const leaves = readLeafHashes(db, checkpoint.treeSize);
  const proofFor = (seq: number) => ({ seq, leafIndex: seq - 1, treeSize: checkpoint.treeSize, leafHash: leaves[seq - 1]!.toString("hex"), proof: inclusionProof(seq - 1, leaves).map((b) => b.toString("hex")) });
  const integrity: ReportIntegrity = {
    checkpoint: { id: checkpoint.id, treeSize: checkpoint.treeSize, rootHash: checkpoint.rootHash, at: checkpoint.at, reason: checkpoint.reason, keyFingerprint: checkpoint.keyFingerprint, signature: checkpoint.signature },
    publicKeyPem: auditKeys.publicKeyPem,
    exportEventSeq: exportEvent.seq,
    proofs: [...facts.citedEvents.map((e) => e.seq), exportEvent.seq].filter((s) => s <= checkpoint.treeSize).map(proofFor),
  };
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
    exportEventSeq: exportEvent.seq,
    checkpoint: { id: checkpoint.id, treeSize: checkpoint.treeSize, rootHash: checkpoint.rootHash },
    files: Object.fromEntries(files.map((f) => {
      const bytes = fs.readFileSync(path.join(outDir, f));
      return [f, { sha256: sha256Hex(bytes), bytes: bytes.length }];
    })),
  };
  const manifestText = JSON.stringify(manifest, null, 2) + "\n";
  write(REPORT_FILES.manifest, manifestText);
  return { dir: outDir, files: [...files, REPORT_FILES.manifest], modelVersionId, model: facts.model.name, version: facts.version.version, weightsSha256: facts.version.weightsSha256, exportEventSeq: exportEvent.seq, checkpoint: integrity.checkpoint, factsSha256, manifestSha256: sha256Hex(manifestText) };
}

export function listRelative(dir: string, rel = ""): string[] {
  const out: string[] = [];
  for (const e of fs.readdirSync(path.join(dir, rel), { withFileTypes: true })) {
    const r = rel ? `${rel}/${e.name}` : e.name;
    if (e.isDirectory()) out.push(...listRelative(dir, r));
    else if (e.isFile()) out.push(r);
  }
  return out.sort();
}

/** A safe folder/file stem for a bundle, e.g. "iris-classifier-v3-auditors-report". */
export function bundleName(model: string, version: number): string {
  return `${model.replace(/[^A-Za-z0-9._-]+/g, "-")}-v${version}-auditors-report`;
}

/**
 * Exports the bundle as a tar archive in memory (for the browser download); the temporary folder is removed.
 * `root` names the archive's top folder (default: bundleName).
 */
export function exportReportTar(deps: { db: Db; auditKeys: AuditKeys }, actor: Actor, modelVersionId: number, root?: string): { fileName: string; bytes: Buffer; result: ReportExportResult } {
  const tmp = fs.mkdtempSync(path.join(os.tmpdir(), "runledger-report-"));
  try {
    const result = exportReportBundle(deps, actor, modelVersionId, path.join(tmp, "bundle"));
    const top = root ?? bundleName(result.model, result.version);
    return { fileName: `${top}.tar`, bytes: tarDirectory(result.dir, top), result };
  } finally {
    fs.rmSync(tmp, { recursive: true, force: true });
  }
}

/** Exports to `out`: a directory, or a .tar file whose top folder is named after the file (`tar xf NAME.tar` gives NAME/). */
export function exportReportTo(deps: { db: Db; auditKeys: AuditKeys }, actor: Actor, modelVersionId: number, out: string): ReportExportResult & { out: string; kind: "directory" | "tar" } {
  if (!out.toLowerCase().endsWith(".tar")) return { ...exportReportBundle(deps, actor, modelVersionId, out), out, kind: "directory" };
  const { bytes, result } = exportReportTar(deps, actor, modelVersionId, path.basename(out).replace(/\.tar$/i, ""));
  fs.mkdirSync(path.dirname(out), { recursive: true });
  fs.writeFileSync(out, bytes);
  return { ...result, dir: out, out, kind: "tar" };
}

/** Reads back an archive written by tarDirectory (regular files only; strips the top folder). For tests and `export --verify FILE.tar`. */
export function untarInto(bytes: Buffer, dir: string): string[] {
  const files: string[] = [];
  let off = 0;
  while (off + 512 <= bytes.length) {
    const h = bytes.subarray(off, off + 512);
    if (h.every((b) => b === 0)) break;
    const name = h.subarray(0, 100).toString("utf8").replace(/\0.*$/s, "");
    const prefix = h.subarray(345, 500).toString("utf8").replace(/\0.*$/s, "");
    const size = parseInt(h.subarray(124, 136).toString("ascii").replace(/\0.*$/s, "").trim() || "0", 8);
    const type = String.fromCharCode(h[156]!);
    const full = prefix ? `${prefix}/${name}` : name;
    const rel = full.split("/").slice(1).join("/");
    off += 512;
    if ((type === "0" || type === "\0") && rel) {
      if (rel.split("/").some((p) => p === ".." || p === "")) throw new Error(`tar: unsafe path ${full}`);
      fs.mkdirSync(path.dirname(path.join(dir, rel)), { recursive: true });
      fs.writeFileSync(path.join(dir, rel), bytes.subarray(off, off + size));
      files.push(rel);
    }
    off += Math.ceil(size / 512) * 512;
  }
  return files;
}
