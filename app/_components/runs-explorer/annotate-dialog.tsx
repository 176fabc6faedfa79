"use client";
/**
 * Editing a run's name, description and tags from the runs table (issue 14), for engineers. Saving sends only what
 * changed: removed tags (runs.removeTag), added tags (runs.addTag), then name and description (runs.annotate); each
 * call is one server transaction with its audit event, the run's config is never touched. The server's refusal
 * is shown verbatim; after a save the table's pages are read again so the row shows the new values.
 */
import { useState, type FormEvent } from "react";
import { useMutation, useQueryClient } from "@tanstack/react-query";
import { useTRPC } from "@/app/_trpc/client";
import type { RunRow } from "@/server/runs/explore";

const splitTags = (text: string) => [
  ...new Set(
    text
      .split(",")
      .map((t) => t.trim())
      .filter(Boolean),
  ),
];

export function AnnotateDialog({ run, onClose }: { run: RunRow; onClose: () => void }) {
  const trpc = useTRPC();
  const queryClient = useQueryClient();
  const [name, setName] = useState(run.name);
  const [description, setDescription] = useState(run.description);
  const [tags, setTags] = useState(run.tags.join(", "));
  const [error, setError] = useState<string | null>(null);
  const annotate = useMutation(trpc.runs.annotate.mutationOptions());
  const addTag = useMutation(trpc.runs.addTag.mutationOptions());
  const removeTag = useMutation(trpc.runs.removeTag.mutationOptions());
  const [saving, setSaving] = useState(false);

  async function save(e: FormEvent) {
    e.preventDefault();
    setSaving(true);
    setError(null);
    try {
      const wanted = splitTags(tags);
      for (const tag of run.tags.filter((t) => !wanted.includes(t))) await removeTag.mutateAsync({ runId: run.id, tag });
      for (const tag of wanted.filter((t) => !run.tags.includes(t))) await addTag.mutateAsync({ runId: run.id, tag });
      const patch = {
        ...(name.trim() !== run.name ? { name } : {}),
        ...(description.trim() !== run.description ? { description } : {}),
      };
      if (Object.keys(patch).length) await annotate.mutateAsync({ runId: run.id, ...patch });
      await queryClient.invalidateQueries({ queryKey: trpc.explore.search.pathKey() });
      onClose();
    } catch (err) {
      setError(err instanceof Error ? err.message : String(err));
      // Part of the changes may be saved (each is its own transaction): show the table as it now is.
      await queryClient.invalidateQueries({ queryKey: trpc.explore.search.pathKey() });
    } finally {
      setSaving(false);
    }
  }

  return (
    <section className="panel annotate" role="dialog" aria-label={`Edit run #${run.id}`}>
      <form onSubmit={(e) => void save(e)}>
        <h2 style={{ marginTop: 0 }}>Edit run #{run.id}</h2>
        <p className="muted">
          Name, description and tags only: the run&apos;s configuration never changes. Each change is recorded in the audit log.
        </p>
        <label className="field">
          Run name
          <input value={name} onChange={(e) => setName(e.target.value)} maxLength={120} required />
        </label>
        <label className="field">
          Description
          <textarea value={description} onChange={(e) => setDescription(e.target.value)} maxLength={4000} rows={3} />
        </label>
        <label className="field">
          Tags (comma-separated)
          <input value={tags} onChange={(e) => setTags(e.target.value)} placeholder="baseline, candidate" />
        </label>
        {error ? (
          <p className="error-text" role="alert">
            {error}
          </p>
        ) : null}
        <div className="row">
          <button type="submit" className="primary" disabled={saving}>
            {saving ? "Saving…" : "Save"}
          </button>
          <button type="button" onClick={onClose} disabled={saving}>
            Cancel
          </button>
        </div>
      </form>
    </section>
  );
}
