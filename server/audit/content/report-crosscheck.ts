/**
 * Cross-check of an auditor's report against its facts.json: every value the report prints for a record must be
 * the value facts.json holds for it (and facts.json is what the content check compares with the ledger). Without
 * this, a report could print numbers other than the records the ledger vouches for.
 *
 * Invariant: comparisons are on canonical JSON; a record the report prints that facts.json lacks is a problem.
 */
import { canonicalJson } from "@/contracts/canonical";
import type { ReportFacts } from "@/server/audit/report/collect-report";
import type { FactsFile, RecordType } from "./facts-file";

const CURVE_KEYS = ["loss", "val_loss", "accuracy", "val_accuracy", "mae", "val_mae", "lr"];
const parse = (s: string | null): unknown => (s === null ? null : (JSON.parse(s) as unknown));

export function crossCheckReportFacts(f: ReportFacts, facts: FactsFile): { problems: string[]; compared: number } {
  const problems: string[] = [];
  let compared = 0;
  const rows = new Map<string, Record<string, unknown>>();
  for (const [type, list] of Object.entries(facts.records) as [RecordType, { row: Record<string, unknown> & { id: number } }[]][])
    for (const { row } of list ?? []) rows.set(`${type}:${row.id}`, row);
  const record = (type: RecordType, id: number): Record<string, unknown> | null => {
    const r = rows.get(`${type}:${id}`) ?? null;
    if (!r) problems.push(`the report prints ${type} ${id}, which is not in facts.json`);
    return r;
  };
  const same = (what: string, printed: unknown, held: unknown) => {
    compared++;
    const a = canonicalJson(printed ?? null),
      b = canonicalJson(held ?? null);
    if (a !== b)
      problems.push(
        `the report prints ${what} as ${a.length > 120 ? `${a.slice(0, 100)}…` : a}, but facts.json (checked against the ledger) holds ${b.length > 120 ? `${b.slice(0, 100)}…` : b}`,
      );
  };
  const userName = (id: unknown) => (rows.get(`user:${String(id)}`)?.name as string | undefined) ?? `user #${String(id)}`;

  const v = record("modelVersion", f.version.id);
  if (v)
    same(
      `model version ${f.version.id}`,
      {
        weightsSha256: f.version.weightsSha256,
        checkpointId: f.version.checkpointId,
        runId: f.version.runId,
        version: f.version.version,
        createdAt: f.version.createdAt,
        by: f.version.createdBy.name,
      },
      {
        weightsSha256: v.weightsSha256,
        checkpointId: v.checkpointId,
        runId: v.runId,
        version: v.version,
        createdAt: v.createdAt,
        by: userName(v.createdBy),
      },
    );
  const ck = f.version.checkpoint;
  const c = record("checkpoint", ck.id);
  if (c)
    same(
      `checkpoint ${ck.id}`,
      { sha256: ck.sha256, epoch: ck.epoch, step: ck.step, bytes: ck.bytes, isBest: ck.isBest, metrics: ck.metrics, runId: ck.runId },
      {
        sha256: c.sha256,
        epoch: c.epoch,
        step: c.step,
        bytes: c.bytes,
        isBest: c.isBest,
        metrics: parse(c.metricsJson as string),
        runId: c.runId,
      },
    );

  for (const r of f.training) {
    const row = record("run", r.id);
    if (!row) continue;
    same(
      `run ${r.id}`,
      {
        name: r.name,
        configSha256: r.configSha256,
        config: r.config,
        seed: r.seed,
        origin: r.origin,
        parentRunId: r.parentRunId,
        parentCheckpointId: r.parentCheckpointId,
        backend: r.backend,
        backendReason: r.backendReason,
        environment: r.environment,
        paramCount: r.paramCount,
        finalWeightsSha256: r.finalWeightsSha256,
        startedAt: r.startedAt,
        finishedAt: r.finishedAt,
        author: r.author.name,
      },
      {
        name: row.name,
        configSha256: row.configSha256,
        config: parse(row.configJson as string),
        seed: row.seed,
        origin: row.origin,
        parentRunId: row.parentRunId,
        parentCheckpointId: row.parentCheckpointId,
        backend: row.backend,
        backendReason: row.backendReason,
        environment: parse(row.environmentJson as string | null),
        paramCount: row.paramCount,
        finalWeightsSha256: row.finalWeightsSha256,
        startedAt: row.startedAt,
        finishedAt: row.finishedAt,
        author: userName(row.createdBy),
      },
    );
    const points = facts.metrics[String(r.id)];
    if (!points) continue; // not in the bundle: said in notCovered
    const curves: Record<string, { x: number; y: number }[]> = {};
    for (const [key, , value, epoch] of points) if (CURVE_KEYS.includes(key)) (curves[key] ??= []).push({ x: epoch, y: value });
    same(`the training curves of run ${r.id}`, r.curves, curves);
  }
  for (const d of f.decisions) {
    const row = record("decision", d.id);
    if (row)
      same(
        `decision ${d.id}`,
        {
          runId: d.runId,
          kind: d.kind,
          path: d.path,
          oldValue: d.oldValue,
          newValue: d.newValue,
          rationale: d.rationale,
          correctsDecisionId: d.correctsDecisionId,
          createdAt: d.createdAt,
          author: d.author.name,
        },
        {
          runId: row.runId,
          kind: row.kind,
          path: row.path,
          oldValue: row.kind === "initial" ? null : parse(row.oldValueJson as string | null),
          newValue: row.kind === "initial" ? null : parse(row.newValueJson as string | null),
          rationale: row.rationale,
          correctsDecisionId: row.correctsDecisionId,
          createdAt: row.createdAt,
          author: userName(row.authorId),
        },
      );
  }
  for (const e of f.evaluations) {
    const row = record("evaluation", e.id);
    if (row)
      same(
        `evaluation ${e.id}`,
        {
          runId: e.runId,
          partition: e.partition,
          splitId: e.splitId,
          dataSha256: e.dataSha256,
          source: e.source,
          metrics: e.metrics,
          confusion: e.confusion,
          createdAt: e.createdAt,
          by: e.createdBy,
        },
        {
          runId: row.runId,
          partition: row.partition,
          splitId: row.splitId,
          dataSha256: row.dataSha256,
          source: row.source,
          metrics: parse(row.metricsJson as string),
          confusion: parse(row.confusionJson as string | null),
          createdAt: row.createdAt,
          by: userName(row.createdBy),
        },
      );
  }
  for (const d of f.datasheets) {
    const row = record("dataset", d.id);
    if (row)
      same(
        `dataset ${d.id}`,
        { name: d.name, source: d.source, origin: d.origin, licence: d.licence, sha256: d.sha256, rowCount: d.rowCount },
        { name: row.name, source: row.source, origin: row.origin, licence: row.licence, sha256: row.sha256, rowCount: row.rowCount },
      );
    for (const ver of d.versions) {
      const vr = record("datasetVersion", ver.id);
      if (vr)
        same(
          `dataset version ${ver.id}`,
          { recipe: ver.recipe, recipeSha256: ver.recipeSha256, report: ver.report, sha256: ver.sha256, rowCount: ver.rowCount },
          {
            recipe: parse(vr.recipeJson as string),
            recipeSha256: vr.recipeSha256,
            report: parse(vr.reportJson as string),
            sha256: vr.sha256,
            rowCount: vr.rowCount,
          },
        );
      for (const sp of ver.splits) {
        const sr = record("split", sp.id);
        if (sr)
          same(
            `split ${sp.id}`,
            { spec: sp.spec, manifest: sp.manifest, sha256: sp.sha256 },
            { spec: parse(sr.specJson as string), manifest: parse(sr.manifestJson as string), sha256: sr.sha256 },
          );
      }
    }
  }
  const sections = [...f.modelCard, ...f.datasheets.flatMap((d) => d.documents)];
  for (const s of sections) {
    if (!s.latest) continue;
    const row = record("document", s.latest.id);
    if (row)
      same(
        `document ${s.latest.id}`,
        {
          body: s.latest.body,
          version: s.latest.version,
          sha256: s.latest.sha256,
          section: s.latest.section,
          createdAt: s.latest.createdAt,
          author: s.latest.author,
        },
        {
          body: row.body,
          version: row.version,
          sha256: row.sha256,
          section: row.section,
          createdAt: row.createdAt,
          author: userName(row.authorId),
        },
      );
    for (const g of s.latest.signatures) signature(g.id, g);
  }
  for (const p of f.approvals.requests) {
    const row = record("promotionRequest", p.id);
    if (row)
      same(
        `promotion request ${p.id}`,
        {
          alias: p.alias,
          status: p.status,
          rationale: p.rationale,
          recordSha256: p.recordSha256,
          evaluationId: p.evaluationId,
          createdAt: p.createdAt,
          decidedAt: p.decidedAt,
          by: p.requestedBy.name,
          // Reports written before the rule was recorded per request do not print it.
          ...(p.approvalsRequiredAtRequest !== undefined ? { approvalsRequiredAtRequest: p.approvalsRequiredAtRequest } : {}),
        },
        {
          alias: row.alias,
          status: row.status,
          rationale: row.rationale,
          recordSha256: row.recordSha256,
          evaluationId: row.evaluationId,
          createdAt: row.createdAt,
          decidedAt: row.decidedAt,
          by: userName(row.requestedBy),
          ...(p.approvalsRequiredAtRequest !== undefined ? { approvalsRequiredAtRequest: row.approvalsRequired } : {}),
        },
      );
    for (const g of p.signatures) signature(g.id, g);
  }
  for (const a of f.approvals.aliasMoves) {
    const row = record("aliasMove", a.id);
    if (row)
      same(
        `alias move ${a.id}`,
        { alias: a.alias, promotionRequestId: a.promotionRequestId, at: a.at, modelVersionId: f.version.id, by: a.movedBy },
        {
          alias: row.alias,
          promotionRequestId: row.promotionRequestId,
          at: row.createdAt,
          modelVersionId: row.modelVersionId,
          by: userName(row.movedBy),
        },
      );
  }
  if (f.changes) {
    const pv = record("modelVersion", f.changes.previous.id);
    const pr = record("run", f.changes.previous.runId);
    if (pv)
      same(
        `previous production version ${f.changes.previous.id}`,
        { version: f.changes.previous.version, weightsSha256: f.changes.previous.weightsSha256, runId: f.changes.previous.runId },
        { version: pv.version, weightsSha256: pv.weightsSha256, runId: pv.runId },
      );
    if (pr) same(`previous run ${f.changes.previous.runId}`, f.changes.previous.configSha256, pr.configSha256);
    // "Before" test metrics: the previous version's latest test evaluation, as facts.json holds it.
    const prevTests = f.changes.previousEvaluationIds
      .map((id) => record("evaluation", id))
      .filter((e): e is Record<string, unknown> => e !== null && e.partition === "test");
    const latest = prevTests.sort((a, b) => Number(a.id) - Number(b.id)).at(-1);
    const before = latest ? (parse(latest.metricsJson as string) as Record<string, unknown>) : {};
    same(
      "the test metrics before (previous version)",
      f.changes.testMetrics.map((m) => [m.key, m.before]),
      f.changes.testMetrics.map((m) => [m.key, typeof before[m.key] === "number" ? before[m.key] : null]),
    );
  }
  return { problems, compared };

  function signature(id: number, g: { printedName: string; meaning: string; recordSha256: string; comment: string; createdAt: string }) {
    const row = record("signature", id);
    if (row)
      same(
        `signature ${id}`,
        { printedName: g.printedName, meaning: g.meaning, recordSha256: g.recordSha256, comment: g.comment, createdAt: g.createdAt },
        {
          printedName: row.printedName,
          meaning: row.meaning,
          recordSha256: row.recordSha256,
          comment: row.comment,
          createdAt: row.createdAt,
        },
      );
  }
}
