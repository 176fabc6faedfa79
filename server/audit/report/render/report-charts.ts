/**
 * The training-curve charts of every run in the report: loss, and accuracy (or mae for regression), per epoch,
 * train and validation. Pure: same facts → same charts and the same SVG bytes (`export --verify` re-renders them).
 */
import type { ReportFacts } from "../collect-report";
import { renderLineChartSvg, type ChartSeries, type LineChartOptions } from "./line-chart-svg";
import type { ReportChart } from "./report-types";

function chart(runId: number, file: string, series: ChartSeries[], options: LineChartOptions): ReportChart {
  return { runId, file, title: options.title, series, options, svg: renderLineChartSvg(series, options) };
}

export function renderReportCharts(facts: ReportFacts): ReportChart[] {
  const charts: ReportChart[] = [];
  for (const r of facts.training) {
    const c = r.curves;
    const series = (keys: string[]) => keys.filter((k) => c[k]?.length).map((k) => ({ name: k, points: c[k]! }));
    const loss = series(["loss", "val_loss"]);
    if (loss.length)
      charts.push(
        chart(r.id, `charts/run-${r.id}-loss.svg`, loss, { title: `Run #${r.id}: loss per epoch`, xLabel: "epoch", yLabel: "loss" }),
      );
    const metricKey = c.accuracy?.length || c.val_accuracy?.length ? "accuracy" : c.mae?.length || c.val_mae?.length ? "mae" : null;
    if (metricKey)
      charts.push(
        chart(r.id, `charts/run-${r.id}-${metricKey}.svg`, series([metricKey, `val_${metricKey}`]), {
          title: `Run #${r.id}: ${metricKey} per epoch`,
          xLabel: "epoch",
          yLabel: metricKey,
        }),
      );
  }
  return charts;
}
