"use client";
/**
 * A sweep (issue 17): progress against its budget, its trials (generated params, status, objective, early stops),
 * a parallel-coordinates view of the trials, the best trials, the engineer's decisions (pause, resume, stop, extend,
 * each with a rationale) and choosing the winner with a rationale. Polls while trials are active. Laid out as the run
 * page is: a breadcrumb, panels, tables that scroll sideways in their box, stacked form fields, the shared states.
 */
import Link from "next/link";
import { use, useMemo, useState } from "react";
import { useMutation, useQuery, useQueryClient } from "@tanstack/react-query";
import { useTRPC } from "@/app/_trpc/client";
import { Shell, type Me } from "@/app/_components/shell";
import { ErrorState, FormError, Loading } from "@/app/_components/states";
import { StatusBadge } from "@/app/_components/status-badge";
import { formatMetric, formatTime } from "@/app/_components/format";
import { ParallelCoordinates } from "@/app/_components/compare/parallel-coordinates";
import { paramAxis, type Axis } from "@/app/_components/compare/compare-axes";

function shown(v: unknown): string {
  return typeof v === "number" ? (Number.isInteger(v) ? String(v) : v.toPrecision(4)) : JSON.stringify(v);
}

function Sweep({ sweepId, me }: { sweepId: number; me: Me }) {
  const trpc = useTRPC();
  const queryClient = useQueryClient();
  const sweep = useQuery({
    ...trpc.sweeps.get.queryOptions({ id: sweepId }),
    refetchInterval: (q) => (q.state.data && (q.state.data.status === "running" || q.state.data.counts.active > 0) ? 1500 : false),
  });
  const refresh = () => queryClient.invalidateQueries({ queryKey: trpc.sweeps.get.queryKey({ id: sweepId }) });
  const [rationale, setRationale] = useState("");
  const [addTrials, setAddTrials] = useState("2");
  const [winner, setWinner] = useState<number | null>(null);
  const [winnerWhy, setWinnerWhy] = useState("");
  const opts = { onSuccess: () => (setRationale(""), refresh()) };
  const pause = useMutation(trpc.sweeps.pause.mutationOptions(opts));
  const resume = useMutation(trpc.sweeps.resume.mutationOptions(opts));
  const stop = useMutation(trpc.sweeps.stop.mutationOptions(opts));
  const extend = useMutation(trpc.sweeps.extend.mutationOptions(opts));
  const choose = useMutation(trpc.sweeps.chooseWinner.mutationOptions({ onSuccess: () => (setWinnerWhy(""), refresh()) }));

  const s = sweep.data;
  const experiment = useQuery({ ...trpc.projects.experiment.queryOptions({ id: s?.experimentId ?? 0 }), enabled: s !== undefined });
  // Only trials with a value are drawn: a queued or running trial has none, and the chart drew its line off the metric's axis.
  const valued = useMemo(() => (s ? s.trials.filter((t) => t.value !== null) : []), [s]);
  const axes = useMemo<Axis[]>(() => {
    if (!s) return [];
    const paths = Object.keys(s.spec.space).sort();
    const params = paths.map((p) =>
      paramAxis(
        p,
        valued.map((t) => (t.params[p] ?? null) as string | number | boolean | null),
      ),
    );
    return [...params, { field: "value", label: s.spec.metric.name, values: valued.map((t) => t.value), categories: null }];
  }, [s, valued]);
  const pcpRuns = useMemo(() => valued.map((t) => ({ id: t.runId, name: t.runName })), [valued]);
  if (sweep.isLoading) return <Loading what="Loading the sweep" />;
  if (sweep.error || !s) return <ErrorState error={sweep.error} title="This sweep could not be loaded" />;
  const engineer = me.role === "engineer";
  const error = pause.error ?? resume.error ?? stop.error ?? extend.error;
  const dir = s.spec.metric.direction;
  const ranked = s.trials
    .filter((t) => t.status === "completed" && t.value !== null)
    .sort((a, b) => (dir === "minimize" ? a.value! - b.value! : b.value! - a.value!));
  const decide = (m: { mutate: (input: { sweepId: number; rationale: string }) => void }) => m.mutate({ sweepId, rationale });

  const paths = Object.keys(s.spec.space).sort();
  return (
    <>
      <p className="muted">
        <Link href="/sweeps">Sweeps</Link> /{" "}
        <Link href={`/experiments/${s.experimentId}`}>{experiment.data?.name ?? `experiment #${s.experimentId}`}</Link> / sweep #{s.id}
      </p>
      <h1>
        Sweep #{s.id}: {s.name}
      </h1>
      <p className="subtitle">
        {s.method} search, {dir} {s.spec.metric.name}, seed {s.spec.seed}, set up by {s.createdByName} on {formatTime(s.createdAt)}: “
        {s.spec.rationale}”
      </p>
      <section className="panel" aria-label="Progress">
        <h2 style={{ marginTop: 0 }}>Progress</h2>
        <p className="row" style={{ marginTop: 0 }}>
          <StatusBadge status={s.status} />
          <span>
            {s.counts.total} of {s.maxTrials} trials created · {s.counts.active} active · {s.counts.completed} completed ·{" "}
            {s.counts.stoppedEarly} stopped early
          </span>
        </p>
        <progress
          max={s.maxTrials}
          value={s.counts.total - s.counts.active}
          aria-label="Trials finished"
          style={{ width: "100%", maxWidth: 480 }}
        />
      </section>

      {engineer && (s.status === "running" || s.status === "paused" || s.status === "completed") ? (
        <section aria-label="Sweep decisions" className="panel">
          <h2 style={{ marginTop: 0 }}>Decide</h2>
          <p className="muted" style={{ marginTop: 0 }}>
            Each decision is recorded with your rationale.
          </p>
          <div className="form-grid" style={{ marginBottom: 12 }}>
            <label className="field">
              <span>Rationale</span>
              <input aria-label="Rationale" value={rationale} onChange={(e) => setRationale(e.target.value)} placeholder="why" />
            </label>
            <label className="field">
              <span>Add trials</span>
              <input aria-label="Add trials" type="number" min={1} value={addTrials} onChange={(e) => setAddTrials(e.target.value)} />
            </label>
          </div>
          <div className="row">
            {s.status === "running" ? (
              <button type="button" onClick={() => decide(pause)}>
                Pause
              </button>
            ) : null}
            {s.status === "paused" ? (
              <button type="button" onClick={() => decide(resume)}>
                Resume
              </button>
            ) : null}
            {s.status !== "completed" ? (
              <button type="button" className="danger" onClick={() => decide(stop)}>
                Stop
              </button>
            ) : null}
            <button type="button" onClick={() => extend.mutate({ sweepId, rationale, addTrials: Number(addTrials) })}>
              Extend
            </button>
          </div>
          <FormError error={error} />
        </section>
      ) : null}

      <section className="panel" aria-label="Trials">
        <h2 style={{ marginTop: 0 }}>Trials</h2>
        {s.trials.length === 0 ? (
          <p className="muted">No trial yet: the sweep creates them as its budget and parallelism allow.</p>
        ) : (
          <div className="table-scroll">
            <table aria-label="Trials table">
              <thead>
                <tr>
                  <th className="num">#</th>
                  <th>Run</th>
                  <th>Status</th>
                  {paths.map((p) => (
                    <th key={p} className="mono" title={p}>
                      {p}
                    </th>
                  ))}
                  <th className="num">{s.spec.metric.name}</th>
                  <th>Early stop</th>
                </tr>
              </thead>
              <tbody>
                {s.trials.map((t) => (
                  <tr key={t.runId}>
                    <td className="num">{t.trialIndex + 1}</td>
                    <td>
                      <Link href={`/runs/${t.runId}`}>{t.runName}</Link>
                      {s.winnerRunId === t.runId ? (
                        <>
                          {" "}
                          <span className="badge completed">(winner)</span>
                        </>
                      ) : null}
                    </td>
                    <td>
                      <StatusBadge status={t.status} />
                    </td>
                    {paths.map((p) => (
                      <td key={p} className="mono">
                        {shown(t.params[p])}
                      </td>
                    ))}
                    <td className="num">{t.value === null ? "–" : formatMetric(t.value)}</td>
                    <td>{t.stoppedAtRung === null ? "" : `stopped at epoch ${t.stoppedAtRung}`}</td>
                  </tr>
                ))}
              </tbody>
            </table>
          </div>
        )}
      </section>

      <section className="panel" aria-label="Parallel coordinates">
        <h2 style={{ marginTop: 0 }}>Trials across the search space</h2>
        {valued.length === 0 ? (
          <p className="muted">No trial has a {s.spec.metric.name} yet: each trial&apos;s line appears once it reports one.</p>
        ) : (
          <ParallelCoordinates runs={pcpRuns} axes={axes} />
        )}
      </section>

      <section className="panel" aria-label="Importance">
        <h2 style={{ marginTop: 0 }}>Importance of each hyperparameter for {s.spec.metric.name}</h2>
        {s.importance === null ? (
          <p className="muted">Needs at least 3 trials with a value.</p>
        ) : (
          <ul>
            {s.importance.map((i) => (
              <li key={i.path}>
                <span className="mono">{i.path}</span>: {(i.importance * 100).toFixed(0)} % of the variance{" "}
                <meter min={0} max={1} value={i.importance} aria-label={`Importance of ${i.path}`} />
              </li>
            ))}
          </ul>
        )}
        <p className="muted" style={{ marginBottom: 0 }}>
          Share of the metric&apos;s variance between groups of trials split by each parameter alone (η²); a first look, not a causal claim.
        </p>
      </section>

      <section className="panel" aria-label="Best trials">
        <h2 style={{ marginTop: 0 }}>Best trials</h2>
        {ranked.length === 0 ? (
          <p className="muted">No completed trial yet.</p>
        ) : (
          <ol>
            {ranked.slice(0, 5).map((t) => (
              <li key={t.runId}>
                <Link href={`/runs/${t.runId}`}>{t.runName}</Link>: {s.spec.metric.name} {formatMetric(t.value!)}
              </li>
            ))}
          </ol>
        )}
        {s.winnerRunId !== null ? (
          <p>
            Winner: <Link href={`/runs/${s.winnerRunId}`}>run #{s.winnerRunId}</Link>, chosen by {s.winnerChosenByName}: “
            {s.winnerRationale}”
          </p>
        ) : null}
        {engineer && ranked.length > 0 ? (
          <form
            aria-label="Choose the winner"
            onSubmit={(e) => {
              e.preventDefault();
              choose.mutate({ sweepId, runId: winner ?? ranked[0]!.runId, rationale: winnerWhy });
            }}
          >
            <div className="form-grid" style={{ marginBottom: 12 }}>
              <label className="field">
                <span>Winner</span>
                <select aria-label="Winner" value={winner ?? ranked[0]!.runId} onChange={(e) => setWinner(Number(e.target.value))}>
                  {ranked.map((t) => (
                    <option key={t.runId} value={t.runId}>
                      {t.runName} ({formatMetric(t.value!)})
                    </option>
                  ))}
                </select>
              </label>
              <label className="field">
                <span>Why this one</span>
                <input aria-label="Why this one" value={winnerWhy} onChange={(e) => setWinnerWhy(e.target.value)} />
              </label>
            </div>
            <FormError error={choose.error} />
            <button className="primary" type="submit" disabled={choose.isPending}>
              Choose winner
            </button>
          </form>
        ) : null}
      </section>
    </>
  );
}

export default function SweepPage({ params }: { params: Promise<{ id: string }> }) {
  const { id } = use(params);
  return <Shell>{(me) => <Sweep sweepId={Number(id)} me={me} />}</Shell>;
}
