"use client";
/**
 * An experiment's runs in the explorer: filter, choose columns, sort, group, select and compare
 * (app/_components/runs-explorer). The filter, sort, columns and grouping live in the URL.
 */
import Link from "next/link";
import { Suspense, use } from "react";
import { useQuery } from "@tanstack/react-query";
import { useTRPC } from "@/app/_trpc/client";
import { Shell, type Me } from "@/app/_components/shell";
import { ErrorState, Loading } from "@/app/_components/states";
import { RunsExplorer } from "@/app/_components/runs-explorer/runs-explorer";

function ExperimentRuns({ experimentId, me }: { experimentId: number; me: Me }) {
  const trpc = useTRPC();
  const experiment = useQuery(trpc.projects.experiment.queryOptions({ id: experimentId }));
  if (experiment.error) return <ErrorState error={experiment.error} />;
  return (
    <>
      <p className="muted">
        {experiment.data ? <Link href="/">{experiment.data.projectName}</Link> : "…"} / experiment · <Link href="/runs">all runs</Link>
      </p>
      <div className="row">
        <h1>{experiment.data?.name ?? "Experiment"}</h1>
        <span className="spacer" />
        {me.role === "engineer" ? (
          <Link className="button primary" href={`/experiments/${experimentId}/new-run`}>
            New run
          </Link>
        ) : null}
      </div>
      <p className="subtitle">{experiment.data?.description}</p>
      <Suspense fallback={<Loading what="Loading runs" />}>
        <RunsExplorer experimentId={experimentId} />
      </Suspense>
    </>
  );
}

export default function ExperimentPage({ params }: { params: Promise<{ id: string }> }) {
  const { id } = use(params);
  return <Shell>{(me) => <ExperimentRuns experimentId={Number(id)} me={me} />}</Shell>;
}
