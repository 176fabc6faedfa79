/**
 * Report section 3 (Annex IV 2(b)): every decision on the chain of runs (config changes, notes, corrections, and the
 * in-flight decisions taken while a run trained), oldest first; then each in-flight decision in detail: when it took
 * effect (epoch, step), what changed, why, the metrics the pilot saw and the effect over the following epochs.
 *
 * Invariant: report.json of bundles exported before in-flight decisions were reported has no `interventions`; for
 * those the section renders exactly as it did then (export --verify re-renders old bundles and compares).
 */
import type { ReportFacts } from "../collect-report";
import { Code, EventLink, Json, SectionHeading, Table, num, time, type Refs } from "./primitives";

type Decision = ReportFacts["decisions"][number];
type Intervention = NonNullable<ReportFacts["interventions"]>[number];

function What({ d, i }: { d: Decision; i: Intervention | undefined }) {
  if (d.kind === "change")
    return (
      <>
        <Code value={d.path} />: <Json value={d.oldValue} /> → <Json value={d.newValue} />
      </>
    );
  if (d.kind === "correction") return `corrects #${d.correctsDecisionId ?? "?"}`;
  // A config's schedule entry (or a re-run's replayed intervention), recorded with the run: what it changes when reached.
  if (d.kind === "planned")
    return (
      <>
        planned: <Code value={d.path} />
        {d.newValue !== null ? (
          <>
            {" "}
            → <Json value={d.newValue} />
          </>
        ) : null}
      </>
    );
  if (i) return <Changes i={i} />;
  return d.kind === "initial" ? "initial configuration" : "note";
}

/** The action of an intervention and each changed path, old → new ("pause"; "training.learningRate: 0.03 → 0.01"). */
function Changes({ i }: { i: Intervention }) {
  return (
    <>
      {i.kind === "set" ? null : i.kind}
      {i.changes.map((c, n) => (
        <span key={c.path}>
          {n > 0 || i.kind !== "set" ? "; " : null}
          <Code value={c.path} />: <Json value={c.oldValue} /> → <Json value={c.newValue} />
        </span>
      ))}
    </>
  );
}

function Snapshot({ i }: { i: Intervention }) {
  const s = i.metricsSnapshot;
  if (!s) return "–";
  const last = Object.entries(s.last).filter(([k]) => !k.startsWith("batch_"));
  return (
    <>
      {last.map(([k, v]) => `${k} ${num(v)}`).join(", ") || "no metrics yet"}
      {s.watched ? (
        <>
          <br />
          {s.watched.metric} trend: {s.watched.trend.map((p) => `${num(p.value)} (epoch ${p.epoch})`).join(" → ")}
        </>
      ) : null}
    </>
  );
}

function Effect({ i }: { i: Intervention }) {
  const e = i.effect;
  if (!e || !e.before) return "not measurable (no value of the watched metric at that epoch)";
  if (e.after.length === 0) return `${e.metric} ${num(e.before.value)} at epoch ${e.before.epoch}; no later epoch recorded`;
  const last = e.after.at(-1)!;
  return `${e.metric} ${num(e.before.value)} at epoch ${e.before.epoch} → ${num(last.value)} at epoch ${last.epoch} (${e.delta! >= 0 ? "+" : ""}${num(e.delta)})`;
}

export function DesignSection({ f, refs }: { f: ReportFacts; refs: Refs }) {
  const byDecision = new Map((f.interventions ?? []).map((i) => [i.decisionId, i]));
  const rows = [...f.decisions]
    .sort((a, b) => a.id - b.id)
    .map((d) => [
      <>
        {d.id} {refs("decision", d.id)}
      </>,
      `#${d.runId} ${d.runName}`,
      d.kind,
      <What d={d} i={byDecision.get(d.id)} />,
      d.rationale,
      d.author.name,
      time(d.createdAt),
    ]);
  return (
    <section id="design">
      <SectionHeading annex="Annex IV 2(b)">3. Design choices and their rationale</SectionHeading>
      <p className="muted">
        Every configuration change, note and correction on the chain of runs that produced this version, oldest first. A change creates a
        new run (fork); the old run is never edited.
      </p>
      <Table caption="Decision history" head={["#", "Run", "Kind", "What", "Rationale", "Author", "Time"]} rows={rows} />
      {f.interventions ? <InFlight list={f.interventions} /> : null}
    </section>
  );
}

function InFlight({ list }: { list: Intervention[] }) {
  return (
    <>
      <h3>In-flight decisions</h3>
      <p className="muted">
        Interventions a person made while a run trained. Each took effect at an epoch boundary, bound to the checkpoint written there; the
        metrics are those recorded up to that boundary, the effect compares the watched metric there with the following epochs.
      </p>
      <Table
        caption="In-flight decisions"
        head={["Decision", "Run", "Took effect", "Action and changes", "Rationale", "Asked by", "Metrics at decision", "Effect"]}
        rows={list.map((i) => [
          <>
            #{i.decisionId}
            {i.appliedEventSeq !== null ? (
              <>
                {" "}
                <span className="ref">
                  ledger <EventLink seq={i.appliedEventSeq} />
                </span>
              </>
            ) : null}
          </>,
          `#${i.runId} ${i.runName}`,
          `epoch ${num(i.appliedAtEpoch)}, step ${num(i.appliedAtStep)}, ${time(i.appliedAt)}, checkpoint #${num(i.checkpointId)}`,
          <Changes i={i} />,
          i.rationale,
          `${i.requestedBy} (asked ${time(i.requestedAt)})`,
          <Snapshot i={i} />,
          <Effect i={i} />,
        ])}
      />
    </>
  );
}
