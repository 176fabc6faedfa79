"use client";
/**
 * New run: the config form; launching records the whole config as the author's first decision.
 * "Start from" picks the baseline the form is prefilled from: one of the experiment's runs (default: its latest completed
 * one, so a comparison with it is like for like — same data, split seed and settings — and a config that failed is not
 * prefilled unasked; the demo default when none has completed) or the demo default. Each option names its run's status, so
 * a failed or running run can still be chosen knowingly. The form then shows
 * what differs from that baseline before launch. The baseline only prefills: the run is created as a new run, not a fork,
 * and not under the baseline's name (its config's `name` is left out): the run takes the name typed here, else "run N".
 */
import Link from "next/link";
import { use, useState } from "react";
import { useRouter } from "next/navigation";
import { useMutation, useQuery } from "@tanstack/react-query";
import { useTRPC } from "@/app/_trpc/client";
import { Shell } from "@/app/_components/shell";
import { ErrorState, Loading } from "@/app/_components/states";
import { DEFAULT_CONFIG, RunConfigForm } from "@/app/_components/run-config-form";
import type { TrainingConfigInput } from "@/contracts/training-config";

/** A baseline's config without its name: a new run is not called like the run it started from. */
function withoutName(config: unknown): TrainingConfigInput {
  const { name: _name, ...rest } = config as TrainingConfigInput;
  return rest;
}

/** "" = not chosen yet (the latest completed run once the list is loaded), "default" = the demo default, else a run id. */
type Choice = "" | "default" | `${number}`;

function NewRun({ experimentId }: { experimentId: number }) {
  const trpc = useTRPC();
  const router = useRouter();
  const experiment = useQuery(trpc.projects.experiment.queryOptions({ id: experimentId }));
  const runs = useQuery({
    ...trpc.runs.list.queryOptions({ experimentId }),
    // A run logged through the tracking API has no training config to start from.
    select: (rows) => rows.filter((r) => r.origin !== "api"),
  });
  const [choice, setChoice] = useState<Choice>("");
  const [runName, setRunName] = useState("");
  // listRuns is newest first: the latest completed run is the first completed row.
  const latestCompleted = runs.data?.find((r) => r.status === "completed");
  const defaultChoice: Choice = runs.data ? (latestCompleted ? `${latestCompleted.id}` : "default") : "";
  // The default is taken once, when the list loads: a run completing later does not swap the baseline under an edit.
  if (choice === "" && defaultChoice !== "") setChoice(defaultChoice);
  const effective: Choice = choice !== "" ? choice : defaultChoice;
  const baselineId = effective !== "" && effective !== "default" ? Number(effective) : null;
  const baseline = useQuery({ ...trpc.runs.get.queryOptions({ id: baselineId ?? 0 }), enabled: baselineId !== null });
  const create = useMutation(trpc.runs.create.mutationOptions({ onSuccess: (r) => router.push(`/runs/${r.id}`) }));
  if (experiment.error) return <ErrorState error={experiment.error} />;
  if (runs.error) return <ErrorState error={runs.error} title="Could not load the experiment's runs" />;
  const ready = effective === "default" || (baselineId !== null && baseline.data?.id === baselineId);
  const baselineLabel = baseline.data ? `run #${baseline.data.id} (${baseline.data.name})` : "";
  return (
    <>
      <p className="muted">
        <Link href={`/experiments/${experimentId}`}>{experiment.data?.name ?? "experiment"}</Link> / new run
      </p>
      <h1>New run</h1>
      <p className="subtitle">Choose the data, the model and how to train it. Every choice is recorded with your rationale.</p>
      <div className="panel">
        <label className="field" style={{ marginBottom: 12, maxWidth: 480 }}>
          <span>Start from</span>
          <select aria-label="Start from" value={effective} disabled={!runs.data} onChange={(e) => setChoice(e.target.value as Choice)}>
            {effective === "" ? <option value="">loading runs…</option> : null}
            {(runs.data ?? []).map((r) => (
              <option key={r.id} value={`${r.id}`}>
                run #{r.id} · {r.name} · {r.status}
                {r.id === latestCompleted?.id ? " (latest completed)" : ""}
              </option>
            ))}
            <option value="default">the demo default configuration</option>
          </select>
        </label>
        <label className="field" style={{ marginBottom: 12, maxWidth: 480 }}>
          <span>Run name (optional)</span>
          <input
            aria-label="Run name"
            value={runName}
            maxLength={120}
            placeholder="empty: run N, numbered in this experiment"
            onChange={(e) => setRunName(e.target.value)}
          />
        </label>
        {baseline.error ? <ErrorState error={baseline.error} title="Could not load the baseline run" /> : null}
        {!ready ? (
          <Loading what="Loading the baseline's configuration" />
        ) : (
          <RunConfigForm
            // A new baseline resets the form: it is a fresh start from that run's config, not a merge.
            key={effective}
            initial={effective === "default" ? DEFAULT_CONFIG : withoutName(baseline.data!.config)}
            baseline={effective === "default" ? undefined : { label: baselineLabel, config: withoutName(baseline.data!.config) }}
            submitLabel="Launch run"
            busy={create.isPending}
            serverError={create.error}
            onSubmit={(config, rationale) => create.mutate({ experimentId, config, rationale, name: runName.trim() || undefined })}
          />
        )}
      </div>
    </>
  );
}

export default function NewRunPage({ params }: { params: Promise<{ id: string }> }) {
  const { id } = use(params);
  return <Shell>{() => <NewRun experimentId={Number(id)} />}</Shell>;
}
