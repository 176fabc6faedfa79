/**
 * The options every chart.js line chart in the app shares (run page's LineChart, the compare page's OverlayChart):
 * numeric x, no animation, pre-parsed points, nearest-point tooltips, a title, and a linear or log y axis. Each chart
 * adds only its own plugins (legend, decimation, zoom) on top, so the charts cannot drift apart in the basics.
 *
 * Invariant: importing this registers the chart.js parts those base options need, once, in the browser bundle, and
 * installs the colour theme (chart-theme.ts: axes, grid and labels readable in light and dark mode).
 */
import {
  Chart,
  LineController,
  LineElement,
  PointElement,
  LinearScale,
  LogarithmicScale,
  Tooltip,
  Title,
  type ChartOptions,
} from "chart.js";
import "./chart-theme";

Chart.register(LineController, LineElement, PointElement, LinearScale, LogarithmicScale, Tooltip, Title);

export type XYPoint = { x: number; y: number };

export function baseLineOptions({
  title,
  xLabel,
  yLabel,
  logY,
}: {
  title: string;
  xLabel: string;
  yLabel: string;
  logY: boolean;
}): ChartOptions<"line"> & {
  plugins: NonNullable<ChartOptions<"line">["plugins"]>;
} {
  return {
    animation: false,
    parsing: false,
    normalized: true,
    maintainAspectRatio: false,
    interaction: { mode: "nearest", intersect: false },
    plugins: { title: { display: true, text: title } },
    scales: {
      x: { type: "linear", title: { display: true, text: xLabel } },
      y: { type: logY ? "logarithmic" : "linear", title: { display: true, text: yLabel } },
    },
  };
}
