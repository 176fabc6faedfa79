"use client";
/**
 * The compared runs' in-flight decisions (applied live interventions, explore.compare `interventions`): the curve
 * markers of each run, in the run's colour, at the x where each took effect on the chosen axis, and the
 * "In-flight decisions" table under the charts, which is their accessible form (the markers' hover cards are not).
 *
 * Invariants: the wording of a change and of an effect is the run page's (app/runs/[id]/interventions.ts), so a
 * decision reads the same on both pages; a run keeps its compare colour (run-colors.ts) on markers and in the table.
 */
import { describeChanges, describeEffect } from "@/app/runs/[id]/interventions";
import type { ChartMarker } from "@/app/_components/chart-markers";
import type { Comparison } from "./comparison-type";
import { runColor } from "./run-colors";
import type { XAxis } from "./metric-chart";

export type ComparedIntervention = Comparison["interventions"][number][number];

/** "epoch 12 (step 340) · Erin Engineer: training.learningRate 0.03 → 0.005 — “why”", as on the run page. */
function decisionText(i: ComparedIntervention): string {
  return `epoch ${i.appliedAtEpoch} (step ${i.appliedAtStep}) · ${i.requestedBy.name}: ${describeChanges(i)} — “${i.rationale}”`;
}

/**
 * One marker per intervention of each run on the x axis chosen: its epoch, its global step, or on wall time the
 * seconds from that run's first point of the chart's metric (`wallOffsetsMs[i]`, how the chart places that run).
 */
export function interventionMarkers(
  runs: readonly { name: string }[],
  interventions: readonly (readonly ComparedIntervention[])[],
  xAxis: XAxis,
  wallOffsetsMs: readonly number[],
): ChartMarker[] {
  return runs.flatMap((r, i) =>
    (interventions[i] ?? []).map((d) => ({
      x:
        xAxis === "epoch"
          ? d.appliedAtEpoch
          : xAxis === "step"
            ? d.appliedAtStep
            : (Date.parse(d.appliedAt) - (wallOffsetsMs[i] ?? 0)) / 1000,
      title: `${r.name}\n${decisionText(d)}`,
      color: runColor(i),
    })),
  );
}

export function InFlightDecisions({ comparison }: { comparison: Comparison }) {
  const rows = comparison.runs.flatMap((r, i) => (comparison.interventions[i] ?? []).map((d) => ({ run: r, index: i, d })));
  return (
    <div style={{ marginTop: 12 }}>
      <h3 id="inflight-decisions" style={{ margin: "0 0 4px" }}>
        In-flight decisions
      </h3>
      {rows.length === 0 ? (
        <p className="muted" style={{ margin: 0, fontSize: 13 }}>
          None of these runs was piloted while it trained: no interventions took effect, so the curves carry no markers.
        </p>
      ) : (
        <div style={{ overflowX: "auto" }}>
          <table aria-labelledby="inflight-decisions" style={{ fontSize: 13 }}>
            <thead>
              <tr>
                <th scope="col">Run</th>
                <th scope="col">Epoch</th>
                <th scope="col">By</th>
                <th scope="col">Change</th>
                <th scope="col">Rationale</th>
                <th scope="col">Watched metric before → after (effect)</th>
              </tr>
            </thead>
            <tbody>
              {rows.map(({ run, index, d }) => (
                <tr key={d.id}>
                  <td>
                    <span className="marker-swatch" aria-hidden="true" style={{ borderLeftColor: runColor(index) }} />
                    <span style={{ color: runColor(index), fontWeight: 600 }}>{run.name}</span>
                  </td>
                  <td className="mono">
                    {d.appliedAtEpoch} <span className="muted">(step {d.appliedAtStep})</span>
                  </td>
                  <td>{d.requestedBy.name}</td>
                  <td className="mono">{describeChanges(d)}</td>
                  <td>{d.rationale}</td>
                  <td>{describeEffect(d) ?? <span className="muted">no watched metric recorded</span>}</td>
                </tr>
              ))}
            </tbody>
          </table>
        </div>
      )}
    </div>
  );
}
