"use client";
/**
 * The runs table: TanStack Table (v9) for columns, server-side sorting and row selection; TanStack Virtual
 * renders only the rows in view, so 10,000 runs scroll smoothly. Rows are fetched in pages of PAGE_SIZE as
 * they come into view (a scrollbar jump to the end loads only the pages shown), each page cached by
 * TanStack Query. The table is given only the rendered window of rows (TanStack Virtual decides which);
 * spacer rows above and below are aria-hidden, so the table's visible rows are its accessible rows.
 */
import { memo, useEffect, useMemo, useRef, type RefObject } from "react";
import { useQueries, useQuery, keepPreviousData } from "@tanstack/react-query";
import { useVirtualizer } from "@tanstack/react-virtual";
import { useTable, type RowSelectionState, type SortingState, type Updater } from "@tanstack/react-table";
import { useTRPC } from "@/app/_trpc/client";
import { Empty } from "@/app/_components/states";
import { formatCount } from "@/app/_components/format";
import type { RunRow } from "@/server/runs/explore";
import { FIXED_WIDTHS, features, numeric, useGridColumns, type GridRow } from "./runs-grid-columns";
import type { SortField } from "./explorer-url";

export const PAGE_SIZE = 200;
const ROW_HEIGHT = 34;
/** The runs box's height limit: past it the rows scroll inside the box (virtualized). */
const MAX_BOX_HEIGHT = 600;
const active = (r: RunRow) => r.status === "running" || r.status === "queued";

type RowViewProps = {
  row: ReturnType<ReturnType<typeof useTable<typeof features, GridRow>>["getRowModel"]>["rows"][number];
  index: number;
  run: RunRow | null;
  selected: boolean;
  columnsKey: string;
  numeric: (id: string) => boolean;
  Cell: ReturnType<typeof useTable<typeof features, GridRow>>["FlexRender"];
};

/**
 * One table row. Memoised on what it shows (the run object from the query cache, selection, the column set):
 * while scrolling, rows that stay in view are not re-rendered, only those entering it.
 */
const RowView = memo(
  function RowView({ row, index, selected, numeric: isNumeric, Cell }: RowViewProps) {
    return (
      <tr data-index={index} style={{ height: ROW_HEIGHT }} aria-rowindex={index + 2} className={selected ? "selected" : undefined}>
        {row.getAllCells().map((cell) => (
          <td key={cell.id} className={isNumeric(cell.column.id) ? "num" : undefined}>
            <Cell cell={cell} />
          </td>
        ))}
      </tr>
    );
  },
  (a, b) => a.run === b.run && a.selected === b.selected && a.columnsKey === b.columnsKey && a.index === b.index && a.run !== null,
);

export type GridQuery = { experimentId?: number; filter: string; sort: SortField[]; columns: string[] };

/**
 * The rows in view: the first page (which also gives the total), the later pages the virtualizer's window covers,
 * and the window itself as GridRows. Pages refetch every 2 s while one of their runs is queued or running.
 */
function useRunWindow(query: GridQuery, scrollRef: RefObject<HTMLDivElement | null>) {
  const trpc = useTRPC();
  const base = {
    experimentId: query.experimentId,
    filter: query.filter || undefined,
    sort: query.sort,
    columns: query.columns,
    limit: PAGE_SIZE,
  };
  const pageOptions = (page: number) => ({
    ...trpc.explore.search.queryOptions({ ...base, offset: page * PAGE_SIZE }),
    refetchInterval: (q: { state: { data?: { rows: RunRow[] } } }) => (q.state.data?.rows.some(active) ? 2000 : false),
  });
  const first = useQuery({ ...pageOptions(0), placeholderData: keepPreviousData });
  // A bad filter: no rows (not the previous filter's rows kept as placeholder); the filter box shows why.
  const total = first.error ? 0 : (first.data?.total ?? 0);

  const virtualizer = useVirtualizer({
    count: total,
    getScrollElement: () => scrollRef.current,
    estimateSize: () => ROW_HEIGHT,
    overscan: 12,
  });
  const items = virtualizer.getVirtualItems();
  const firstIndex = items[0]?.index ?? 0;
  const lastIndex = items.at(-1)?.index ?? 0;
  const pages: number[] = [];
  for (let p = Math.floor(firstIndex / PAGE_SIZE); p <= Math.floor(lastIndex / PAGE_SIZE); p++) if (p > 0) pages.push(p);
  const later = useQueries({ queries: pages.map(pageOptions) });

  const laterKey = later.map((q) => q.dataUpdatedAt).join(",");
  // The table models only the rendered window (≈ viewport + overscan), not all `total` rows: scrolling then
  // rebuilds a few dozen rows per frame instead of 10,000. Row ids are run ids, so selection survives.
  const data = useMemo<GridRow[]>(() => {
    const loaded = new Map<number, RunRow[]>();
    if (first.data && !first.error) loaded.set(0, first.data.rows);
    pages.forEach((p, i) => {
      const rows = later[i]?.data?.rows;
      if (rows) loaded.set(p, rows);
    });
    if (total === 0) return [];
    return Array.from({ length: lastIndex - firstIndex + 1 }, (_, k) => {
      const index = firstIndex + k;
      return { index, run: loaded.get(Math.floor(index / PAGE_SIZE))?.[index % PAGE_SIZE] ?? null };
    });
    // eslint-disable-next-line react-hooks/exhaustive-deps
  }, [first.data, first.error, laterKey, total, firstIndex, lastIndex]);
  return { first, total, virtualizer, items, firstIndex, data };
}

export function RunsGrid({
  query,
  selection,
  onSelectionChange,
  onSortChange,
  onError,
  onEdit,
}: {
  query: GridQuery;
  selection: RowSelectionState;
  onSelectionChange: (s: RowSelectionState) => void;
  onSortChange: (sort: SortField[]) => void;
  onError: (error: unknown) => void;
  /** Engineers only: the name cell's "Edit" button (name, description, tags). */
  onEdit?: (run: RunRow) => void;
}) {
  const scrollRef = useRef<HTMLDivElement>(null);
  const { first, total, virtualizer, items, firstIndex, data } = useRunWindow(query, scrollRef);
  useEffect(() => onError(first.error ?? null), [first.error, onError]);

  const columns = useGridColumns(query.columns, query.experimentId === undefined, onEdit);

  const sorting = useMemo<SortingState>(() => query.sort.map((s) => ({ id: s.field, desc: s.dir === "desc" })), [query.sort]);
  const table = useTable({
    features,
    columns,
    data,
    getRowId: (r) => (r.run ? String(r.run.id) : `pending-${r.index}`),
    state: { sorting, rowSelection: selection },
    manualSorting: true,
    sortDescFirst: true,
    onSortingChange: (u: Updater<SortingState>) => {
      const next = typeof u === "function" ? u(sorting) : u;
      onSortChange(next.length ? next.map((s) => ({ field: s.id, dir: s.desc ? "desc" : "asc" })) : [{ field: "created", dir: "desc" }]);
    },
    enableRowSelection: (row) => row.original.run !== null,
    onRowSelectionChange: (u: Updater<RowSelectionState>) => onSelectionChange(typeof u === "function" ? u(selection) : u),
  });

  const rows = table.getRowModel().rows;
  // Rows are memoised on this key: it changes with the column set and with the Edit button (known once "me" loads).
  const columnsKey = `${table
    .getAllLeafColumns()
    .map((c) => c.id)
    .join("|")}${onEdit ? "|edit" : ""}`;
  const widthOf = (id: string) => FIXED_WIDTHS[id] ?? 150;
  const tableWidth = table.getAllLeafColumns().reduce((n, c) => n + widthOf(c.id), 0);
  const padTop = items[0]?.start ?? 0;
  const padBottom = items.length ? virtualizer.getTotalSize() - (items.at(-1)?.end ?? 0) : 0;

  return (
    <div>
      <p className="muted" aria-live="polite" style={{ margin: "0 0 6px" }}>
        {first.error
          ? "No runs shown: the filter has an error."
          : first.isPending
            ? "Loading runs…"
            : `${formatCount(total)} run${total === 1 ? "" : "s"}${query.filter ? " match the filter" : ""}`}
        {first.isFetching && !first.isPending ? " · refreshing" : ""}
      </p>
      {!first.isPending && !first.error && total === 0 ? (
        query.filter ? (
          <Empty title="No runs match the filter" hint="Loosen the filter or clear it to see every run." />
        ) : (
          <Empty title="No runs yet" hint="Engineers launch runs with “New run”; they appear here as they train." />
        )
      ) : null}
      <div
        ref={scrollRef}
        className="grid-scroll"
        hidden={total === 0}
        // As tall as its rows, up to MAX_BOX_HEIGHT (then it scrolls): a fixed height for 3 rows left a blank band
        // under one or two runs.
        style={{ maxHeight: MAX_BOX_HEIGHT, overflow: "auto" }}
        data-testid="runs-scroll"
      >
        <table aria-label="Runs" aria-rowcount={total + 1} style={{ tableLayout: "fixed", width: Math.max(tableWidth, 600) }}>
          <colgroup>
            {table.getAllLeafColumns().map((c) => (
              <col key={c.id} style={{ width: widthOf(c.id) }} />
            ))}
          </colgroup>
          <thead className="sticky">
            {table.getHeaderGroups().map((group) => (
              <tr key={group.id}>
                {group.headers.map((header) => {
                  const sorted = header.column.getIsSorted();
                  const canSort = header.column.getCanSort();
                  return (
                    <th
                      key={header.id}
                      className={numeric(header.id) ? "num" : undefined}
                      aria-sort={sorted === "asc" ? "ascending" : sorted === "desc" ? "descending" : undefined}
                    >
                      {canSort ? (
                        <button
                          type="button"
                          className="th-sort"
                          onClick={header.column.getToggleSortingHandler()}
                          title="Sort (shift-click adds a sort key)"
                        >
                          <table.FlexRender header={header} />
                          <span aria-hidden="true">{sorted === "asc" ? " ▲" : sorted === "desc" ? " ▼" : ""}</span>
                        </button>
                      ) : (
                        <table.FlexRender header={header} />
                      )}
                    </th>
                  );
                })}
              </tr>
            ))}
          </thead>
          <tbody>
            {padTop > 0 ? (
              <tr aria-hidden="true" style={{ height: padTop }}>
                <td colSpan={columns.length} style={{ padding: 0, border: 0 }} />
              </tr>
            ) : null}
            {items.map((item) => {
              const row = rows[item.index - firstIndex];
              if (!row) return null;
              return (
                <RowView
                  key={row.id}
                  row={row}
                  index={item.index}
                  run={row.original.run}
                  selected={row.getIsSelected()}
                  columnsKey={columnsKey}
                  numeric={numeric}
                  Cell={table.FlexRender}
                />
              );
            })}
            {padBottom > 0 ? (
              <tr aria-hidden="true" style={{ height: padBottom }}>
                <td colSpan={columns.length} style={{ padding: 0, border: 0 }} />
              </tr>
            ) : null}
          </tbody>
        </table>
      </div>
    </div>
  );
}
