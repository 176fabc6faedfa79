"use client";
/** New run: the config form; launching records the whole config as the author's first decision. */
import Link from "next/link";
import { use } from "react";
import { useRouter } from "next/navigation";
import { useMutation, useQuery } from "@tanstack/react-query";
import { useTRPC } from "@/app/_trpc/client";
import { Shell } from "@/app/_components/shell";
import { ErrorState } from "@/app/_components/states";
import { DEFAULT_CONFIG, RunConfigForm } from "@/app/_components/run-config-form";

function NewRun({ experimentId }: { experimentId: number }) {
  const trpc = useTRPC();
  const router = useRouter();
  const experiment = useQuery(trpc.projects.experiment.queryOptions({ id: experimentId }));
  const create = useMutation(trpc.runs.create.mutationOptions({ onSuccess: (r) => router.push(`/runs/${r.id}`) }));
  if (experiment.error) return <ErrorState error={experiment.error} />;
  return (
    <>
      <p className="muted">
        <Link href={`/experiments/${experimentId}`}>{experiment.data?.name ?? "experiment"}</Link> / new run
      </p>
      <h1>New run</h1>
      <p className="subtitle">Choose the data, the model and how to train it. Every choice is recorded with your rationale.</p>
      <div className="panel">
        <RunConfigForm
          initial={DEFAULT_CONFIG}
          submitLabel="Launch run"
          busy={create.isPending}
          serverError={create.error}
          onSubmit={(config, rationale) => create.mutate({ experimentId, config, rationale })}
        />
      </div>
    </>
  );
}

export default function NewRunPage({ params }: { params: Promise<{ id: string }> }) {
  const { id } = use(params);
  return <Shell>{() => <NewRun experimentId={Number(id)} />}</Shell>;
}
