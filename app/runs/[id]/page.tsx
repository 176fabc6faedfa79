"use client";
/**
 * One run: live progress and curves, piloting while it trains (engineers: pause, resume, stop, adjust; roll back to a
 * checkpoint as a branch run, also once completed; everyone sees the interventions), what it was trained on and how,
 * checkpoints with their hashes, evaluation, decisions. A sticky header bar keeps the main actions in view (Register as
 * model version, Fork, Re-run, Pilot, Resume, Cancel), each shown only when the role and the run's status allow it, as
 * the server would; Register and Pilot scroll to their panels (the forms themselves stay where they were). Below the
 * header, the run's Markdown description (./run-description.tsx; engineers edit it there). A sweep's trial links to
 * its sweep ("Trial N of sweep S"); a compression (origin "compress") has no epoch boundaries, so it has no Pilot
 * action or panel (the server refuses piloting it).
 */
import Link from "next/link";
import { use, useEffect, useMemo, useState } from "react";
import { useMutation, useQuery, useQueryClient } from "@tanstack/react-query";
import { useTRPC } from "@/app/_trpc/client";
import { Shell, type Me } from "@/app/_components/shell";
import { ErrorState, FormError, Loading } from "@/app/_components/states";
import { Hash } from "@/app/_components/hash";
import { StatusBadge } from "@/app/_components/status-badge";
import { formatBytes, formatCount, formatDuration, formatMetric, formatTime } from "@/app/_components/format";
import { RunCurves } from "./run-curves";
import { ApiRunCurves } from "./api-run-curves";
import { CheckpointsTable } from "./checkpoints-table";
import { EvaluationPanel, type NoTestEvaluation } from "./evaluation-panel";
import { DecisionsTimeline } from "./decisions-timeline";
import { RegisterVersionForm } from "@/app/models/_components/register-version-form";
import { effectiveConfig } from "@/contracts/pilot-config";
import { useInterventions } from "./interventions";
import { PilotPanel, PILOTABLE_STATES } from "./pilot-panel";
import { InterventionsList } from "./interventions-list";
import { RollbackPanel, ROLLBACK_STATES } from "./rollback-panel";
import { RunDescription } from "./run-description";
import { CancelRunForm } from "./cancel-run-form";
import { TrainingHolder } from "./training-holder";
import { versionsText } from "@/app/_components/versions-text";
import { originWords } from "@/contracts/origin-words";
import { SplitWarnings } from "@/app/_components/split-warnings-note";
import type { PartitionBalance } from "@/app/_components/split-warnings";
import type { sweepOfRun } from "@/server/sweeps/queries";

type SweepOfRun = ReturnType<typeof sweepOfRun>;

function Run({ runId, me }: { runId: number; me: Me }) {
  const trpc = useTRPC();
  const queryClient = useQueryClient();
  const cached = useQuery({ ...trpc.runs.get.queryOptions({ id: runId }), enabled: false });
  const interventions = useInterventions(runId, cached.data?.status);
  // A paused run with a pending intervention changes state soon (a resume re-queues it): keep polling it too.
  const pendingAny = interventions.data?.some((i) => i.status === "pending") ?? false;
  // A resume can be applied before this page sees the run leave "paused": keep polling a paused run whose last
  // applied pause/resume is a resume, or the page would stop polling and show it paused for good.
  const resumed =
    (interventions.data ?? []).filter((i) => i.status === "applied" && (i.kind === "pause" || i.kind === "resume")).at(-1)?.kind ===
    "resume";
  const run = useQuery({
    ...trpc.runs.get.queryOptions({ id: runId }),
    refetchInterval: (q) =>
      q.state.data && (["running", "queued"].includes(q.state.data.status) || (q.state.data.status === "paused" && (pendingAny || resumed)))
        ? 1000
        : false,
  });
  const status = run.data?.status;
  // A sweep's trial: which sweep generated it, and whether it was chosen as the winner (read once the run says so).
  const sweep = useQuery({ ...trpc.sweeps.ofRun.queryOptions({ runId }), enabled: run.data?.origin === "sweep" });
  const { refetch: refetchInterventions } = interventions;
  // When the run changes state (paused, resumed, ended), read the interventions once more: the last ones just closed.
  useEffect(() => {
    if (status) void refetchInterventions();
  }, [status, refetchInterventions]);
  const applied = useMemo(() => (interventions.data ?? []).filter((i) => i.status === "applied"), [interventions.data]);
  // For the "current" values the Pilot panel shows; the server computes old values itself when it records a change.
  const effective = useMemo(
    () =>
      run.data
        ? effectiveConfig(
            run.data.config,
            applied
              .filter((i) => i.kind !== "rollback")
              .map((i) => ({ changes: i.changes.map((c) => ({ ...c, oldValue: c.oldValue, newValue: c.newValue })) })),
          )
        : null,
    [run.data, applied],
  );
  const [cancelOpen, setCancelOpen] = useState(false);
  // An interrupted run (its training process died) resumes from its last checkpoint on one click.
  const resumeInterrupted = useMutation(
    trpc.runs.resumeInterrupted.mutationOptions({
      // Read again once its worker has started ("running" polls by itself from then on).
      onSuccess: () => {
        const refresh = () => void queryClient.invalidateQueries({ queryKey: trpc.runs.get.queryKey({ id: runId }) });
        refresh();
        setTimeout(refresh, 1500);
      },
    }),
  );
  if (run.isPending) return <Loading what="Loading run" />;
  if (run.error) return <ErrorState error={run.error} title="Could not load this run" />;
  const r = run.data;
  const active = r.status === "running" || r.status === "queued";
  // The server cancels a paused or interrupted run too (runs.cancel: its pending interventions are rejected).
  // A run logged through the tracking API is ended by its script and cannot be forked or re-run from here; a pilot may
  // pause, resume or stop it or change its logged params (its script applies them between its epochs), not roll it back.
  const apiRun = r.origin === "api";
  // Still able to log metrics: its Summary shows the latest values, not final ones.
  const ongoing = active || r.status === "paused" || r.status === "interrupted";
  const cancellable = !apiRun && ongoing;
  // A compression has no epoch boundaries to stop at: it cannot be piloted or rolled back (the server refuses it too).
  const compression = r.origin === "compress";
  const live = !compression && PILOTABLE_STATES.includes(r.status);
  const canPilot = me.role === "engineer" && !compression;
  // A completed run can still be rolled back to one of its checkpoints (a branch run): only that control is shown.
  const canRollback = canPilot && !apiRun && ROLLBACK_STATES.includes(r.status);
  const pilotShown = (live && canPilot) || canRollback;
  const registrable = me.role === "engineer" && r.status === "completed" && r.checkpoints.length > 0;
  // Rows in the test partition of the run's split (null: no recorded split). A split without test rows, or an API run's
  // missing split, means no test evaluation ever: the checkpoints table and the evaluation panel say why.
  const manifest = r.split ? (r.split.manifest as { ratios?: { test?: number }; partitions?: { test?: { count: number } } }) : null;
  const testRows = manifest ? manifest.partitions?.test?.count : null;
  const noTestEvaluation: NoTestEvaluation =
    testRows === 0
      ? {
          reason: "no-test-rows",
          testRatio: manifest?.ratios?.test,
          forkHref: me.role === "engineer" && !apiRun ? `/runs/${runId}/fork` : null,
        }
      : !r.split && apiRun
        ? { reason: "no-split" }
        : null;
  const pausedAt =
    r.status === "paused" ? (applied.filter((i) => i.kind === "pause").at(-1)?.appliedAtEpoch ?? r.progress?.epoch ?? null) : null;
  const p = r.progress;
  const pct =
    p && p.epochs
      ? Math.min(100, ((Math.max(0, p.epoch - (p.batch && p.batches ? 1 : 0)) + (p.batches ? p.batch / p.batches : 0)) / p.epochs) * 100)
      : 0;
  return (
    <>
      <p className="muted" style={{ margin: 0 }}>
        <Link href={`/experiments/${r.experimentId}`}>{r.experimentName}</Link> / run #{r.id}
      </p>
      {/* The header bar stays in view while scrolling (sticky), so the main actions never sit below the checkpoints. */}
      <div role="region" aria-label="Run header" className="run-header">
        <h1>{r.name}</h1>
        <StatusBadge status={r.status} progress={p} />
        <div className="run-actions">
          {registrable ? (
            <button type="button" onClick={() => jumpTo("register", "Model name")}>
              Register as model version
            </button>
          ) : null}
          {me.role === "engineer" && !apiRun ? (
            <>
              <Link href={`/runs/${runId}/fork`}>Fork run</Link>
              <Link href={`/runs/${runId}/fork?mode=rerun`}>Re-run</Link>
            </>
          ) : null}
          {pilotShown ? (
            <button type="button" onClick={() => jumpTo("pilot", live && canPilot ? "Pilot rationale" : "Checkpoint to continue from")}>
              Pilot
            </button>
          ) : null}
          {me.role === "engineer" && r.status === "interrupted" ? (
            <button type="button" onClick={() => resumeInterrupted.mutate({ id: runId })} disabled={resumeInterrupted.isPending}>
              Resume
            </button>
          ) : null}
          {me.role === "engineer" && cancellable && !cancelOpen ? (
            <button className="danger" type="button" onClick={() => setCancelOpen(true)}>
              Cancel run
            </button>
          ) : null}
        </div>
      </div>
      {me.role === "engineer" && cancellable && cancelOpen ? <CancelRunForm runId={runId} onClose={() => setCancelOpen(false)} /> : null}
      <FormError error={resumeInterrupted.error} />
      <p className="subtitle">
        by {r.author} · created {formatTime(r.createdAt)} ·{" "}
        <OriginLine
          origin={r.origin}
          parentRunId={r.parentRunId}
          parentEpoch={r.parentCheckpoint?.epoch ?? null}
          sweep={sweep.data ?? null}
        />
      </p>
      <RunDescription runId={runId} description={r.description} me={me} />
      {r.cancellation ? (
        <p role="note" aria-label="Cancellation">
          <strong>Cancelled</strong> at the request of {r.cancellation.by}, {formatTime(r.cancellation.at)}
          {r.cancellation.reason ? <>: “{r.cancellation.reason}”</> : " (no reason was recorded)"}
        </p>
      ) : null}
      {r.error ? (
        <div className="state error" role="alert">
          <strong>Training failed</strong>
          <p style={{ margin: "4px 0 0" }}>{r.error}</p>
        </div>
      ) : null}
      {r.status === "paused" && apiRun ? (
        <section className="panel" aria-label="Paused">
          <strong>Paused at step {pausedAt ?? "?"}</strong>
          <span className="muted">
            {" "}
            — its script acknowledged the pause and waits between its epochs; it continues when{" "}
            {canPilot ? "you resume" : "a pilot resumes"} it.
          </span>
        </section>
      ) : r.status === "paused" ? (
        <section className="panel" aria-label="Paused">
          <strong>
            Paused at epoch {pausedAt ?? "?"} of {effective?.training.epochs ?? r.config.training.epochs}
          </strong>
          <span className="muted">
            {" "}
            — its training slot is free; {canPilot ? "Resume continues" : "a resume continues"} exactly from the checkpoint written at the
            pause.
          </span>
        </section>
      ) : null}
      {active ? (
        <div className="panel" aria-label="Progress">
          <div className="row">
            <strong>
              {apiRun
                ? "Logging through the MLflow-compatible API"
                : r.status === "queued"
                  ? "Waiting for a training slot"
                  : `Epoch ${p?.epoch ?? 0} of ${p?.epochs ?? r.config.training.epochs}`}
            </strong>
            {p?.batches ? (
              <span className="muted">
                batch {p.batch}/{p.batches}
              </span>
            ) : null}
            <span className="spacer" />
            {p?.samplesPerSecond ? <span className="muted">{formatCount(p.samplesPerSecond)} samples/s</span> : null}
          </div>
          <div
            className="progress"
            role="progressbar"
            aria-valuemin={0}
            aria-valuemax={100}
            aria-valuenow={Math.round(pct)}
            aria-label="Training progress"
          >
            <div style={{ width: `${pct}%` }} />
          </div>
        </div>
      ) : null}
      {live || pilotShown || (interventions.data?.length ?? 0) > 0 || interventions.error ? (
        <div className={pilotShown ? "run-split" : "run-split single"}>
          {pilotShown && effective ? (
            <div id="pilot" style={{ display: "grid", gap: 16, scrollMarginTop: HEADER_OFFSET }}>
              {live && canPilot ? (
                <PilotPanel
                  runId={runId}
                  status={r.status}
                  effective={effective}
                  interventions={interventions.data ?? []}
                  script={apiRun}
                  settings={r.scriptSettings ?? []}
                />
              ) : null}
              {canRollback ? (
                <RollbackPanel
                  runId={runId}
                  status={r.status}
                  checkpoints={r.checkpoints}
                  current={{ learningRate: effective.training.learningRate, epochs: effective.training.epochs }}
                />
              ) : null}
            </div>
          ) : null}
          <InterventionsList runId={runId} list={interventions} canPilot={canPilot} live={live} runStatus={r.status} />
        </div>
      ) : null}
      {r.scriptSettings && r.scriptSettings.length > 0 ? <ScriptSettingsTable settings={r.scriptSettings} /> : null}
      <div className="run-split">
        {apiRun ? (
          <ApiRunCurves runId={runId} active={active} status={r.status} />
        ) : (
          <RunCurves runId={runId} active={active} status={r.status} task={r.config.data.task} interventions={interventions.data ?? []} />
        )}
        <DecisionsTimeline runId={runId} me={me} active={active} status={r.status} />
      </div>
      <div>
        <section className="panel" aria-label="Summary">
          <h2 style={{ marginTop: 0 }}>Summary</h2>
          <dl className="kv">
            <dt>Status</dt>
            <dd>
              {r.status === "paused" ? `paused at ${apiRun ? "step" : "epoch"} ${pausedAt ?? "?"}` : r.status}
              {r.status === "completed" && applied.some((i) => i.kind === "stop") ? " (stopped by decision)" : ""}
            </dd>
            <dt>Duration</dt>
            <dd>{formatDuration(r.durationMs)}</dd>
            <dt>Backend</dt>
            <dd>
              {r.backend ?? "–"}
              {r.backendReason ? <span className="muted"> — {r.backendReason}</span> : null}
            </dd>
            {apiRun ? null : <TrainingHolder runId={runId} status={r.status} />}
            <dt>Versions</dt>
            <dd className="mono">{r.environment ? versionsText(r.environment) : "–"}</dd>
            <dt>Parameters</dt>
            <dd>{formatCount(r.paramCount)}</dd>
            <dt>Memory (float32)</dt>
            <dd>{r.memory ? <MemoryLine memory={r.memory} /> : "–"}</dd>
            <dt>Config</dt>
            <dd>
              <Hash value={r.configSha256} label="config sha256" />
            </dd>
            <dt>Final weights</dt>
            <dd>
              <Hash value={r.finalWeightsSha256} label="final weights sha256" />
              {r.reproducedParentWeights === null ? null : r.reproducedParentWeights ? (
                <span className="badge completed" style={{ marginLeft: 6 }}>
                  reproduced run #{r.parentRunId} exactly
                </span>
              ) : (
                <span className="badge failed" style={{ marginLeft: 6 }}>
                  differs from run #{r.parentRunId}
                </span>
              )}
            </dd>
            {r.parentCheckpoint ? (
              <>
                <dt>{r.origin === "branch" ? "Branched from" : r.origin === "compress" ? "Compressed from" : "Fine-tuned from"}</dt>
                <dd>
                  <Link href={`/runs/${r.parentCheckpoint.runId}`}>run #{r.parentCheckpoint.runId}</Link>, epoch {r.parentCheckpoint.epoch}{" "}
                  · <Hash value={r.parentCheckpoint.sha256} label="parent checkpoint sha256" />
                  {r.environment?.fineTune ? (
                    <FineTuneLine ft={r.environment.fineTune as { frozenLayers: string[]; replacedLayers: string[] }} />
                  ) : null}
                </dd>
              </>
            ) : null}
            <dt>Dataset</dt>
            <dd>
              {r.datasetVersion ? (
                <>
                  <Link href={`/datasets/${r.datasetVersion.datasetId}`} aria-label={`Datasheet of ${r.datasetVersion.datasetName}`}>
                    {r.datasetVersion.datasetName}
                  </Link>{" "}
                  · version <Hash value={r.datasetVersion.sha256} label="dataset version sha256" /> ·{" "}
                  {formatCount(r.datasetVersion.rowCount)} rows
                </>
              ) : (
                "–"
              )}
            </dd>
            <dt>Split</dt>
            <dd>{r.split ? <SplitLine split={r.split} /> : "–"}</dd>
            {r.summaries
              .filter((s) => !s.key.startsWith("batch_"))
              .map((s) => (
                <LastMetric key={s.key} k={s.key} v={s.last} ongoing={ongoing} />
              ))}
          </dl>
        </section>
      </div>
      <CheckpointsTable
        runId={runId}
        checkpoints={r.checkpoints}
        evaluations={r.evaluations}
        testRows={testRows}
        canFineTune={me.role === "engineer" && !active}
        canEvaluate={me.role === "engineer" || me.role === "reviewer"}
      />
      {registrable ? (
        <div id="register" style={{ scrollMarginTop: HEADER_OFFSET }}>
          <RegisterVersionForm runId={runId} checkpoints={r.checkpoints} />
        </div>
      ) : null}
      <EvaluationPanel evaluations={r.evaluations} checkpoints={r.checkpoints} noTestEvaluation={noTestEvaluation} />
      <section className="panel">
        <h2 style={{ marginTop: 0 }}>Configuration</h2>
        <pre className="config" aria-label="Run configuration">
          {JSON.stringify(r.config, null, 2)}
        </pre>
      </section>
    </>
  );
}

/** Room left above a panel the header scrolls to, so the sticky header does not cover its title. */
const HEADER_OFFSET = 64;

/**
 * Scrolls a panel of this page into view below the sticky header (taller on a phone, where its actions take a line of
 * their own) and puts the cursor in its first field (by accessible label), if given.
 */
function jumpTo(id: string, fieldLabel: string | null) {
  const target = document.getElementById(id);
  if (!target) return;
  const header = document.querySelector<HTMLElement>(".run-header");
  target.style.scrollMarginTop = `${Math.max(HEADER_OFFSET, (header?.offsetHeight ?? 0) + 8)}px`;
  target.scrollIntoView({ behavior: "smooth", block: "start" });
  if (fieldLabel) target.querySelector<HTMLElement>(`[aria-label="${fieldLabel}"]`)?.focus({ preventScroll: true });
}

/** "Trial N of sweep #S" linking to the sweep page, and the winner decision when this trial was chosen. */
/** How the run came to be (origin-words.ts), its parent run linked; a sweep's trial links its sweep. */
function OriginLine(p: { origin: string; parentRunId: number | null; parentEpoch: number | null; sweep: SweepOfRun }) {
  if (p.origin === "sweep") return <SweepLine sweep={p.sweep} />;
  const w = originWords(p.origin, p.parentRunId, p.parentEpoch);
  return (
    <>
      {w.lead}
      {w.parentRunId === null ? null : <Link href={`/runs/${w.parentRunId}`}>run #{w.parentRunId}</Link>}
      {w.tail}
    </>
  );
}

function SweepLine({ sweep }: { sweep: SweepOfRun }) {
  if (!sweep) return <>generated by a sweep</>;
  return (
    <>
      generated by a sweep:{" "}
      <Link href={`/sweeps/${sweep.sweepId}`}>
        Trial {sweep.trialIndex + 1} of sweep #{sweep.sweepId} ({sweep.sweepName})
      </Link>
      {sweep.chosen ? ` · chosen as its winner (of ${sweep.trials} trials) by ${sweep.chosen.by}: “${sweep.chosen.rationale}”` : null}
    </>
  );
}

function FineTuneLine({ ft }: { ft: { frozenLayers: string[]; replacedLayers: string[] } }) {
  return (
    <div className="muted">
      frozen: {ft.frozenLayers.length ? ft.frozenLayers.join(", ") : "none"} · replaced:{" "}
      {ft.replacedLayers.length ? ft.replacedLayers.join(", ") : "none"}
    </div>
  );
}

function LastMetric({ k, v, ongoing }: { k: string; v: number; ongoing: boolean }) {
  return (
    <>
      <dt>
        {k} ({ongoing ? "latest" : "final"})
      </dt>
      <dd>{formatMetric(v, k)}</dd>
    </>
  );
}

function MemoryLine({ memory }: { memory: Record<string, unknown> }) {
  const b = (memory.bytes ?? {}) as Record<string, number>;
  return (
    <>
      training {formatBytes(b.trainingTotalFloat32)} · inference {formatBytes(b.inferenceTotalFloat32)} · weights{" "}
      {formatBytes(b.weightsFloat32)} (bfloat16 {formatBytes(b.weightsBfloat16)}, int8 {formatBytes(b.weightsInt8)})
    </>
  );
}

function SplitLine({ split }: { split: { sha256: string; manifest?: unknown } }) {
  const parts = (split.manifest as { partitions?: Record<string, PartitionBalance> }).partitions ?? {};
  return (
    <>
      <Hash value={split.sha256} label="split sha256" /> · train {parts.train?.count ?? "?"} / validation {parts.validation?.count ?? "?"} /
      test {parts.test?.count ?? "?"} rows
      <SplitWarnings partitions={parts} label="Split warnings" />
    </>
  );
}

/**
 * A script's run: its settings (logged params) with the value in force now and each pilot's change that took effect,
 * at the step its script acknowledged it (the param as logged stays: MLflow params are write-once).
 */
function ScriptSettingsTable({
  settings,
}: {
  settings: {
    key: string;
    logged: string;
    current: string;
    changes: { interventionId: number; step: number; from: string; to: string }[];
  }[];
}) {
  return (
    <section className="panel" aria-label="Settings">
      <h2 style={{ marginTop: 0 }}>Settings</h2>
      <p className="muted" style={{ marginTop: 0 }}>
        The params the script logged, and the changes a pilot made while it ran (applied by the script from the step it acknowledged them
        at).
      </p>
      <table>
        <thead>
          <tr>
            <th scope="col">Param</th>
            <th scope="col">Current value</th>
            <th scope="col">Logged value</th>
            <th scope="col">Changes</th>
          </tr>
        </thead>
        <tbody>
          {settings.map((s) => (
            <tr key={s.key}>
              <th scope="row" className="mono">
                {s.key}
              </th>
              <td className="mono">{s.current}</td>
              <td className="mono">{s.logged}</td>
              <td>
                {s.changes.length === 0
                  ? "–"
                  : s.changes.map((c) => (
                      <div key={c.interventionId}>
                        {c.from} → {c.to} from step {c.step} (request #{c.interventionId})
                      </div>
                    ))}
              </td>
            </tr>
          ))}
        </tbody>
      </table>
    </section>
  );
}

export default function RunPage({ params }: { params: Promise<{ id: string }> }) {
  const { id } = use(params);
  return <Shell>{(me) => <Run runId={Number(id)} me={me} />}</Shell>;
}
