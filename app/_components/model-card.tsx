"use client";
/**
 * Model-card or datasheet sections written by people: each shows its latest version (author, time, sha256,
 * signatures, each with its signed record's hash short with a copy button) and history; engineers and reviewers
 * edit (every save is a new version) and sign it with their password (authorship; review for reviewers). Auditors
 * and admins read only. The author of a version is not offered its review (the option is disabled, with the reason
 * next to it: another reviewer must review it). The server enforces all of this.
 */
import { useState } from "react";
import { useMutation, useQuery, useQueryClient } from "@tanstack/react-query";
import { useTRPC } from "@/app/_trpc/client";
import type { Me } from "./shell";
import { Hash } from "./hash";
import { SignatureLine } from "./signature-line";
import { ErrorState, FormError, Loading } from "./states";
import { formatTime } from "./format";

type Subject = { subjectType: "model" | "dataset"; subjectId: number };

export function DocumentSections({ subject, me, title }: { subject: Subject; me: Me; title: string }) {
  const trpc = useTRPC();
  const docs = useQuery(trpc.documents.get.queryOptions(subject));
  if (docs.isPending) return <Loading what={`Loading ${title.toLowerCase()}`} />;
  if (docs.error) return <ErrorState error={docs.error} title={`Could not load the ${title.toLowerCase()}`} />;
  return (
    <section className="panel" aria-label={title}>
      <h2 style={{ marginTop: 0 }}>
        {title}: {docs.data.subjectName}
      </h2>
      {docs.data.sections.map((s) => (
        <SectionCard key={s.key} subject={subject} section={s} me={me} />
      ))}
    </section>
  );
}

type Section = { key: string; title: string; latest: Version | null; history: Version[] };
type Version = {
  id: number;
  version: number;
  body: string;
  author: string;
  authorId: number;
  createdAt: string;
  sha256: string;
  signatures: { id: number; text: string; recordSha256: string; comment: string }[];
};

function SectionCard({ subject, section, me }: { subject: Subject; section: Section; me: Me }) {
  const [editing, setEditing] = useState(false);
  const canEdit = me.role === "engineer" || me.role === "reviewer";
  const latest = section.latest;
  return (
    <article aria-label={`Section ${section.title}`} style={{ borderTop: "1px solid var(--line)", paddingTop: 10, marginTop: 10 }}>
      <div className="row">
        <h3 style={{ margin: 0 }}>{section.title}</h3>
        {latest ? (
          <span className="muted">
            v{latest.version} by {latest.author}, {formatTime(latest.createdAt)} · sha256{" "}
            <Hash value={latest.sha256} label={`${section.title} sha256`} />
          </span>
        ) : (
          <span className="muted">not written yet</span>
        )}
        <span className="spacer" />
        {canEdit && !editing ? (
          <button type="button" onClick={() => setEditing(true)}>
            {latest ? "Edit" : "Write"} {section.title.toLowerCase()}
          </button>
        ) : null}
      </div>
      {editing ? (
        <SectionEditForm subject={subject} section={section} onDone={() => setEditing(false)} />
      ) : latest ? (
        <p style={{ whiteSpace: "pre-wrap" }}>{latest.body}</p>
      ) : null}
      {latest && latest.signatures.length ? (
        <ul aria-label={`Signatures of ${section.title}`} style={{ paddingLeft: 18 }}>
          {latest.signatures.map((s) => (
            <SignatureLine key={s.id} s={s} />
          ))}
        </ul>
      ) : latest ? (
        <p className="muted">Not signed yet.</p>
      ) : null}
      {latest && canEdit && !editing ? <SignForm key={latest.id} section={section} version={latest} me={me} /> : null}
      {section.history.length > 1 ? (
        <details>
          <summary>History ({section.history.length} versions)</summary>
          <ol reversed>
            {section.history.map((h) => (
              <li key={h.id}>
                v{h.version} by {h.author}, {formatTime(h.createdAt)} · <code className="hash">{h.sha256.slice(0, 12)}…</code>
                <p style={{ whiteSpace: "pre-wrap", margin: "2px 0 8px" }}>{h.body}</p>
              </li>
            ))}
          </ol>
        </details>
      ) : null}
    </article>
  );
}

function useInvalidateDocuments() {
  const trpc = useTRPC();
  const qc = useQueryClient();
  return () => qc.invalidateQueries({ queryKey: trpc.documents.get.queryKey() });
}

/**
 * Writes a new version of one section through documents.update (the only write path: one document.update event each).
 * Also used by the "Request production" checklist to write a missing section in place; `onSaved` runs after the save.
 */
export function SectionEditForm({
  subject,
  section,
  onDone,
  onSaved,
}: {
  subject: Subject;
  section: Pick<Section, "key" | "title"> & { latest: Pick<Version, "body" | "version"> | null };
  onDone: () => void;
  onSaved?: () => void;
}) {
  const trpc = useTRPC();
  const invalidate = useInvalidateDocuments();
  const [body, setBody] = useState(section.latest?.body ?? "");
  const save = useMutation(
    trpc.documents.update.mutationOptions({
      onSuccess: () => {
        void invalidate();
        onSaved?.();
        onDone();
      },
    }),
  );
  return (
    <form
      onSubmit={(e) => {
        e.preventDefault();
        save.mutate({ ...subject, section: section.key as never, body, baseVersion: section.latest?.version ?? 0 });
      }}
    >
      <label className="field">
        <span>
          {section.title} (saving makes version {(section.latest?.version ?? 0) + 1})
        </span>
        <textarea
          aria-label={`${section.title} text`}
          rows={5}
          value={body}
          onChange={(e) => setBody(e.target.value)}
          style={{ width: "100%" }}
        />
      </label>
      <FormError error={save.error} />
      <div className="row" style={{ marginTop: 6 }}>
        <button className="primary" type="submit" disabled={save.isPending}>
          Save new version
        </button>
        <button type="button" onClick={onDone}>
          Cancel
        </button>
      </div>
    </form>
  );
}

function SignForm({ section, version, me }: { section: Section; version: Version; me: Me }) {
  const trpc = useTRPC();
  const invalidate = useInvalidateDocuments();
  const [password, setPassword] = useState("");
  // Separation of duties: the author of this version cannot sign its review (the server refuses and records it).
  const wroteIt = version.authorId === me.id;
  const mayReview = me.role === "reviewer" && !wroteIt;
  const [picked, setMeaning] = useState<"authorship" | "review">(mayReview ? "review" : "authorship");
  const meaning = picked === "review" && !mayReview ? "authorship" : picked;
  const sign = useMutation(
    trpc.documents.sign.mutationOptions({
      onSuccess: () => {
        setPassword("");
        void invalidate();
      },
    }),
  );
  return (
    <form
      aria-label={`Sign ${section.title}`}
      className="row"
      onSubmit={(e) => {
        e.preventDefault();
        sign.mutate({ documentId: version.id, meaning, password });
      }}
    >
      <span className="muted">
        Sign v{version.version} as {me.name}:
      </span>
      <select
        aria-label={`Meaning of the signature on ${section.title}`}
        value={meaning}
        onChange={(e) => setMeaning(e.target.value as "authorship" | "review")}
      >
        <option value="authorship">authorship</option>
        {me.role === "reviewer" ? (
          <option value="review" disabled={!mayReview}>
            {mayReview ? "review" : "review (not by its author)"}
          </option>
        ) : null}
      </select>
      {me.role === "reviewer" && wroteIt ? (
        <span className="muted" role="note">
          You wrote v{version.version}, so you cannot sign its review: another reviewer must review it.
        </span>
      ) : null}
      <input
        aria-label={`Password to sign ${section.title}`}
        type="password"
        autoComplete="current-password"
        value={password}
        onChange={(e) => setPassword(e.target.value)}
        placeholder="re-enter your password"
      />
      <button type="submit" disabled={sign.isPending || password === ""}>
        Sign
      </button>
      <FormError error={sign.error} />
    </form>
  );
}
