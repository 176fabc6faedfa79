"use client";
/**
 * A run's description, written in Markdown after launch and shown on the run page (issue 14 point 12). Engineers edit
 * it here with a live preview; saving goes through runs.annotate, the same service and run.annotate event as the runs
 * table (config untouched). Other roles read it without the edit control.
 *
 * Rendering is react-markdown's safe default: no raw HTML (an HTML tag in the text is shown as text, a <script> never
 * runs), and link and image URLs pass its URL filter (javascript: and other unsafe schemes are dropped). Links open with
 * rel="noopener noreferrer nofollow".
 */
import { useState } from "react";
import { MarkdownText } from "@/app/_components/markdown-text";
import { useMutation, useQueryClient } from "@tanstack/react-query";
import { useTRPC } from "@/app/_trpc/client";
import type { Me } from "@/app/_components/shell";
import { FormError } from "@/app/_components/states";

/** The server's limit (server/runs/annotate.ts). */
const MAX_DESCRIPTION = 4000;

export function RunDescription({ runId, description, me }: { runId: number; description: string; me: Me }) {
  const [editing, setEditing] = useState(false);
  const canEdit = me.role === "engineer";
  return (
    <section className="panel" aria-label="Description">
      <div className="row">
        <h2 style={{ margin: 0 }}>Description</h2>
        <span className="spacer" />
        {canEdit && !editing ? (
          <button type="button" onClick={() => setEditing(true)}>
            {description ? "Edit description" : "Add a description"}
          </button>
        ) : null}
      </div>
      {editing ? (
        <DescriptionForm runId={runId} description={description} onDone={() => setEditing(false)} />
      ) : description ? (
        <MarkdownText text={description} label="Run description" />
      ) : (
        <p className="muted" style={{ marginBottom: 0 }}>
          No description yet.{canEdit ? " Say what this run tries and what you learned from it (Markdown)." : ""}
        </p>
      )}
    </section>
  );
}

function DescriptionForm({ runId, description, onDone }: { runId: number; description: string; onDone: () => void }) {
  const trpc = useTRPC();
  const qc = useQueryClient();
  const [text, setText] = useState(description);
  const save = useMutation(
    trpc.runs.annotate.mutationOptions({
      onSuccess: async () => {
        await qc.invalidateQueries({ queryKey: trpc.runs.get.queryKey({ id: runId }) });
        onDone();
      },
    }),
  );
  const unchanged = text.trim() === description.trim();
  return (
    <form
      aria-label="Edit description"
      onSubmit={(e) => {
        e.preventDefault();
        save.mutate({ runId, description: text });
      }}
    >
      {/* Side by side where there is room, stacked on a phone. */}
      <div style={{ display: "grid", gap: 12, gridTemplateColumns: "repeat(auto-fit, minmax(min(280px, 100%), 1fr))" }}>
        <label className="field">
          <span>
            Markdown: headings, lists, links, code; HTML is shown as text ({text.length.toLocaleString("en-US")} of{" "}
            {MAX_DESCRIPTION.toLocaleString("en-US")} characters)
          </span>
          <textarea
            aria-label="Description (Markdown)"
            rows={8}
            value={text}
            maxLength={MAX_DESCRIPTION}
            onChange={(e) => setText(e.target.value)}
            style={{ width: "100%" }}
          />
        </label>
        <div>
          <span className="muted">Preview</span>
          {text.trim() ? (
            <MarkdownText text={text} label="Description preview" />
          ) : (
            <p className="muted" aria-label="Description preview">
              Nothing to preview yet.
            </p>
          )}
        </div>
      </div>
      <p className="muted" style={{ margin: "4px 0" }}>
        Saving records a run.annotate event in the audit ledger (who changed the description, from what, to what); the run&apos;s
        configuration does not change.
      </p>
      <FormError error={save.error} />
      <div className="row">
        <button className="primary" type="submit" disabled={save.isPending || unchanged}>
          Save description
        </button>
        <button type="button" onClick={onDone}>
          Cancel
        </button>
      </div>
    </form>
  );
}
