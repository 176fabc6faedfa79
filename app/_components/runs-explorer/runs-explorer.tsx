"use client";
/**
 * The runs explorer: filter box, column chooser, group-by summary and the virtualised runs table, with
 * checkbox selection leading to the compare view. One experiment's runs, or every run when experimentId is
 * undefined. View state lives in the URL (explorer-url.ts); the selection lives in the page.
 */
import { useCallback, useState } from "react";
import { useRouter } from "next/navigation";
import { useQuery } from "@tanstack/react-query";
import type { RowSelectionState } from "@tanstack/react-table";
import { useTRPC } from "@/app/_trpc/client";
import { FilterBox } from "./filter-box";
import { ColumnChooser } from "./column-chooser";
import { ExportButtons } from "./export-buttons";
import { AnnotateDialog } from "./annotate-dialog";
import { useMe } from "@/app/_components/shell";
import type { RunRow } from "@/server/runs/explore";
import { GroupPanel } from "./group-panel";
import { RunsGrid } from "./runs-grid";
import { useExplorerView } from "./explorer-url";
import "./explorer.css";

const MAX_COMPARE = 20;

export function RunsExplorer({ experimentId }: { experimentId?: number }) {
  const trpc = useTRPC();
  const router = useRouter();
  const [view, setView] = useExplorerView();
  const [selection, setSelection] = useState<RowSelectionState>({});
  const [searchError, setSearchError] = useState<unknown>(null);
  const columnInfo = useQuery(trpc.explore.columns.queryOptions({ experimentId }));
  const selectedIds = Object.keys(selection)
    .filter((k) => selection[k])
    .map(Number);
  const canCompare = selectedIds.length >= 2 && selectedIds.length <= MAX_COMPARE;
  const onError = useCallback((e: unknown) => setSearchError(e), []);
  const me = useMe();
  const [editing, setEditing] = useState<RunRow | null>(null);
  const onEdit = useCallback((run: RunRow) => setEditing(run), []);

  return (
    <div className="explorer">
      <section className="panel" aria-label="Find runs">
        <FilterBox value={view.filter} error={searchError} onApply={(filter) => setView({ filter })} />
        <div className="row" style={{ marginTop: 10 }}>
          <ColumnChooser info={columnInfo.data} chosen={view.columns} onChange={(columns) => setView({ columns })} />
          <ExportButtons view={{ experimentId, filter: view.filter, sort: view.sort, columns: view.columns }} />
          <span className="spacer" />
          {selectedIds.length ? (
            <button type="button" onClick={() => setSelection({})}>
              Clear selection
            </button>
          ) : null}
          <button
            type="button"
            className="primary"
            disabled={!canCompare}
            title={canCompare ? "Compare the selected runs side by side" : `Select between 2 and ${MAX_COMPARE} runs`}
            onClick={() => router.push(`/compare?ids=${selectedIds.join(",")}`)}
          >
            Compare ({selectedIds.length})
          </button>
        </div>
        {selectedIds.length > MAX_COMPARE ? (
          <p className="error-text">
            At most {MAX_COMPARE} runs can be compared; {selectedIds.length} are selected.
          </p>
        ) : null}
      </section>
      <GroupPanel
        experimentId={experimentId}
        filter={view.filter}
        info={columnInfo.data}
        group={view.group}
        metric={view.groupMetric}
        onChange={(group, groupMetric) => setView({ group, groupMetric })}
        onPickGroup={(clause) => setView({ filter: view.filter ? `(${view.filter}) AND ${clause}` : clause })}
      />
      {editing ? <AnnotateDialog key={editing.id} run={editing} onClose={() => setEditing(null)} /> : null}
      <section className="panel" aria-label="Runs table">
        <RunsGrid
          query={{ experimentId, filter: view.filter, sort: view.sort, columns: view.columns }}
          selection={selection}
          onSelectionChange={setSelection}
          onSortChange={(sort) => setView({ sort })}
          onError={onError}
          onEdit={me.data?.role === "engineer" ? onEdit : undefined}
        />
      </section>
    </div>
  );
}
