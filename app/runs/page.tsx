"use client";
/** Every run across experiments in the explorer (filter by `experiment = "name"`, group by experiment, compare across them). */
import { Suspense } from "react";
import { Shell } from "@/app/_components/shell";
import { Loading } from "@/app/_components/states";
import { RunsExplorer } from "@/app/_components/runs-explorer/runs-explorer";

export default function AllRunsPage() {
  return (
    <Shell>
      {() => (
        <>
          <h1>All runs</h1>
          <p className="subtitle">
            Runs of every experiment. Filter, choose columns, group by a hyperparameter, select 2–20 runs and compare them.
          </p>
          <Suspense fallback={<Loading what="Loading runs" />}>
            <RunsExplorer />
          </Suspense>
        </>
      )}
    </Shell>
  );
}
