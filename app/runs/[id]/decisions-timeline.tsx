"use client";
/**
 * The decisions timeline beside the curves: the decisions of the run's ancestors, its own and its children's, oldest
 * first, each fork with its measured effect against its parent at the same epoch (validation loss and accuracy, test
 * accuracy), and this run's validation loss overlaid on its parent's. Notes and corrections are added here; a
 * correction is a new entry linked to the one it corrects (decisions are never edited). In-flight decisions (live
 * interventions that took effect while a run trained) show where they took effect, the metrics the pilot saw then
 * (last values and the watched metric's trend) and their effect over the following epochs. Planned decisions (a
 * config's schedule, or a re-run replaying another run's interventions) show the epoch they are planned at and their
 * changes; a rollback branch names the run and epoch it continues from.
 */
import Link from "next/link";
import { useEffect, useMemo, useState } from "react";
import { useMutation, useQuery, useQueryClient } from "@tanstack/react-query";
import { useTRPC } from "@/app/_trpc/client";
import type { Me } from "@/app/_components/shell";
import { ErrorState, FormError, Loading } from "@/app/_components/states";
import { LineChart, type Series } from "@/app/_components/line-chart";
import { formatMetric, formatMetricDelta, formatTime } from "@/app/_components/format";
import { originText } from "@/contracts/origin-words";
import type { inferRouterOutputs } from "@trpc/server";
import type { AppRouter } from "@/server/trpc/root";
import { describeChanges, describeEffect, describeSnapshotLast, describeTrend, type Intervention } from "./interventions";
import { MarkdownText } from "@/app/_components/markdown-text";

type Entry = inferRouterOutputs<AppRouter>["decisions"]["timeline"]["entries"][number];
const show = (v: unknown) => JSON.stringify(v);

export function DecisionsTimeline({ runId, me, active, status }: { runId: number; me: Me; active: boolean; status?: string }) {
  const trpc = useTRPC();
  const timeline = useQuery({ ...trpc.decisions.timeline.queryOptions({ runId }), refetchInterval: active ? 3000 : false });
  const { refetch } = timeline;
  // When training ends, fetch once more: the effect against the parent needs the final epochs' metrics. Also on any
  // status change (a resumed run can go from paused to completed between two polls, never seen active).
  useEffect(() => {
    if (!active) void refetch();
  }, [active, status, refetch]);
  if (timeline.isPending) return <Loading what="Loading decisions" />;
  if (timeline.error) return <ErrorState error={timeline.error} title="Could not load the decisions" />;
  const t = timeline.data;
  return (
    <section className="panel" aria-label="Decisions timeline" style={{ margin: 0 }}>
      <h2 style={{ marginTop: 0 }}>Decisions</h2>
      <ol style={{ listStyle: "none", padding: 0, margin: 0 }}>
        {t.entries.map((e) => (
          <EntryItem key={e.runId} e={e} />
        ))}
      </ol>
      {t.curves.parent ? <ParentOverlay self={t.curves.self} parent={t.curves.parent} parentRunId={t.parentRunId!} /> : null}
      {me.role === "engineer" || me.role === "reviewer" ? (
        <AddNoteForm runId={runId} entry={t.entries.find((e) => e.relation === "this run")!} />
      ) : null}
    </section>
  );
}

function EntryItem({ e }: { e: Entry }) {
  const trpc = useTRPC();
  const hasInFlight = e.decisions.some((d) => d.kind === "intervention");
  // Same query key as the run page's list for this run: no second request; for another run, fetched only when needed.
  const inFlight = useQuery({ ...trpc.runs.pilot.list.queryOptions({ runId: e.runId }), enabled: hasInFlight });
  const byDecision = new Map((inFlight.data ?? []).flatMap((i) => (i.decision ? [[i.decision.id, i] as const] : [])));
  const label = e.relation === "this run" ? "This run" : e.relation === "ancestor" ? "Ancestor" : "Child";
  return (
    <li
      aria-label={`Decisions of run #${e.runId}`}
      data-relation={e.relation}
      style={{
        borderLeft: `3px solid ${e.relation === "this run" ? "var(--accent)" : "var(--line)"}`,
        padding: "4px 0 8px 10px",
        marginBottom: 8,
      }}
    >
      <div className="row" style={{ gap: 6 }}>
        <span className="badge">{label}</span>
        {e.relation === "this run" ? (
          <strong>run #{e.runId}</strong>
        ) : (
          <Link href={`/runs/${e.runId}`}>
            run #{e.runId}: {e.runName}
          </Link>
        )}
        <span className="muted">
          {originText(e.origin, e.parentRunId, e.branchedFromEpoch ?? null)} · {e.author}
        </span>
      </div>
      <ul style={{ paddingLeft: 16, margin: "4px 0" }}>
        {e.decisions.map((d) => (
          <li key={d.id} id={`decision-${d.id}`} style={{ marginBottom: 4 }}>
            <strong>
              {d.kind === "initial"
                ? "Initial configuration"
                : d.kind === "change"
                  ? d.path
                  : d.kind === "correction"
                    ? `Correction of #${d.correctsDecisionId}`
                    : d.kind === "intervention"
                      ? "In flight"
                      : d.kind === "planned"
                        ? "Planned"
                        : d.kind === "param"
                          ? `Param ${d.path}`
                          : "Note"}
            </strong>
            {d.kind === "planned" ? (
              <span className="mono" aria-label={`Planned decision #${d.id}`}>
                {" "}
                at epoch {d.atEpoch ?? "?"}: {describePlanned(d)}
              </span>
            ) : null}
            {d.kind === "param" ? <span className="mono"> = {show(d.newValue)}</span> : null}
            {d.kind === "change" ? (
              <span className="mono">
                {" "}
                {show(d.oldValue)} → {show(d.newValue)}
              </span>
            ) : null}
            {d.kind === "intervention" ? <InFlightDetails d={d} i={byDecision.get(d.id)} loading={inFlight.isPending} /> : null}
            {d.kind === "note" ? (
              // Notes are free text written as Markdown (headings, lists, links, code; HTML shows as text).
              <MarkdownText text={d.rationale} label={`Note #${d.id}`} />
            ) : (
              <div>“{d.rationale}”</div>
            )}
            <div className="muted">
              #{d.id} · {d.author} · {formatTime(d.createdAt)}
              {d.correctedBy.length ? ` · corrected by ${d.correctedBy.map((c) => `#${c}`).join(", ")}` : ""}
            </div>
          </li>
        ))}
      </ul>
      {e.effect ? <Effect e={e} /> : null}
    </li>
  );
}

/** A planned decision's changes, "training.learningRate 0.05 → 0.01" (old and new values are maps by path), "stop" first if it stops. */
function describePlanned(d: Entry["decisions"][number]): string {
  const oldValues = (d.oldValue ?? {}) as Record<string, unknown>;
  const newValues = (d.newValue ?? {}) as Record<string, unknown>;
  const val = (v: unknown) => (typeof v === "number" ? String(v) : JSON.stringify(v));
  const parts = Object.keys(newValues).map((path) => `${path} ${val(oldValues[path])} → ${val(newValues[path])}`);
  if (d.path.split(", ").includes("stop")) parts.unshift("stop");
  return parts.join("; ");
}

/** An in-flight decision: what changed, where it took effect, the metrics snapshot then, and the effect afterwards. */
function InFlightDetails({ d, i, loading }: { d: Entry["decisions"][number]; i: Intervention | undefined; loading: boolean }) {
  if (!i)
    return (
      <span className="mono">
        {" "}
        {d.path}
        {loading ? <span className="muted"> (loading its snapshot…)</span> : null}
      </span>
    );
  const trend = describeTrend(i);
  const effect = describeEffect(i);
  return (
    <>
      <span className="mono"> {describeChanges(i)}</span>
      <div
        aria-label={`Metrics at decision #${d.id}`}
        style={{ background: "var(--subtle-bg)", borderRadius: 6, padding: "4px 8px", fontSize: 13, margin: "2px 0" }}
      >
        <div>
          took effect at epoch {i.appliedAtEpoch} (step {i.appliedAtStep})
          {i.checkpointId !== null ? ` · checkpoint #${i.checkpointId}` : ""}
        </div>
        <div>at decision: {describeSnapshotLast(i)}</div>
        {trend ? <div>trend before: {trend}</div> : null}
        {effect ? <div>effect: {effect}</div> : null}
      </div>
    </>
  );
}

function Effect({ e }: { e: Entry }) {
  const eff = e.effect!;
  if (eff.metrics.length === 0 && !eff.testAccuracy)
    return (
      <p className="muted" style={{ margin: 0 }}>
        Effect: not measurable yet (no common epoch with run #{e.parentRunId}).
      </p>
    );
  return (
    <div
      aria-label={`Effect of run #${e.runId} against run #${e.parentRunId}`}
      style={{ background: "var(--subtle-bg)", borderRadius: 6, padding: "4px 8px", fontSize: 13 }}
    >
      <strong>Effect vs run #{e.parentRunId}</strong>
      {eff.metrics.map((m) => (
        <div key={m.key}>
          {m.key} at epoch {m.epoch}: {formatMetric(m.parentValue, m.key)} → {formatMetric(m.childValue, m.key)} (
          {formatMetricDelta(m.delta, m.key)})
        </div>
      ))}
      {eff.testAccuracy ? (
        <div>
          test accuracy: {formatMetric(eff.testAccuracy.parentValue, "accuracy")} → {formatMetric(eff.testAccuracy.childValue, "accuracy")}{" "}
          ({formatMetricDelta(eff.testAccuracy.delta, "accuracy")})
        </div>
      ) : null}
    </div>
  );
}

function ParentOverlay({
  self,
  parent,
  parentRunId,
}: {
  self: Record<string, { epoch: number; value: number }[]>;
  parent: Record<string, { epoch: number; value: number }[]>;
  parentRunId: number;
}) {
  const series = useMemo<Series[]>(
    () => [
      {
        label: `parent #${parentRunId} validation loss`,
        color: "#8a94a6",
        points: (parent.val_loss ?? []).map((p) => ({ x: p.epoch, y: p.value })),
        dashed: true,
      },
      { label: "this run validation loss", color: "#d9480f", points: (self.val_loss ?? []).map((p) => ({ x: p.epoch, y: p.value })) },
    ],
    [self, parent, parentRunId],
  );
  return (
    <div style={{ marginTop: 8 }}>
      <LineChart
        title="Validation loss: this run vs parent"
        ariaLabel="Validation loss against parent"
        series={series}
        xLabel="epoch"
        yLabel="val loss"
      />
    </div>
  );
}

function AddNoteForm({ runId, entry }: { runId: number; entry: Entry }) {
  const trpc = useTRPC();
  const queryClient = useQueryClient();
  const [text, setText] = useState("");
  const [corrects, setCorrects] = useState("");
  const add = useMutation(
    trpc.decisions.addNote.mutationOptions({
      onSuccess: () => {
        setText("");
        setCorrects("");
        void queryClient.invalidateQueries({ queryKey: trpc.decisions.timeline.queryKey({ runId }) });
        void queryClient.invalidateQueries({ queryKey: trpc.runs.get.queryKey({ id: runId }) });
      },
    }),
  );
  return (
    <form
      aria-label="Add a decision note"
      style={{ marginTop: 10 }}
      onSubmit={(e) => {
        e.preventDefault();
        add.mutate({ runId, rationale: text, ...(corrects ? { correctsDecisionId: Number(corrects) } : {}) });
      }}
    >
      <label className="field">
        <span>Add a note in Markdown (decisions are never edited: a correction is a new note linked to the old one)</span>
        <textarea aria-label="Decision note" value={text} onChange={(e) => setText(e.target.value)} />
      </label>
      <div className="row">
        <select aria-label="Corrects decision" value={corrects} onChange={(e) => setCorrects(e.target.value)}>
          <option value="">a new note</option>
          {entry.decisions.map((d) => (
            <option key={d.id} value={d.id}>
              correction of #{d.id} ({d.kind === "change" ? d.path : d.kind})
            </option>
          ))}
        </select>
        <button type="submit" disabled={add.isPending || text.trim() === ""}>
          Add note
        </button>
      </div>
      <FormError error={add.error} />
    </form>
  );
}
