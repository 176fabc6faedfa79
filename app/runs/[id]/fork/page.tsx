"use client";
/**
 * Fork a recorded run (change hyperparameters, data recipe or split, then launch) or re-run it unchanged.
 * A fork takes two steps: edit (the form shows the diff against the parent), then review each change, where a
 * rationale can be given per change; the change set's rationale covers the rest. Each changed path becomes a decision.
 * A re-run (runs.rerun) replays the source's planned and in-flight changes at their epochs; the page says how many.
 * A fork is named "<parent> · fork of #N" unless another name is typed (fork-name.ts): not like its parent, whose config
 * may carry a name (the server would otherwise take it), so lists and the compare view tell them apart.
 */
import Link from "next/link";
import { use, useState } from "react";
import { useRouter } from "next/navigation";
import { useMutation, useQuery } from "@tanstack/react-query";
import { useTRPC } from "@/app/_trpc/client";
import { Shell, type Me } from "@/app/_components/shell";
import { ErrorState, FormError, Loading } from "@/app/_components/states";
import { RunConfigForm } from "@/app/_components/run-config-form";
import { RUN_NAME_MAX, proposedForkName } from "@/contracts/fork-name";
import { diffConfigs, type TrainingConfigInput } from "@/contracts/training-config";
import type { inferRouterOutputs } from "@trpc/server";
import type { AppRouter } from "@/server/trpc/root";

type Pending = { config: TrainingConfigInput; rationale: string };

function Fork({ runId, mode, me }: { runId: number; mode: "fork" | "rerun"; me: Me }) {
  const trpc = useTRPC();
  const router = useRouter();
  const parent = useQuery(trpc.runs.get.queryOptions({ id: runId }));
  const create = useMutation(trpc.runs.create.mutationOptions({ onSuccess: (r) => router.push(`/runs/${r.id}`) }));
  // A re-run replays the source's piloting path (runs.rerun, server/runs/replay.ts): its planned entries and its
  // applied in-flight changes become schedule entries at their epochs, so it ends with the same weights.
  const rerun = useMutation(trpc.runs.rerun.mutationOptions({ onSuccess: (r) => router.push(`/runs/${r.id}`) }));
  const sourceInterventions = useQuery({ ...trpc.runs.pilot.list.queryOptions({ runId }), enabled: mode === "rerun" });
  const [pending, setPending] = useState<Pending | null>(null);
  const [perChange, setPerChange] = useState<Record<string, string>>({});
  const [rerunWhy, setRerunWhy] = useState("");
  // null: not edited, so the proposal (known once the parent loads) is the name.
  const [typedName, setTypedName] = useState<string | null>(null);
  if (parent.isPending) return <Loading what="Loading the parent run" />;
  if (parent.error) return <ErrorState error={parent.error} title="Could not load the parent run" />;
  if (me.role !== "engineer") return <ErrorState error={`a ${me.role} cannot launch runs (engineers only)`} title="Not allowed" />;
  const p = parent.data;
  const diff = pending ? diffConfigs(p.config, pending.config) : [];
  const proposedName = proposedForkName(p);
  const forkName = typedName?.trim() || proposedName;
  return (
    <>
      <p className="muted">
        <Link href={`/experiments/${p.experimentId}`}>{p.experimentName}</Link> / <Link href={`/runs/${p.id}`}>run #{p.id}</Link> /{" "}
        {mode === "rerun" ? "re-run" : "fork"}
      </p>
      <h1>{mode === "rerun" ? `Re-run ${p.name}` : `Fork ${p.name}`}</h1>
      {mode === "rerun" ? (
        <form
          className="panel"
          aria-label="Re-run"
          onSubmit={(e) => {
            e.preventDefault();
            rerun.mutate({ runId: p.id, rationale: rerunWhy });
          }}
        >
          <p style={{ marginTop: 0 }}>
            Runs the exact same configuration (config sha256 {p.configSha256.slice(0, 12)}…) again, for example to check that training is
            reproducible.
          </p>
          <ReplayNote planned={p.config.schedule?.length ?? 0} interventions={sourceInterventions.data} />
          <label className="field">
            <span>Why re-run? (recorded as your decision)</span>
            <textarea aria-label="Rationale" value={rerunWhy} onChange={(e) => setRerunWhy(e.target.value)} />
          </label>
          <FormError error={rerun.error} />
          <button className="primary" type="submit" disabled={rerun.isPending || rerunWhy.trim() === ""}>
            Launch re-run
          </button>
        </form>
      ) : (
        <>
          <p className="subtitle">
            Change what you want to try. The table under the form shows every difference from run #{p.id}; each becomes a recorded decision
            with your rationale.
          </p>
          <div className="panel" style={pending ? { display: "none" } : undefined}>
            <label className="field" style={{ marginBottom: 12, maxWidth: 480 }}>
              <span>Run name</span>
              <input
                aria-label="Run name"
                value={typedName ?? proposedName}
                maxLength={RUN_NAME_MAX}
                placeholder={`empty: ${proposedName}`}
                onChange={(e) => setTypedName(e.target.value)}
              />
            </label>
            <RunConfigForm
              initial={p.config}
              parentConfig={p.config}
              submitLabel="Review changes"
              busy={false}
              serverError={null}
              onSubmit={(config, rationale) => {
                setPending({ config, rationale });
                setPerChange({});
              }}
            />
          </div>
          {pending ? (
            <form
              className="panel"
              aria-label="Review changes"
              onSubmit={(e) => {
                e.preventDefault();
                const changeRationales = Object.fromEntries(Object.entries(perChange).filter(([, v]) => v.trim() !== ""));
                create.mutate({
                  experimentId: p.experimentId,
                  config: pending.config,
                  rationale: pending.rationale,
                  changeRationales,
                  origin: "fork",
                  parentRunId: p.id,
                  name: forkName,
                });
              }}
            >
              <h2 style={{ marginTop: 0 }}>
                Review {diff.length} change{diff.length === 1 ? "" : "s"}
              </h2>
              <p className="muted" style={{ marginTop: 0 }}>
                Launching as “{forkName}”. Rationale for the change set: “{pending.rationale}”. Give a specific reason per change where it
                differs (optional).
              </p>
              <div className="table-scroll">
                <table aria-label="Changes to launch">
                  <thead>
                    <tr>
                      <th>Setting</th>
                      <th>Parent</th>
                      <th>This run</th>
                      <th>Rationale for this change</th>
                    </tr>
                  </thead>
                  <tbody>
                    {diff.map((c) => (
                      <tr key={c.path}>
                        <td className="mono">{c.path}</td>
                        <td className="mono">{JSON.stringify(c.oldValue)}</td>
                        <td className="mono">{JSON.stringify(c.newValue)}</td>
                        <td>
                          <input
                            aria-label={`Rationale for ${c.path}`}
                            placeholder={pending.rationale}
                            value={perChange[c.path] ?? ""}
                            onChange={(e) => setPerChange({ ...perChange, [c.path]: e.target.value })}
                          />
                        </td>
                      </tr>
                    ))}
                  </tbody>
                </table>
              </div>
              <FormError error={create.error} />
              <div className="row" style={{ marginTop: 10 }}>
                <button className="primary" type="submit" disabled={create.isPending || diff.length === 0}>
                  {create.isPending ? "Launching…" : "Launch fork"}
                </button>
                <button type="button" onClick={() => setPending(null)}>
                  Back to editing
                </button>
              </div>
            </form>
          ) : null}
        </>
      )}
    </>
  );
}

type SourceIntervention = inferRouterOutputs<AppRouter>["runs"]["pilot"]["list"][number];

/**
 * What the re-run replays, counted as server/runs/replay.ts replaySchedule does: applied sets and stops after epoch 0,
 * and a rollback that stopped the run (its boundary checkpoint is not the one it rolled back to); pauses and resumes
 * change no weights and are not replayed.
 */
function ReplayNote({ planned, interventions }: { planned: number; interventions: SourceIntervention[] | undefined }) {
  if (!interventions) return null;
  const replayed = interventions.filter(
    (i) =>
      i.status === "applied" &&
      (i.appliedAtEpoch ?? 0) > 0 &&
      (i.kind === "set" || i.kind === "stop" || (i.kind === "rollback" && i.decision !== null && i.checkpointId !== i.fromCheckpointId)),
  ).length;
  if (replayed === 0 && planned === 0) return null;
  const n = (k: number, what: string) => `${k} ${what}${k === 1 ? "" : "s"}`;
  const parts = [
    replayed > 0 ? `${n(replayed, "in-flight decision")} at ${replayed === 1 ? "its epoch" : "their epochs"}` : null,
    planned > 0 ? `${n(planned, "planned change")} of its schedule` : null,
  ].filter((x): x is string => x !== null);
  return (
    <p role="note" aria-label="Replayed decisions">
      This re-run replays {parts.join(" and ")}, each recorded as a planned decision: on the same backend it ends with the same weights.
    </p>
  );
}

export default function ForkPage({ params, searchParams }: { params: Promise<{ id: string }>; searchParams: Promise<{ mode?: string }> }) {
  const { id } = use(params);
  const { mode } = use(searchParams);
  return <Shell>{(me) => <Fork runId={Number(id)} mode={mode === "rerun" ? "rerun" : "fork"} me={me} />}</Shell>;
}
