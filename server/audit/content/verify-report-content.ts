/**
 * The content part of `export --verify` (server/audit/report/verify-report.ts): facts.json is the file the export
 * event recorded (contentFactsSha256), its records match the ledger in events.jsonl (verifyBundleContent, weights
 * file re-hashed), the report prints exactly those records (crossCheckReportFacts), and the report's own content
 * section did not record a failure at export.
 *
 * Invariant: problems name the entity ("content check failed for evaluation 5: …"); a bundle without facts.json
 * (exported before content verification) is said to be unchecked, never passed as checked.
 */
import fs from "node:fs";
import path from "node:path";
import readline from "node:readline";
import { sha256Hex } from "@/contracts/canonical";
import type { ReportFacts } from "@/server/audit/report/collect-report";
import { FACTS_FILE } from "./facts-file";
import { crossCheckReportFacts } from "./report-crosscheck";
import { readFactsFile, verifyBundleContent, type BundleEventRow } from "./verify-bundle-content";
import type { ContentLevel } from "./types";

async function eventsBySeq(file: string, seqs: Set<number>): Promise<Map<number, BundleEventRow>> {
  const out = new Map<number, BundleEventRow>();
  if (seqs.size === 0) return out;
  const lines = readline.createInterface({
    input: fs.createReadStream(file, { encoding: "utf8", highWaterMark: 1 << 20 }),
    crlfDelay: Infinity,
  });
  for await (const line of lines) {
    const m = /^\{"seq":(\d+),/.exec(line);
    if (!m || !seqs.has(Number(m[1]))) continue;
    out.set(Number(m[1]), JSON.parse(line) as BundleEventRow);
  }
  return out;
}

export async function verifyReportContent(
  dir: string,
  eventsFile: string,
  recordedFactsSha256: string | undefined,
  report: ReportFacts,
): Promise<{ problems: string[]; checked: string[]; level: ContentLevel | null }> {
  const problems: string[] = [];
  const checked: string[] = [];
  const file = path.join(dir, FACTS_FILE);
  if (!fs.existsSync(file)) {
    if (recordedFactsSha256) problems.push(`${FACTS_FILE} is missing, but the export recorded its sha256`);
    else checked.push(`no ${FACTS_FILE} (exported before content verification): the report's content was NOT checked against the ledger`);
    return { problems, checked, level: null };
  }
  if (recordedFactsSha256 === undefined) problems.push(`the export event did not record the sha256 of ${FACTS_FILE}`);
  else if (sha256Hex(fs.readFileSync(file)) !== recordedFactsSha256)
    problems.push(`${FACTS_FILE} is not the one the export recorded (edited?)`);
  else checked.push(`${FACTS_FILE} matches the sha256 recorded at export`);

  const facts = readFactsFile(dir)!;
  const events = await eventsBySeq(path.join(dir, eventsFile), new Set(facts.relatedSeqs));
  const level = verifyBundleContent(dir, (seq) => events.get(seq));
  if (level.skipped) checked.push(`content not checked: ${level.skipped}`);
  for (const p of level.problems) problems.push(`content check failed for ${p.entityType} ${p.entityId}: ${p.message}`);
  if (level.ok && !level.skipped)
    checked.push(
      `content intact: ${level.checked} facts of ${FACTS_FILE} match the ledger${facts.weights.file ? "; the weights file re-hashes to the recorded sha256" : ""}`,
    );

  const cross = crossCheckReportFacts(report, facts);
  problems.push(...cross.problems);
  if (cross.problems.length === 0)
    checked.push(`the report prints exactly the records of ${FACTS_FILE} (${cross.compared} records compared)`);

  if (report.content && !report.content.ok)
    problems.push(
      `the report records that its content check failed at export: ${report.content.problems[0]?.message ?? "see its content appendix"}`,
    );
  else if (!report.content) problems.push("the report carries no content check result");
  return { problems, checked, level };
}
