"use client";
/**
 * "Export CSV" / "Export JSON" of the runs table's current view (filter, sort, chosen columns). The file is
 * generated on the server (tRPC explore.export, same filter parser and sort as the table) and handed to the
 * browser as a download; the server caps it at EXPORT_MAX_ROWS runs and the note under the buttons says when
 * the file holds only the first of them.
 */
import { useState } from "react";
import { useQueryClient } from "@tanstack/react-query";
import { useTRPC } from "@/app/_trpc/client";
import { formatCount } from "@/app/_components/format";
import type { SortField } from "./explorer-url";

type View = { experimentId?: number; filter: string; sort: SortField[]; columns: string[] };

export function ExportButtons({ view }: { view: View }) {
  const trpc = useTRPC();
  const queryClient = useQueryClient();
  const [busy, setBusy] = useState(false);
  const [note, setNote] = useState<{ text: string; error: boolean } | null>(null);

  async function download(format: "csv" | "json") {
    setBusy(true);
    setNote(null);
    try {
      const out = await queryClient.fetchQuery({
        ...trpc.explore.export.queryOptions({
          experimentId: view.experimentId,
          filter: view.filter || undefined,
          sort: view.sort,
          columns: view.columns,
          format,
        }),
        staleTime: 0,
      });
      const url = URL.createObjectURL(new Blob([out.content], { type: out.mimeType }));
      const a = document.createElement("a");
      a.href = url;
      a.download = out.fileName;
      document.body.append(a);
      a.click();
      a.remove();
      // Revoked later: some browsers start reading the blob after click() returns.
      setTimeout(() => URL.revokeObjectURL(url), 10_000);
      setNote({
        text: out.truncated
          ? `Exported the first ${formatCount(out.rows)} of ${formatCount(out.total)} runs (the export is capped); narrow the filter for the rest.`
          : `Exported ${formatCount(out.rows)} run${out.rows === 1 ? "" : "s"} as ${format.toUpperCase()}.`,
        error: false,
      });
    } catch (e) {
      setNote({ text: `Export failed: ${e instanceof Error ? e.message : String(e)}`, error: true });
    } finally {
      setBusy(false);
    }
  }

  return (
    <span className="row" role="group" aria-label="Export the view">
      <button type="button" disabled={busy} onClick={() => void download("csv")} title="Download the runs of this view as CSV">
        Export CSV
      </button>
      <button type="button" disabled={busy} onClick={() => void download("json")} title="Download the runs of this view as JSON">
        Export JSON
      </button>
      {note ? (
        <span className={note.error ? "error-text" : "muted"} role="status">
          {note.text}
        </span>
      ) : null}
    </span>
  );
}
