"use client";
/**
 * The runs table's model and columns (used by runs-grid.tsx): rows are windows of the query's result, one GridRow
 * per position, with `run` null until its page has loaded. Order: selection, run name, the chosen metric columns,
 * status, the chosen param columns, then experiment/author/created/duration (issue 14: the metrics a person
 * compares runs by are in view at 1280 px without scrolling right). Within metrics and params the URL's order.
 *
 * Invariant: column ids are the sort fields the server understands ("name", "created", "metrics.x", "params.y"…),
 * so a header click sorts on the server by the same id.
 */
import Link from "next/link";
import { Fragment, useMemo } from "react";
import { createColumnHelper, rowSelectionFeature, rowSortingFeature, tableFeatures } from "@tanstack/react-table";
import { StatusBadge } from "@/app/_components/status-badge";
import { formatDuration, formatMetric, formatTime } from "@/app/_components/format";
import type { RunRow } from "@/server/runs/explore";
import { columnLabel, formatParam, metricRowKey, parseColumn, type ChosenColumn } from "./column-fields";

export const features = tableFeatures({ rowSortingFeature, rowSelectionFeature });
export type GridRow = { index: number; run: RunRow | null };
const helper = createColumnHelper<typeof features, GridRow>();

export const FIXED_WIDTHS: Record<string, number> = {
  select: 40,
  name: 260,
  status: 110,
  experiment: 150,
  author: 120,
  created: 190,
  duration: 110,
};

export const numeric = (id: string) => id === "duration" || id.startsWith("metrics.");

/**
 * A column label that may wrap after each dot ("training.<wbr>learningRate"): a header wraps onto a second line at its
 * column's width instead of being cut off ("TRAINING.LEAR…"); its title still holds the full field.
 */
function wrappableLabel(label: string) {
  const parts = label.split(".");
  return parts.map((part, i) => (
    <Fragment key={i}>
      {part}
      {i < parts.length - 1 ? (
        <>
          .<wbr />
        </>
      ) : null}
    </Fragment>
  ));
}

/** The table's columns for the chosen param/metric fields; the experiment column only across experiments. */
export function useGridColumns(chosenFields: string[], crossExperiment: boolean, onEdit?: (run: RunRow) => void) {
  const chosen = useMemo(() => chosenFields.flatMap((f) => parseColumn(f) ?? []), [chosenFields]);
  return useMemo(() => {
    const chosenColumn = (c: ChosenColumn) =>
      helper.accessor((r) => (c.kind === "param" ? r.run?.params[c.path] : r.run?.metrics[metricRowKey(c)]), {
        id: c.field,
        header: () => <span title={c.field}>{wrappableLabel(columnLabel(c))}</span>,
        cell: ({ row }) => {
          const run = row.original.run;
          if (!run) return null;
          return c.kind === "param" ? formatParam(run.params[c.path]) : formatMetric(run.metrics[metricRowKey(c)], c.key);
        },
      });
    return helper.columns([
      helper.display({
        id: "select",
        header: () => <span className="sr-only">Select</span>,
        cell: ({ row }) =>
          row.original.run ? (
            <input
              type="checkbox"
              aria-label={`Select run ${row.original.run.name}`}
              checked={row.getIsSelected()}
              onChange={row.getToggleSelectedHandler()}
            />
          ) : null,
        enableSorting: false,
      }),
      helper.accessor((r) => r.run?.name, {
        id: "name",
        header: "Run",
        cell: ({ row }) =>
          row.original.run ? (
            <span className="name-cell" title={row.original.run.description || undefined}>
              <span className="name-text">
                <Link href={`/runs/${row.original.run.id}`}>{row.original.run.name}</Link>{" "}
                <span className="muted">#{row.original.run.id}</span>
                {row.original.run.tags.length ? <span className="muted"> · {row.original.run.tags.join(", ")}</span> : null}
              </span>
              {onEdit ? (
                <>
                  <button
                    type="button"
                    className="link-button"
                    aria-label={`Edit run ${row.original.run.name}`}
                    onClick={() => onEdit(row.original.run!)}
                  >
                    Edit
                  </button>
                </>
              ) : null}
            </span>
          ) : (
            <span className="muted">loading…</span>
          ),
      }),
      ...chosen.filter((c) => c.kind === "metric").map(chosenColumn),
      helper.accessor((r) => r.run?.status, {
        id: "status",
        header: "Status",
        cell: ({ row }) => (row.original.run ? <StatusBadge status={row.original.run.status} /> : null),
      }),
      ...chosen.filter((c) => c.kind === "param").map(chosenColumn),
      ...(crossExperiment
        ? [
            helper.accessor((r) => r.run?.experimentName, {
              id: "experiment",
              header: "Experiment",
              cell: ({ row }) =>
                row.original.run ? (
                  <Link href={`/experiments/${row.original.run.experimentId}`}>{row.original.run.experimentName}</Link>
                ) : null,
            }),
          ]
        : []),
      helper.accessor((r) => r.run?.author, { id: "author", header: "Author" }),
      helper.accessor((r) => r.run?.createdAt, {
        id: "created",
        header: "Created (UTC)",
        cell: ({ row }) => (row.original.run ? formatTime(row.original.run.createdAt) : null),
      }),
      helper.accessor((r) => r.run?.durationMs, {
        id: "duration",
        header: "Duration",
        cell: ({ row }) => (row.original.run ? formatDuration(row.original.run.durationMs) : null),
      }),
    ]);
  }, [chosen, crossExperiment, onEdit]);
}
