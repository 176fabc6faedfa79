/**
 * The text `audit verify` prints: the verdict, then one line per level saying what was proved ("chain intact: N
 * events, M signed checkpoints", "content intact: …", "anchored up to tree size N by …" or "NOT anchored: …",
 * "protective triggers intact"), then the problems (content problems name the entity, what the ledger recorded
 * and what was found), then notes; with `--witness-url`, one line per witness asked. `--json` prints the whole
 * VerifyResult instead (plus `witnessUrls`, what each witness answered).
 */
import type { VerifyResult } from "@/server/audit/verify";
import type { WitnessUrlCheck } from "@/server/audit/witness/witness-url-anchors";
import { countOf } from "@/contracts/count-text";

const MAX_LISTED = 20;

export function formatResult(
  target: string,
  r: VerifyResult,
  trustedGiven: boolean,
  witnessChecks: readonly WitnessUrlCheck[] = [],
): string {
  const { chain, content, anchor, triggers } = r.levels;
  const lines = [`Audit ledger ${target}: ${r.ok ? "INTACT" : "DAMAGED"}`];

  lines.push(
    chain.ok
      ? `  chain intact: ${chain.events} events, ${chain.checkpoints} signed checkpoints`
      : `  chain DAMAGED: ${chain.problem}${r.firstBadSeq !== null ? ` (first bad seq ${r.firstBadSeq})` : ""}`,
  );
  if (content.skipped) lines.push(`  content not checked: ${content.skipped}`);
  else if (content.ok)
    lines.push(
      `  content intact: ${content.checked} recorded facts re-derived and matched${typeof content.files === "number" ? `, ${content.files} artifact files re-hashed` : ""}`,
    );
  else lines.push(`  content DAMAGED: ${content.problems.length} table row(s) or file(s) disagree with the ledger`);
  if (anchor.anchored) {
    const after = chain.events - anchor.treeSize;
    lines.push(
      `  anchored up to tree size ${anchor.treeSize} by ${anchor.by.map((b) => `${b.name} (${b.kind}, tree size ${b.treeSize})`).join(", ")}`,
    );
    // What lies past the anchor rests on the server's own signature only: say how much, so "anchored" is not read as "all of it".
    if (after > 0)
      lines.push(
        `                ${countOf(after, "later event")} ${after === 1 ? "is" : "are"} not covered by the anchor (only by the server's own chain and signatures)`,
      );
  } else if (anchor.problem) {
    lines.push(`  anchor FAILED: ${anchor.problem}`);
  } else {
    lines.push("  NOT anchored: no trusted checkpoint or witness cosignature was given, so this proves internal consistency only:");
    lines.push("                a holder of the signing key could have rewritten or truncated history and re-signed it");
  }
  for (const w of witnessChecks) {
    lines.push(
      w.outcome === "cosigned"
        ? `  witness at ${w.url}: cosigned tree size ${w.treeSize} (${w.witness}, ${w.cosignedAt}), compared with the log`
        : `  witness at ${w.url}: NOT anchored by it (${w.outcome}): ${w.message}`,
    );
  }
  if (triggers) {
    lines.push(
      triggers.ok
        ? "  protective triggers intact"
        : `  protective triggers DAMAGED:${triggers.missing.length ? ` missing ${triggers.missing.join(", ")};` : ""}${triggers.altered.length ? ` altered ${triggers.altered.join(", ")}` : ""}`,
    );
  }

  lines.push(
    `  events checked:      ${r.eventsChecked}`,
    `  checkpoints checked: ${r.checkpointsChecked}` +
      (r.latestCheckpoint ? ` (latest #${r.latestCheckpoint.id}, tree size ${r.latestCheckpoint.treeSize}, ${r.latestCheckpoint.at})` : ""),
    `  trusted checkpoint:  ${!trustedGiven ? "not given" : r.trustedCheckpointChecked ? "matched: the log extends it" : "NOT matched"}`,
    `  server key:          ${r.keyFingerprint} (from ${r.keySource})`,
    `  time:                ${r.durationMs} ms${r.workers > 0 ? ` (${r.workers} range worker${r.workers === 1 ? "" : "s"})` : ""}`,
  );
  if (!r.ok) {
    if (r.firstBadSeq !== null) lines.push(`  first bad seq:       ${r.firstBadSeq}`);
    lines.push(`  problem:             ${r.problem}`);
    for (const p of r.problems.slice(1, MAX_LISTED)) lines.push(`  also:                ${p}`);
    if (r.problems.length > MAX_LISTED) lines.push(`  ... and ${r.problems.length - MAX_LISTED} more (--json lists them all)`);
  }
  for (const p of content.problems.slice(0, MAX_LISTED)) {
    lines.push(
      `  content: ${p.entityType} ${p.entityId} ${p.field}: ledger recorded ${p.recorded ?? "nothing"}, found ${p.found ?? "nothing"}${p.seq !== null ? ` (event #${p.seq})` : ""}`,
    );
  }
  for (const n of content.notCovered.slice(0, MAX_LISTED)) lines.push(`  not covered by the ledger: ${n}`);
  for (const n of r.notes) if (!n.startsWith("NOT anchored:")) lines.push(`  note: ${n}`); // the anchor line says it
  return lines.join("\n") + "\n";
}
