/**
 * The auditor's report as one self-contained HTML page (inline CSS and SVG, no scripts, no external requests) that
 * reads on screen and prints well to PDF. Sections follow the order of EU AI Act Annex IV where it applies; points
 * of Annex IV this tool does not produce are listed as such rather than left out silently.
 *
 * Invariants: every value from the database is HTML-escaped; the page is a pure function of its input (facts,
 * integrity appendix, charts), so the same export yields the same bytes apart from the generation time.
 */
import type { ReportFacts } from "./collect-report";
import type { SplitManifest } from "@/trainer/types";
import type { DocumentSection } from "@/server/documents/service";
import { escapeXml as esc } from "./svg-chart";

export type ReportIntegrity = {
  checkpoint: { id: number; treeSize: number; rootHash: string; at: string; reason: string; keyFingerprint: string; signature: string };
  publicKeyPem: string;
  exportEventSeq: number;
  proofs: { seq: number; leafIndex: number; treeSize: number; leafHash: string; proof: string[] }[];
};

export type ReportChart = { runId: number; file: string; title: string; svg: string };

const time = (iso: string | null | undefined) => (iso ? esc(iso.replace(/\.\d+Z$/, "Z")) : "–");
const num = (v: unknown) => (typeof v === "number" ? (Number.isInteger(v) ? String(v) : v.toPrecision(4)) : v === null || v === undefined ? "–" : esc(String(v)));
const pct = (v: unknown) => (typeof v === "number" ? `${(v * 100).toFixed(1)} %` : "–");
const code = (s: string | null | undefined) => (s ? `<code>${esc(s)}</code>` : "–");
const json = (v: unknown) => `<code class="json">${esc(JSON.stringify(v))}</code>`;

/** A split's fitted preprocessing: label encoding, vocabulary, and normalisation statistics (value → (v − a) / b), in file column order. */
function preprocessingHtml(m: SplitManifest, columnOrder: string[]): string {
  const out: string[] = [];
  if (m.labelEncoding) out.push(`<p class="meta">Label encoding (output index → class): ${m.labelEncoding.map((c, i) => `${i} → ${esc(c)}`).join(", ")}</p>`);
  if (m.vocabulary) out.push(`<p class="meta">Vocabulary: ${m.vocabulary.size} tokens, sequences of ${m.vocabulary.sequenceLength} · sha256 ${code(m.vocabulary.sha256)}</p>`);
  const position = (column: string) => (columnOrder.includes(column) ? columnOrder.indexOf(column) : columnOrder.length);
  const stats = Object.entries(m.normalization.stats).sort(([a], [b]) => position(a) - position(b));
  if (stats.length) {
    const [a, b] = m.normalization.method === "minmax" ? ["Minimum", "Range"] : ["Mean", "Standard deviation"];
    out.push(table(`Normalisation statistics (${m.normalization.method}, fitted on the train partition)`, ["Column", a, b], stats.map(([col, st]) => [esc(col), num(st.a), num(st.b)])));
  }
  return out.join("");
}

function table(caption: string, head: string[], rows: string[][]): string {
  if (rows.length === 0) return `<p class="muted">${esc(caption)}: none recorded.</p>`;
  return `<table><caption>${esc(caption)}</caption><thead><tr>${head.map((h) => `<th scope="col">${esc(h)}</th>`).join("")}</tr></thead><tbody>${rows.map((r) => `<tr>${r.map((c) => `<td>${c}</td>`).join("")}</tr>`).join("")}</tbody></table>`;
}

function documentSections(sections: DocumentSection[], refs: (type: string, id: number | string) => string): string {
  return sections
    .map((s) => {
      if (!s.latest) return `<h4>${esc(s.title)}</h4><p class="missing">Not written yet: this section of the documentation is missing.</p>`;
      const d = s.latest;
      const sigs = d.signatures.length ? `<ul class="signatures">${d.signatures.map((g) => `<li>${esc(g.text)}${g.comment ? ` — “${esc(g.comment)}”` : ""} ${refs("signature", g.id)}</li>`).join("")}</ul>` : `<p class="missing">Not signed.</p>`;
      return `<h4>${esc(s.title)}</h4><p class="meta">Version ${d.version}, written by ${esc(d.author)} on ${time(d.createdAt)} · sha256 ${code(d.sha256)} ${refs("document", d.id)}</p><div class="doc-body">${esc(d.body)}</div>${sigs}`;
    })
    .join("");
}

type ReportContentFacts = ReportFacts["content"];

/** What the content check found for one printed record: checked against the ledger, failed, or not covered. */
function contentLabel(content: ReportContentFacts, type: string, id: number | string): string {
  if (!content) return ` <span class="content nc">content not checked</span>`;
  const e = content.entities[`${type}:${id}`];
  if (!e || e.status === "not covered") return ` <span class="content nc">not covered by the ledger</span>`;
  if (e.status === "failed") return ` <span class="content bad">content check FAILED: ${esc(e.problems.join("; "))}</span>`;
  return ` <span class="content ok">checked against the ledger${e.notCovered.length ? `; not covered by the ledger: ${esc(e.notCovered.join(", "))}` : ""}</span>`;
}

function contentSummary(content: ReportContentFacts): string {
  if (!content) return "content not checked";
  if (content.skipped) return `content not checked (${esc(content.skipped)})`;
  return content.ok ? `content check: intact (${content.checked} facts)` : `<strong>content check FAILED (${content.problemCount} problem(s))</strong>`;
}

function contentAppendix(content: ReportContentFacts): string {
  const head = `<section id="content-check" class="appendix"><h2>Appendix: content verification</h2><p>At export, every table row and artifact file the ledger records was re-derived and compared with the hashes and values its events recorded (the whole ledger, not only this version). Each record above is labelled with the result: <span class="content ok">checked against the ledger</span>, <span class="content bad">content check FAILED</span>, or <span class="content nc">not covered by the ledger</span>. The bundle's facts.json lets <code>export --verify</code> and verify-bundle.mjs repeat the check offline.</p>`;
  if (!content) return `${head}<p class="missing">The content check was not run for this report: no fact above is verified against the ledger.</p></section>`;
  const problems = content.problems.length
    ? `<p class="missing"><strong>Content check FAILED: ${content.problemCount} problem(s).</strong> The values printed for these records are NOT what the ledger recorded.</p><ul>${content.problems.map((p) => `<li>${esc(p.message)}${p.seq !== null ? ` <a href="#ev-${p.seq}">#${p.seq}</a>` : ""}</li>`).join("")}</ul>${content.problemCount > content.problems.length ? `<p class="muted">… and ${content.problemCount - content.problems.length} more.</p>` : ""}`
    : `<p>Content intact: ${content.checked} facts compared, no difference.</p>`;
  const gaps = content.notCovered.length ? `<h3>Not covered by the ledger</h3><ul>${content.notCovered.map((n) => `<li>${esc(n)}</li>`).join("")}</ul>` : "";
  return `${head}${problems}${gaps}</section>`;
}

export function renderReportHtml(f: ReportFacts, integrity: ReportIntegrity, charts: ReportChart[], generatedAt: string): string {
  const bySeq = new Map<string, number[]>();
  for (const e of f.citedEvents) {
    const k = `${e.entityType}:${e.entityId}`;
    bySeq.set(k, [...(bySeq.get(k) ?? []), e.seq]);
  }
  // Every record printed carries its ledger events and what the content check found for it.
  const refs = (type: string, id: number | string) => {
    const seqs = bySeq.get(`${type}:${id}`) ?? [];
    return (seqs.length ? `<span class="ref">ledger ${seqs.map((s) => `<a href="#ev-${s}">#${s}</a>`).join(" ")}</span>` : "") + contentLabel(f.content, type, id);
  };
  const title = `${f.model.name} version ${f.version.version}`;
  const s: string[] = [];

  // 1. Identity
  s.push(`<section id="identity"><h2>1. General description and identity <span class="annex">Annex IV 1(a), 1(d)</span></h2>
<dl class="facts">
<dt>Model</dt><dd>${esc(f.model.name)}</dd>
<dt>Version</dt><dd>${f.version.version} ${refs("modelVersion", f.version.id)}</dd>
<dt>Weights sha256</dt><dd><code class="weights">${esc(f.version.weightsSha256)}</code></dd>
<dt>Current aliases</dt><dd>${f.version.aliases.length ? f.version.aliases.map(esc).join(", ") : "none"}</dd>
<dt>Checkpoint</dt><dd>#${f.version.checkpoint.id}, epoch ${f.version.checkpoint.epoch} of run #${f.version.checkpoint.runId}${f.version.checkpoint.isBest ? " (best)" : ""}, ${f.version.checkpoint.bytes.toLocaleString("en-US")} bytes ${refs("checkpoint", f.version.checkpoint.id)}</dd>
<dt>Registered</dt><dd>by ${esc(f.version.createdBy.name)} on ${time(f.version.createdAt)}</dd>
<dt>Approvals required for production</dt><dd>${f.model.approvalsRequired}${contentLabel(f.content, "model", f.model.id)}</dd>
</dl></section>`);

  // 2. Intended purpose and limits
  s.push(`<section id="purpose"><h2>2. Intended purpose, limitations and risks <span class="annex">Annex IV 1(a), 3</span></h2>
<p class="muted">Model card sections written by people in Runledger; each is versioned and signed, and bound to the ledger by its sha256.</p>
${documentSections(f.modelCard, refs)}</section>`);

  // 3. Design choices
  s.push(`<section id="design"><h2>3. Design choices and their rationale <span class="annex">Annex IV 2(b)</span></h2>
<p class="muted">Every configuration change, note and correction on the chain of runs that produced this version, oldest first. A change creates a new run (fork); the old run is never edited.</p>
${table(
  "Decision history",
  ["#", "Run", "Kind", "What", "Rationale", "Author", "Time"],
  [...f.decisions].sort((a, b) => a.id - b.id).map((d) => [
    `${d.id} ${refs("decision", d.id)}`,
    `#${d.runId} ${esc(d.runName)}`,
    esc(d.kind),
    d.kind === "change" ? `${code(d.path)}: ${json(d.oldValue)} → ${json(d.newValue)}` : d.kind === "correction" ? `corrects #${d.correctsDecisionId ?? "?"}` : d.kind === "initial" ? "initial configuration" : "note",
    esc(d.rationale),
    esc(d.author.name),
    time(d.createdAt),
  ]),
)}</section>`);

  // 4. Data
  const sheets = f.datasheets.map((d) => {
    const versions = d.versions.map((v) => {
      const steps = v.report.steps.map((st) => [esc(st.op), json(st.params), num(st.rowsBefore), num(st.rowsAfter), num(st.rowsDropped), json(st.valuesImputed), num(st.outliersRemoved)]);
      const splitsHtml = v.splits.map((sp) => {
        const parts = (["train", "validation", "test"] as const).map((p) => {
          const m = sp.manifest.partitions[p];
          return [p, num(m.count), m.classBalance ? json(m.classBalance) : "–", code(m.indicesSha256)];
        });
        return `<h5>Split #${sp.id} ${refs("split", sp.id)}</h5><p class="meta">${esc(sp.manifest.strategy)} split, seed ${sp.manifest.seed}, ratios ${json(sp.manifest.ratios)}, normalisation ${esc(sp.manifest.normalization.method)} (statistics fitted on the train partition only) · manifest sha256 ${code(sp.sha256)}</p>${table("Split manifest", ["Partition", "Rows", "Class balance", "Row indices sha256"], parts)}${preprocessingHtml(sp.manifest, d.columns)}`;
      });
      return `<h5>Cleaned version #${v.id} ${refs("datasetVersion", v.id)}</h5><p class="meta">Recipe ${json(v.recipe)} (sha256 ${code(v.recipeSha256)}) · ${v.report.rowsIn} rows in, ${v.report.rowsOut} rows out · cleaned rows sha256 ${code(v.sha256)}</p>${table("Cleaning report", ["Step", "Parameters", "Rows before", "Rows after", "Dropped", "Imputed", "Outliers removed"], steps)}${splitsHtml.join("")}`;
    });
    return `<article class="datasheet"><h3>Datasheet: ${esc(d.name)} ${refs("dataset", d.id)}</h3>
<dl class="facts"><dt>Source</dt><dd>${esc(d.source)}</dd><dt>Origin</dt><dd>${esc(d.origin) || "–"}</dd><dt>Licence</dt><dd>${esc(d.licence) || "–"}</dd><dt>Raw bytes sha256</dt><dd>${code(d.sha256)}</dd><dt>Rows</dt><dd>${num(d.rowCount)}</dd></dl>
${documentSections(d.documents, refs)}${versions.join("")}</article>`;
  });
  s.push(`<section id="data"><h2>4. Data: datasheets, cleaning and splits <span class="annex">Annex IV 2(d)</span></h2>${sheets.join("") || `<p class="missing">No dataset is recorded for this version's runs.</p>`}</section>`);

  // 5. Training
  const runsHtml = f.training.map((r) => {
    const t = r.config.training;
    const hp = [
      ["Layers", esc(r.configSummary)],
      ["Optimizer", `${esc(t.optimizer.name)} ${json(t.optimizer)}`],
      ["Learning rate", `${num(t.learningRate)} ${json(t.lrSchedule)}`],
      ["Batch size", num(t.batchSize)],
      ["Epochs", num(t.epochs)],
      ["Seed", num(r.seed)],
      ["Config sha256", code(r.configSha256)],
      ["Backend", `${esc(r.backend ?? "–")}${r.backendReason ? ` — ${esc(r.backendReason)}` : ""}`],
      ["Environment", r.environment ? json(r.environment) : "–"],
      ["Parameters", num(r.paramCount)],
      ["Final weights sha256", code(r.finalWeightsSha256)],
    ];
    const runCharts = charts.filter((c) => c.runId === r.id).map((c) => `<figure>${c.svg}<figcaption>${esc(c.title)} (also ${esc(c.file)})</figcaption></figure>`);
    return `<article class="run"><h3>Run #${r.id}: ${esc(r.name)} ${refs("run", r.id)}</h3><p class="meta">${esc(r.origin)} run by ${esc(r.author.name)}, started ${time(r.startedAt)}, finished ${time(r.finishedAt)}${r.parentRunId !== null ? `, parent run #${r.parentRunId}` : ""}${r.parentCheckpointId !== null ? `, fine-tuned from checkpoint #${r.parentCheckpointId}` : ""}</p>
<dl class="facts">${hp.map(([k, v]) => `<dt>${k}</dt><dd>${v}</dd>`).join("")}</dl>${runCharts.join("")}</article>`;
  });
  s.push(`<section id="training"><h2>5. Training procedure and environment <span class="annex">Annex IV 2(a), 2(c)</span></h2><p class="muted">The run that produced the weights first, then its ancestors. Curves are drawn from the recorded per-epoch metric points.</p>${runsHtml.join("")}</section>`);

  // 6. Evaluation
  const evals = f.evaluations.map((e) => {
    const m = e.metrics as Record<string, unknown>;
    const perClass = Array.isArray(m.perClass) ? (m.perClass as { label: string; precision: number; recall: number; f1: number; support: number }[]) : [];
    const headline = Object.entries(m).filter(([, v]) => typeof v === "number").map(([k, v]) => `${esc(k)} ${/acc|precision|recall|f1/.test(k) ? pct(v) : num(v)}`).join(" · ");
    const confusion = e.confusion
      ? table("Confusion matrix (rows: true class, columns: predicted)", ["true \\ predicted", ...e.confusion.labels], e.confusion.matrix.map((row, i) => [esc(e.confusion!.labels[i] ?? String(i)), ...row.map((n) => num(n))]))
      : "";
    return `<article class="evaluation"><h3>Evaluation #${e.id} on the ${esc(e.partition)} partition ${refs("evaluation", e.id)}</h3><p class="meta">${e.source === "training" ? "computed by the trainer at the end of the run" : `requested by ${esc(e.createdBy)}`} · ${time(e.createdAt)} · data digest (SHA-256 of the partition's feature and label values) ${code(e.dataSha256)}${e.splitId !== null ? ` · split #${e.splitId}` : ""}</p><p class="headline">${headline}</p>
${perClass.length ? table("Per class", ["Class", "Precision", "Recall", "F1", "Support"], perClass.map((c) => [esc(c.label), pct(c.precision), pct(c.recall), pct(c.f1), num(c.support)])) : ""}${confusion}</article>`;
  });
  s.push(`<section id="evaluation"><h2>6. Evaluation <span class="annex">Annex IV 2(g), 4</span></h2>${evals.join("") || `<p class="missing">This version's checkpoint has no recorded evaluation.</p>`}</section>`);

  // 7. Approvals
  const requests = f.approvals.requests.map((p) => `<article class="request"><h3>Promotion request #${p.id}: ${esc(p.alias)} — ${esc(p.status)} ${refs("promotionRequest", p.id)}</h3>
<p class="meta">Requested by ${esc(p.requestedBy.name)} on ${time(p.createdAt)}${p.decidedAt ? `, decided ${time(p.decidedAt)}` : ""} · record sha256 ${code(p.recordSha256)} · cites evaluation #${p.evaluationId}</p><p>Rationale: ${esc(p.rationale)}</p>
${p.signatures.length ? `<ul class="signatures">${p.signatures.map((g) => `<li>${esc(g.text)}${g.comment ? ` — “${esc(g.comment)}”` : ""} ${refs("signature", g.id)}</li>`).join("")}</ul>` : `<p class="missing">No signatures.</p>`}
${p.refusedSelfApprovals.length ? `<p><strong>Refused self-approvals</strong> (four eyes): ${p.refusedSelfApprovals.map((r) => `${esc(r.who)} at ${time(r.at)} (${esc(r.reasons.join("; "))}) <a href="#ev-${r.seq}">#${r.seq}</a>`).join("; ")}</p>` : ""}</article>`);
  s.push(`<section id="approvals"><h2>7. Approvals and signatures <span class="annex">Annex IV 2(e), 2(g)</span></h2>
<p class="muted">Signatures record the printed name, time and meaning, are bound to the sha256 of the record signed, and were given after re-entering the password. People in the version's lineage cannot approve it. This model needs ${f.approvals.approvalsRequired} approval(s) for production.</p>
${requests.join("") || `<p class="missing">No promotion request was made for this version.</p>`}
${table("Alias moves to this version", ["Alias", "Moved by", "Time", "Promotion request", "Content"], f.approvals.aliasMoves.map((a) => [esc(a.alias), esc(a.movedBy), time(a.at), a.promotionRequestId !== null ? `#${a.promotionRequestId}` : "direct move", contentLabel(f.content, "aliasMove", a.id)]))}</section>`);

  // 8. Changes
  const c = f.changes;
  s.push(`<section id="changes"><h2>8. Changes since the previous production version <span class="annex">Annex IV 6</span></h2>${
    !c
      ? `<p>No earlier production version of ${esc(f.model.name)} exists: this is the first.</p>`
      : `<p>Previous production version: <strong>version ${c.previous.version}</strong>${contentLabel(f.content, "modelVersion", c.previous.id)}, weights ${code(c.previous.weightsSha256)}, run #${c.previous.runId}${contentLabel(f.content, "run", c.previous.runId)} (config sha256 ${code(c.previous.configSha256)}). Weights ${c.weightsChanged ? "changed" : "are identical"}; data version ${c.dataChanged.datasetVersion ? `changed (#${c.dataChanged.before.datasetVersionId ?? "–"} → #${c.dataChanged.after.datasetVersionId ?? "–"})` : "unchanged"}; split ${c.dataChanged.split ? `changed (#${c.dataChanged.before.splitId ?? "–"} → #${c.dataChanged.after.splitId ?? "–"})` : "unchanged"}.</p>
${table("Configuration changes", ["Path", "Before", "After"], c.configChanges.map((d) => [code(d.path), json(d.before ?? null), json(d.after ?? null)]))}
${table("Test metrics", ["Metric", "Before", "After"], c.testMetrics.map((m) => [esc(m.key), num(m.before), num(m.after)]))}${c.previousEvaluationIds.length ? `<p class="meta">Before: evaluation${c.previousEvaluationIds.map((id) => ` #${id}${contentLabel(f.content, "evaluation", id)}`).join(",")}</p>` : ""}
<p>Decisions new since version ${c.previous.version}: ${c.newDecisionIds.length ? c.newDecisionIds.map((id) => `#${id}`).join(", ") : "none"} (see section 3).</p>`
  }</section>`);

  s.push(`<section id="not-covered"><h2>Not covered by this report</h2><p class="muted">Annex IV points outside what Runledger records: 1(b)–(c), 1(e)–(h) (interaction with other systems, hardware, user interface, instructions for use beyond the model card), 2(f) pre-determined changes, 2(h) cybersecurity, 5 risk-management system, 7 harmonised standards, 8 EU declaration of conformity, 9 post-market monitoring. The provider supplies these separately.</p></section>`);

  // Integrity appendix
  const cp = integrity.checkpoint;
  const proofBySeq = new Map(integrity.proofs.map((p) => [p.seq, p]));
  s.push(contentAppendix(f.content));
  s.push(`<section id="integrity" class="appendix"><h2>Appendix: integrity evidence</h2>
<p>Every fact above comes from Runledger's append-only audit ledger. The events cited (ledger numbers) are included in the signed tree head below; each inclusion proof (RFC 6962/9162) recomputes that root from the event's leaf hash. To check this bundle offline: <code>npm run cli -- audit verify --bundle &lt;this folder&gt; --public-key &lt;the key you trust&gt;</code>.</p>
<h3 id="verify-yourself">Verify this bundle yourself</h3>
<p>This folder carries its own verifier, a single script that needs Node.js 20 or later and nothing else (no Runledger source, no npm packages). In the folder, run <code>node verify-bundle.mjs [--public-key FILE] [--trusted-checkpoint FILE] [--witness-key FILE] [--json]</code>. It recomputes every event's leaf and chain hash, every checkpoint's Merkle root and Ed25519 signature, and checks that this report and its lineage are the ones the ledger recorded; it says which levels it proved (chain, content, anchored) and exits 0 when verified, 1 when not. Pass the server key you trust with <code>--public-key</code> (otherwise the key in this folder is used, and the script says so), and a checkpoint you kept earlier with <code>--trusted-checkpoint</code> or a witness key with <code>--witness-key</code>: without such an anchor, a holder of the server's signing key could have rewritten history and re-signed it.</p>
<dl class="facts">
<dt>Server key fingerprint</dt><dd><code class="fingerprint">${esc(cp.keyFingerprint)}</code></dd>
<dt>Signed checkpoint</dt><dd>#${cp.id}, ${esc(cp.reason)}, ${time(cp.at)}</dd>
<dt>Tree size</dt><dd>${cp.treeSize}</dd>
<dt>Root hash</dt><dd>${code(cp.rootHash)}</dd>
<dt>Ed25519 signature</dt><dd><code class="wrap">${esc(cp.signature)}</code></dd>
<dt>This export</dt><dd>recorded as ledger event <a href="#ev-${integrity.exportEventSeq}">#${integrity.exportEventSeq}</a></dd>
</dl>
<pre class="pem">${esc(integrity.publicKeyPem)}</pre>
${table(
  "Cited ledger events with inclusion proofs",
  ["Seq", "Time", "Action", "Entity", "Actor", "Leaf hash", "Inclusion proof (leaf index, tree size, path)"],
  f.citedEvents.map((e) => {
    const p = proofBySeq.get(e.seq);
    return [`<span id="ev-${e.seq}">#${e.seq}</span>`, time(e.at), esc(e.action), `${esc(e.entityType)} ${esc(e.entityId)}`, esc(e.actorName), code(e.leafHash), p ? `<code class="proof">${p.leafIndex} / ${p.treeSize}: ${p.proof.map((h) => esc(h)).join(" ")}</code>` : "not covered by the checkpoint"];
  }),
)}</section>`);

  return `<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>Auditor's report: ${esc(title)}</title><meta name="generator" content="Runledger">
<style>
body{font:14px/1.45 system-ui,-apple-system,"Segoe UI",sans-serif;color:#111;max-width:1000px;margin:24px auto;padding:0 24px}
h1{font-size:24px;margin:0 0 4px}h2{font-size:18px;border-bottom:2px solid #222;padding-bottom:4px;margin-top:32px}h3{font-size:15px;margin:20px 0 6px}h4{font-size:14px;margin:14px 0 4px}h5{font-size:13px;margin:12px 0 4px}
.annex{font-size:12px;font-weight:normal;color:#555;float:right}.muted,.meta{color:#555}.meta{font-size:12px}.missing{color:#a40000;font-style:italic}
code{font:12px ui-monospace,Menlo,Consolas,monospace;word-break:break-all}.json{white-space:pre-wrap}
dl.facts{display:grid;grid-template-columns:220px 1fr;gap:2px 12px}dl.facts dt{font-weight:600}dl.facts dd{margin:0}
table{border-collapse:collapse;width:100%;margin:8px 0;font-size:12px}caption{text-align:left;font-weight:600;padding:4px 0}th,td{border:1px solid #bbb;padding:3px 6px;text-align:left;vertical-align:top}th{background:#f0f0f0}
.doc-body{white-space:pre-wrap;border-left:3px solid #888;padding:4px 10px;background:#fafafa}
.signatures li{margin:2px 0}.ref{font-size:11px;color:#555;margin-left:4px}.ref a{color:#1f5fbf}
.content{font-size:11px;margin-left:4px;padding:0 4px;border-radius:3px}.content.ok{color:#135e21;background:#e6f4e8}.content.bad{color:#fff;background:#a40000;font-weight:600}.content.nc{color:#555;background:#eee}
figure{margin:10px 0;break-inside:avoid}figcaption{font-size:12px;color:#555}svg{max-width:100%;height:auto}
.pem{font-size:11px;background:#f6f6f6;padding:8px}.proof,.wrap{font-size:10px}
header.cover{border-bottom:3px solid #111;padding-bottom:8px}
@page{size:A4;margin:16mm 14mm}
@media print{body{margin:0;max-width:none;padding:0;font-size:11px}a{color:inherit;text-decoration:none}h2{break-after:avoid}section{break-inside:auto}article,table,dl{break-inside:avoid}.appendix{break-before:page}}
</style></head>
<body>
<header class="cover"><h1>Auditor's report: ${esc(title)}</h1>
<p class="meta">Generated by Runledger on ${time(generatedAt)} · report format ${esc(f.format)} · weights sha256 <code>${esc(f.version.weightsSha256)}</code> · signed checkpoint #${cp.id} (tree size ${cp.treeSize}) · key ${esc(cp.keyFingerprint)} · ${contentSummary(f.content)}</p>
<nav aria-label="Contents"><ol><li><a href="#identity">Identity</a></li><li><a href="#purpose">Intended purpose and limits</a></li><li><a href="#design">Design choices</a></li><li><a href="#data">Data</a></li><li><a href="#training">Training</a></li><li><a href="#evaluation">Evaluation</a></li><li><a href="#approvals">Approvals and signatures</a></li><li><a href="#changes">Changes</a></li><li><a href="#content-check">Content verification</a></li><li><a href="#integrity">Integrity appendix</a></li></ol></nav></header>
${s.join("\n")}
</body></html>
`;
}
