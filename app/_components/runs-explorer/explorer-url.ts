"use client";
/**
 * The runs explorer's view state, kept in the URL so a view can be shared: q (filter), sort
 * ("field:asc|desc", several joined by ","), cols (column fields joined by ","), group and gm (group-by field
 * and the metric summarised per group). Updates use router.replace (no history entry per keystroke).
 */
import { useCallback, useEffect, useState } from "react";
import { usePathname, useRouter, useSearchParams } from "next/navigation";

/** Metrics first (issue 14): the chooser lists them in this order; the grid shows metric columns before params anyway. */
export const DEFAULT_COLUMNS = [
  "metrics.val_accuracy",
  "metrics.val_loss",
  "params.training.optimizer.name",
  "params.training.learningRate",
  "params.training.batchSize",
  "params.training.epochs",
];
export const DEFAULT_SORT: SortField[] = [{ field: "created", dir: "desc" }];

export type SortField = { field: string; dir: "asc" | "desc" };
export type ExplorerView = { filter: string; sort: SortField[]; columns: string[]; group: string; groupMetric: string };

/** Column and sort fields never contain "," (params paths and metric keys are dotted identifiers). */
export function parseSort(text: string | null): SortField[] {
  if (!text) return DEFAULT_SORT;
  const out = text.split(",").flatMap((part): SortField[] => {
    const i = part.lastIndexOf(":");
    const field = i > 0 ? part.slice(0, i) : part;
    const dir = i > 0 && part.slice(i + 1) === "asc" ? "asc" : "desc";
    return field ? [{ field, dir }] : [];
  });
  return out.length ? out : DEFAULT_SORT;
}

function viewFromUrl(params: URLSearchParams): ExplorerView {
  return {
    filter: params.get("q") ?? "",
    sort: parseSort(params.get("sort")),
    columns: params.has("cols") ? (params.get("cols") ?? "").split(",").filter(Boolean) : DEFAULT_COLUMNS,
    group: params.get("group") ?? "",
    groupMetric: params.get("gm") ?? "",
  };
}

/**
 * The view and its setter. The setter updates local state at once (controls respond in the same frame) and
 * the URL after; a URL change from outside (back/forward, a pasted link) resets the view from the URL.
 */
export function useExplorerView(): [ExplorerView, (patch: Partial<ExplorerView>) => void] {
  const params = useSearchParams();
  const router = useRouter();
  const pathname = usePathname();
  const query = params.toString();
  const [view, setView] = useState<ExplorerView>(() => viewFromUrl(new URLSearchParams(query)));
  useEffect(() => setView(viewFromUrl(new URLSearchParams(query))), [query]);
  const update = useCallback(
    (patch: Partial<ExplorerView>) => {
      setView((v) => ({ ...v, ...patch, ...(patch.filter !== undefined ? { filter: patch.filter.trim() } : {}) }));
      const next = new URLSearchParams(query);
      const set = (k: string, v: string | null) => (v === null || v === "" ? next.delete(k) : next.set(k, v));
      if (patch.filter !== undefined) set("q", patch.filter.trim());
      if (patch.sort !== undefined) set("sort", patch.sort.map((s) => `${s.field}:${s.dir}`).join(","));
      if (patch.columns !== undefined) next.set("cols", patch.columns.join(","));
      if (patch.group !== undefined) set("group", patch.group);
      if (patch.groupMetric !== undefined) set("gm", patch.groupMetric);
      const qs = next.toString();
      router.replace(qs ? `${pathname}?${qs}` : pathname, { scroll: false });
    },
    [query, router, pathname],
  );
  return [view, update];
}
