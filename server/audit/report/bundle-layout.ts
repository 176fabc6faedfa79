/**
 * The auditor's report bundle as files: their names, the bundle's folder name, and the shapes of report.json, the
 * "audit.export" event payload and an export's result. Shared by the three export phases, the worker, the browser
 * route and the verifier.
 *
 * Invariant: imports no renderer and nothing that touches the database, so the Next.js route can name bundle files
 * without bundling react-dom/server (the rendering runs in the export worker and the CLI only).
 */
import fs from "node:fs";
import path from "node:path";
import type { AuditCheckpointRow } from "@/server/audit/ledger-reads";
import type { FreshCheckpointWitnessing } from "@/server/audit/witness/fresh-cosign";
import type { ReportFacts } from "./collect-report";
import type { ReportIntegrity } from "./render/report-types";

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
export type ExportPayload = {
  model: string;
  version: number;
  modelVersionId: number;
  weightsSha256: string;
  format: string;
  factsSha256: string;
  provSha256: string;
  citedEvents: number;
  /** sha256 of facts.json's bytes (bundles since content verification) */ contentFactsSha256?: string;
};

/** What phase 2 recorded: the export event and the checkpoint signed over it. */
export type RecordedExport = {
  exportEventSeq: number;
  checkpoint: AuditCheckpointRow;
  /** Whether the configured witnesses cosigned that checkpoint within the export's wait (export-record.ts); null: none configured. */
  witnessing?: FreshCheckpointWitnessing | null;
};

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

/** A safe folder/file stem for a bundle, e.g. "iris-classifier-v3-auditors-report". */
export function bundleName(model: string, version: number): string {
  return `${model.replace(/[^A-Za-z0-9._-]+/g, "-")}-v${version}-auditors-report`;
}

/** A bundle goes into a new or empty folder: an export never mixes its files with others. */
export function assertEmptyOutDir(outDir: string): void {
  if (fs.existsSync(outDir) && fs.readdirSync(outDir).length > 0)
    throw new Error(`${outDir} is not empty: choose a new folder for the bundle`);
}

/** Every regular file under `dir`, relative and "/"-separated, sorted (the manifest's file list). */
export function listRelative(dir: string, rel = ""): string[] {
  const out: string[] = [];
  for (const e of fs.readdirSync(path.join(dir, rel), { withFileTypes: true })) {
    const r = rel ? `${rel}/${e.name}` : e.name;
    if (e.isDirectory()) out.push(...listRelative(dir, r));
    else if (e.isFile()) out.push(r);
  }
  return out.sort();
}
