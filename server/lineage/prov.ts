/**
 * W3C PROV-JSON export of a model version's lineage (https://www.w3.org/submissions/prov-json/).
 * Mapping (design.md): datasets, cleaned versions, splits, configs, decisions, checkpoints, evaluation results,
 * model versions, promotion requests and signatures are entities; cleaning, splitting, training runs, evaluations,
 * registration and alias moves are activities; people and the trainer are agents, one trainer per (Runledger version,
 * commit, TensorFlow.js version, backend) as the runs' environments recorded them (runledger:appVersion and
 * runledger:appCommit only when recorded: a run started before Runledger recorded its version has neither).
 * Relations: used, wasGeneratedBy, wasDerivedFrom, wasAssociatedWith, wasAttributedTo.
 *
 * Invariants: identifiers are qualified names under declared prefixes; every relation refers to a record of the
 * right kind in the same document (checked by validateProvJson in prov-schema.ts); the output is deterministic for
 * the same facts (relation ids are numbered in a fixed order), so its sha256 can be recorded.
 */
import type { LineageFacts, Person } from "./collect";

export const PROV_PREFIXES = {
  prov: "http://www.w3.org/ns/prov#",
  xsd: "http://www.w3.org/2001/XMLSchema#",
  runledger: "https://runledger.dev/ns/prov#",
  rl: "urn:runledger:",
} as const;

type Attrs = Record<string, unknown>;
export type ProvJson = {
  prefix: Record<string, string>;
  entity: Record<string, Attrs>;
  activity: Record<string, Attrs>;
  agent: Record<string, Attrs>;
  used: Record<string, Attrs>;
  wasGeneratedBy: Record<string, Attrs>;
  wasDerivedFrom: Record<string, Attrs>;
  wasAssociatedWith: Record<string, Attrs>;
  wasAttributedTo: Record<string, Attrs>;
};

const qn = (v: string) => ({ $: v, type: "prov:QUALIFIED_NAME" });
const dt = (v: string) => ({ $: v, type: "xsd:dateTime" });
const json = (v: unknown) => JSON.stringify(v);
/** A recorded value as part of a qualified name's local part: letters, digits and dots as they are, anything else
 * (the "-" between parts, whitespace, "_" itself) as _hex_, so distinct values never share an id. */
const idPart = (v: string) => v.replace(/[^A-Za-z0-9.]/gu, (c) => `_${c.codePointAt(0)!.toString(16)}_`);

type Run = LineageFacts["runs"][number];
/** The trainer agent of a run (one per Runledger version, commit, TensorFlow.js version and backend). */
function trainerAgent(r: Run & { backend: string }): { id: string; attrs: Attrs } {
  const id = [
    "rl:trainer",
    // "_unrecorded" and "_unknown" are no idPart of a value (an escape's "_" is followed by hex digits).
    `runledger-${r.appVersion === null ? "_unrecorded" : idPart(r.appVersion)}`,
    ...(r.appCommit === null ? [] : [r.appCommit]),
    `tfjs-${r.tfjsVersion === null ? "_unknown" : idPart(r.tfjsVersion)}`,
    idPart(r.backend),
  ].join("-");
  const build = [
    r.appVersion === null ? "Runledger trainer, version not recorded" : `Runledger ${r.appVersion} trainer`,
    ...(r.appCommit !== null ? [`commit ${r.appCommit.slice(0, 12)}`] : r.appVersion !== null ? ["commit not recorded"] : []),
  ].join(", ");
  return {
    id,
    attrs: {
      "prov:type": qn("prov:SoftwareAgent"),
      "prov:label": `${build} (TensorFlow.js ${r.tfjsVersion ?? "?"}, ${r.backend} backend)`,
      ...(r.appVersion !== null ? { "runledger:appVersion": r.appVersion } : {}),
      ...(r.appCommit !== null ? { "runledger:appCommit": r.appCommit } : {}),
      "runledger:backend": r.backend,
      "runledger:tfjs": r.tfjsVersion ?? "",
    },
  };
}

export function lineageToProvJson(f: LineageFacts): ProvJson {
  const doc: ProvJson = {
    prefix: { ...PROV_PREFIXES },
    entity: {},
    activity: {},
    agent: {},
    used: {},
    wasGeneratedBy: {},
    wasDerivedFrom: {},
    wasAssociatedWith: {},
    wasAttributedTo: {},
  };
  const counters = { u: 0, g: 0, d: 0, a: 0, t: 0 };
  const used = (activity: string, entity: string, extra: Attrs = {}) =>
    void (doc.used[`_:u${++counters.u}`] = { "prov:activity": activity, "prov:entity": entity, ...extra });
  const generated = (entity: string, activity: string, time?: string | null) =>
    void (doc.wasGeneratedBy[`_:g${++counters.g}`] = {
      "prov:entity": entity,
      "prov:activity": activity,
      ...(time ? { "prov:time": time } : {}),
    });
  const derived = (generatedEntity: string, usedEntity: string, extra: Attrs = {}) =>
    void (doc.wasDerivedFrom[`_:d${++counters.d}`] = { "prov:generatedEntity": generatedEntity, "prov:usedEntity": usedEntity, ...extra });
  const associated = (activity: string, agent: string, role?: string) =>
    void (doc.wasAssociatedWith[`_:a${++counters.a}`] = {
      "prov:activity": activity,
      "prov:agent": agent,
      ...(role ? { "prov:role": qn(`runledger:${role}`) } : {}),
    });
  const attributed = (entity: string, agent: string) =>
    void (doc.wasAttributedTo[`_:t${++counters.t}`] = { "prov:entity": entity, "prov:agent": agent });
  const person = (p: Person) => {
    const id = `rl:user-${p.id}`;
    doc.agent[id] ??= { "prov:type": qn("prov:Person"), "prov:label": p.name, "runledger:role": p.role };
    return id;
  };

  for (const d of f.datasets)
    doc.entity[`rl:dataset-${d.id}`] = {
      "prov:type": qn("runledger:RawDataset"),
      "prov:label": d.name,
      "runledger:sha256": d.sha256,
      "runledger:rows": d.rowCount,
      "runledger:source": d.source,
      "runledger:origin": d.origin,
      "runledger:licence": d.licence,
      "prov:generatedAtTime": dt(d.createdAt),
    };
  for (const v of f.datasetVersions) {
    const e = `rl:datasetVersion-${v.id}`,
      act = `rl:cleaning-${v.id}`;
    doc.entity[e] = {
      "prov:type": qn("runledger:CleanedData"),
      "prov:label": `data version ${v.id}`,
      "runledger:sha256": v.sha256,
      "runledger:recipe": json(v.recipe),
      "runledger:recipeSha256": v.recipeSha256,
      "runledger:rows": v.rowCount,
    };
    doc.activity[act] = {
      "prov:type": qn("runledger:Cleaning"),
      "prov:label": `cleaning recipe ${v.recipeSha256.slice(0, 12)}`,
      "prov:startTime": v.createdAt,
      "prov:endTime": v.createdAt,
    };
    used(act, `rl:dataset-${v.datasetId}`);
    generated(e, act, v.createdAt);
    derived(e, `rl:dataset-${v.datasetId}`);
  }
  for (const s of f.splits) {
    const e = `rl:split-${s.id}`,
      act = `rl:splitting-${s.id}`;
    doc.entity[e] = {
      "prov:type": qn("runledger:Split"),
      "prov:label": `split ${s.id}`,
      "runledger:sha256": s.sha256,
      "runledger:strategy": String(s.spec.strategy ?? ""),
      "runledger:seed": s.spec.seed ?? null,
      "runledger:counts": json(s.counts),
    };
    doc.activity[act] = {
      "prov:type": qn("runledger:Splitting"),
      "prov:label": `seeded ${s.spec.strategy ?? ""} split`,
      "prov:startTime": s.createdAt,
      "prov:endTime": s.createdAt,
    };
    used(act, `rl:datasetVersion-${s.datasetVersionId}`);
    generated(e, act, s.createdAt);
    derived(e, `rl:datasetVersion-${s.datasetVersionId}`);
  }

  for (const r of f.runs) {
    const act = `rl:run-${r.id}`,
      config = `rl:config-${r.id}`;
    doc.entity[config] = {
      "prov:type": qn("runledger:TrainingConfig"),
      "prov:label": `configuration of run ${r.id}`,
      "runledger:sha256": r.configSha256,
      "runledger:summary": r.configSummary,
      "runledger:seed": r.seed,
      "prov:generatedAtTime": dt(r.createdAt),
    };
    doc.activity[act] = {
      "prov:type": qn("runledger:TrainingRun"),
      "prov:label": `run ${r.id}: ${r.name}`,
      "runledger:origin": r.origin,
      "runledger:status": r.status,
      ...(r.startedAt ? { "prov:startTime": r.startedAt } : {}),
      ...(r.finishedAt ? { "prov:endTime": r.finishedAt } : {}),
    };
    attributed(config, person(r.author));
    used(act, config);
    if (r.splitId !== null) used(act, `rl:split-${r.splitId}`);
    associated(act, person(r.author), "author");
    if (r.backend) {
      const trainer = trainerAgent({ ...r, backend: r.backend });
      doc.agent[trainer.id] ??= trainer.attrs;
      associated(act, trainer.id, "trainer");
    }
    if (r.parentCheckpointId !== null)
      used(act, `rl:checkpoint-${r.parentCheckpointId}`, { "prov:role": qn("runledger:parentCheckpoint") });
    if (r.parentRunId !== null && f.runs.some((p) => p.id === r.parentRunId))
      derived(config, `rl:config-${r.parentRunId}`, { "prov:type": qn("prov:Revision") });
  }
  for (const d of f.decisions) {
    const e = `rl:decision-${d.id}`;
    doc.entity[e] = {
      "prov:type": qn("runledger:Decision"),
      "prov:label": d.kind === "change" ? `changed ${d.path}` : d.kind === "initial" ? "initial configuration" : d.kind,
      "runledger:kind": d.kind,
      "runledger:path": d.path,
      ...(d.kind === "change" ? { "runledger:oldValue": json(d.oldValue), "runledger:newValue": json(d.newValue) } : {}),
      "runledger:rationale": d.rationale,
      "runledger:run": qn(`rl:run-${d.runId}`),
      "prov:generatedAtTime": dt(d.createdAt),
    };
    attributed(e, person(d.author));
    if (d.kind === "initial" || d.kind === "change") derived(`rl:config-${d.runId}`, e);
    if (d.correctsDecisionId !== null && f.decisions.some((x) => x.id === d.correctsDecisionId))
      derived(e, `rl:decision-${d.correctsDecisionId}`, { "prov:type": qn("prov:Revision") });
  }
  for (const c of f.checkpoints) {
    const e = `rl:checkpoint-${c.id}`;
    doc.entity[e] = {
      "prov:type": qn("runledger:Checkpoint"),
      "prov:label": `weights of run ${c.runId} after epoch ${c.epoch}`,
      "runledger:sha256": c.sha256,
      "runledger:epoch": c.epoch,
      "runledger:bytes": c.bytes,
      "runledger:isBest": c.isBest,
      "prov:generatedAtTime": dt(c.createdAt),
    };
    if (f.runs.some((r) => r.id === c.runId)) generated(e, `rl:run-${c.runId}`, c.createdAt);
  }
  for (const ev of f.evaluations) {
    const e = `rl:evaluationResult-${ev.id}`,
      act = `rl:evaluation-${ev.id}`;
    doc.entity[e] = {
      "prov:type": qn("runledger:EvaluationResult"),
      "prov:label": `evaluation on the ${ev.partition} partition`,
      "runledger:partition": ev.partition,
      "runledger:dataSha256": ev.dataSha256,
      "runledger:metrics": json(ev.metrics),
    };
    doc.activity[act] = {
      "prov:type": qn("runledger:Evaluation"),
      "prov:label": `evaluate checkpoint ${ev.checkpointId} on ${ev.partition}`,
      "prov:startTime": ev.createdAt,
      "prov:endTime": ev.createdAt,
    };
    used(act, `rl:checkpoint-${ev.checkpointId}`);
    if (ev.splitId !== null && f.splits.some((s) => s.id === ev.splitId))
      used(act, `rl:split-${ev.splitId}`, { "prov:role": qn(`runledger:${ev.partition}Partition`) });
    generated(e, act, ev.createdAt);
    derived(e, `rl:checkpoint-${ev.checkpointId}`);
  }

  const mv = `rl:modelVersion-${f.version.id}`,
    reg = `rl:registration-${f.version.id}`;
  doc.entity[mv] = {
    "prov:type": qn("runledger:ModelVersion"),
    "prov:label": `${f.model.name} version ${f.version.version}`,
    "runledger:model": f.model.name,
    "runledger:version": f.version.version,
    "runledger:weightsSha256": f.version.weightsSha256,
    "prov:generatedAtTime": dt(f.version.createdAt),
  };
  doc.activity[reg] = {
    "prov:type": qn("runledger:Registration"),
    "prov:label": `register ${f.model.name} version ${f.version.version}`,
    "prov:startTime": f.version.createdAt,
    "prov:endTime": f.version.createdAt,
  };
  used(reg, `rl:checkpoint-${f.version.checkpointId}`);
  generated(mv, reg, f.version.createdAt);
  derived(mv, `rl:checkpoint-${f.version.checkpointId}`);
  associated(reg, person(f.version.createdBy), "registrant");
  attributed(mv, person(f.version.createdBy));

  for (const p of f.promotionRequests) {
    const e = `rl:promotionRequest-${p.id}`;
    doc.entity[e] = {
      "prov:type": qn("runledger:PromotionRequest"),
      "prov:label": `request ${p.id}: move ${p.alias}`,
      "runledger:alias": p.alias,
      "runledger:status": p.status,
      "runledger:rationale": p.rationale,
      "runledger:recordSha256": p.recordSha256,
      "prov:generatedAtTime": dt(p.createdAt),
    };
    attributed(e, person(p.requestedBy));
    derived(e, mv);
    if (f.evaluations.some((ev) => ev.id === p.evaluationId)) derived(e, `rl:evaluationResult-${p.evaluationId}`);
  }
  for (const s of f.signatures) {
    const e = `rl:signature-${s.id}`;
    doc.entity[e] = {
      "prov:type": qn("runledger:Signature"),
      "prov:label": `${s.meaning} by ${s.printedName}`,
      "runledger:meaning": s.meaning,
      "runledger:printedName": s.printedName,
      "runledger:recordSha256": s.recordSha256,
      "runledger:comment": s.comment,
      "prov:generatedAtTime": dt(s.createdAt),
    };
    attributed(e, person(s.signer));
    derived(e, `rl:promotionRequest-${s.requestId}`);
  }
  for (const a of f.aliasMoves) {
    const act = `rl:aliasMove-${a.id}`;
    doc.activity[act] = {
      "prov:type": qn("runledger:AliasMove"),
      "prov:label": `${a.alias} → ${f.model.name} version ${f.version.version}`,
      "runledger:alias": a.alias,
      "prov:startTime": a.at,
      "prov:endTime": a.at,
    };
    used(act, mv);
    associated(act, person(a.movedBy), "mover");
    if (a.promotionRequestId !== null && doc.entity[`rl:promotionRequest-${a.promotionRequestId}`]) {
      used(act, `rl:promotionRequest-${a.promotionRequestId}`);
      for (const s of f.signatures.filter((x) => x.requestId === a.promotionRequestId && x.meaning === "approval"))
        used(act, `rl:signature-${s.id}`, { "prov:role": qn("runledger:approval") });
    }
  }
  return doc;
}
