"use client";
/** Compare 2..20 runs side by side: /compare?ids=1,2,3 (the runs tables link here with the selected runs). */
import { Suspense } from "react";
import { Shell } from "@/app/_components/shell";
import { Loading } from "@/app/_components/states";
import { CompareView } from "@/app/_components/compare/compare-view";

export default function ComparePage() {
  return (
    <Shell>
      {() => (
        <>
          <h1>Compare runs</h1>
          <p className="subtitle">Hyperparameters, data, decisions and curves of the selected runs, each run in one colour throughout.</p>
          <Suspense fallback={<Loading what="Loading" />}>
            <CompareView />
          </Suspense>
        </>
      )}
    </Shell>
  );
}
