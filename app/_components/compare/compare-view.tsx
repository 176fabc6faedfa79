"use client";
/**
 * The compare view for 2..20 runs (ids in the URL, `?ids=1,2,3`): legend (one colour per run everywhere),
 * data like-for-like check, hyperparameters side by side, metric summaries, decisions, overlaid curves and
 * hyperparameter → metric charts.
 */
import Link from "next/link";
import { useQuery } from "@tanstack/react-query";
import { useSearchParams } from "next/navigation";
import { useTRPC } from "@/app/_trpc/client";
import { Empty, ErrorState, Loading } from "@/app/_components/states";
import { RunLegend } from "./run-legend";
import { DataPanel } from "./data-panel";
import { ParamsTable } from "./params-table";
import { MetricsSummary } from "./metrics-summary";
import { ModelsPanel } from "./models-panel";
import { DecisionsPanel } from "./decisions-panel";
import { CurvesPanel } from "./curves-panel";
import { RelationsPanel } from "./relations-panel";
import "@/app/_components/runs-explorer/explorer.css";

export function parseIds(text: string | null): number[] {
  return (text ?? "")
    .split(",")
    .map((s) => Number(s.trim()))
    .filter((n) => Number.isInteger(n) && n > 0);
}

export function CompareView() {
  const trpc = useTRPC();
  const ids = parseIds(useSearchParams().get("ids"));
  const comparison = useQuery({ ...trpc.explore.compare.queryOptions({ ids }), enabled: ids.length >= 2 && ids.length <= 20 });
  if (ids.length < 2 || ids.length > 20) {
    return (
      <Empty
        title="Choose 2 to 20 runs to compare"
        hint={`The link names ${ids.length} run${ids.length === 1 ? "" : "s"}. Select runs in a runs table and press “Compare”.`}
      >
        <Link className="button" href="/runs">
          Open all runs
        </Link>
      </Empty>
    );
  }
  if (comparison.isPending) return <Loading what={`Comparing ${ids.length} runs`} />;
  if (comparison.error) return <ErrorState error={comparison.error} title="Could not compare these runs" />;
  const c = comparison.data;
  return (
    <>
      <section className="panel" aria-label="Runs compared">
        <RunLegend runs={c.runs} />
      </section>
      <DataPanel comparison={c} />
      <ParamsTable comparison={c} />
      <section className="panel" aria-label="Metrics">
        <h2 style={{ marginTop: 0 }}>Metrics</h2>
        <MetricsSummary comparison={c} />
      </section>
      <ModelsPanel comparison={c} />
      <CurvesPanel comparison={c} />
      <RelationsPanel comparison={c} />
      <DecisionsPanel comparison={c} />
    </>
  );
}
