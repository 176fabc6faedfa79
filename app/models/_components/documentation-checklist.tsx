"use client";
/**
 * The documentation a production request is checked against (models.documentationChecklist): the model card's sections
 * and the datasheet sections of each dataset the version was trained on, each written (version, author's time, sha256)
 * or missing. An engineer writes a missing section right here, through the same form and service as the model card
 * page (documents.update, one document.update event); the checklist then reads it as written.
 */
import { useState } from "react";
import { useQuery, useQueryClient } from "@tanstack/react-query";
import { useTRPC } from "@/app/_trpc/client";
import { Hash } from "@/app/_components/hash";
import { ErrorState, Loading } from "@/app/_components/states";
import { SectionEditForm } from "@/app/_components/model-card";
import type { DocumentationChecklist as Checklist } from "@/server/registry/documentation";

export function useDocumentationChecklist(modelName: string, version: number) {
  const trpc = useTRPC();
  return useQuery(trpc.models.documentationChecklist.queryOptions({ modelName, version }));
}

export function DocumentationChecklist({ modelName, version, canWrite }: { modelName: string; version: number; canWrite: boolean }) {
  const checklist = useDocumentationChecklist(modelName, version);
  const trpc = useTRPC();
  const qc = useQueryClient();
  const refresh = () => void qc.invalidateQueries({ queryKey: trpc.models.documentationChecklist.queryKey() });
  if (checklist.isPending) return <Loading what="Checking the model card and datasheets" />;
  if (checklist.error) return <ErrorState error={checklist.error} title="Could not check the model card and datasheets" />;
  const c = checklist.data;
  return (
    <section aria-label="Documentation checklist" style={{ margin: "8px 0" }}>
      <h4 style={{ margin: "0 0 4px" }}>
        Model card and datasheets: {c.written} of {c.total} sections written
      </h4>
      {c.subjects.map((s) => (
        <div key={`${s.subjectType}-${s.subjectId}`}>
          <p style={{ margin: "6px 0 2px" }}>
            <strong>{s.document}</strong> of {s.subjectName}
          </p>
          <ul aria-label={`${s.document} of ${s.subjectName}`} style={{ listStyle: "none", paddingLeft: 0, margin: 0 }}>
            {s.sections.map((x) => (
              <ChecklistItem key={x.key} subject={s} section={x} canWrite={canWrite} onSaved={refresh} />
            ))}
          </ul>
        </div>
      ))}
    </section>
  );
}

type Subject = Checklist["subjects"][number];

function ChecklistItem({
  subject,
  section,
  canWrite,
  onSaved,
}: {
  subject: Subject;
  section: Subject["sections"][number];
  canWrite: boolean;
  onSaved: () => void;
}) {
  const [writing, setWriting] = useState(false);
  const label = `${subject.document} of ${subject.subjectName}: ${section.title}`;
  return (
    <li aria-label={label} data-written={section.written ? "yes" : "no"} style={{ padding: "3px 0" }}>
      <div className="row">
        {section.written ? (
          <>
            <span aria-hidden="true">✓</span>
            <span>{section.title}</span>
            <span className="muted">
              written (v{section.written.version}, sha256 <Hash value={section.written.sha256} label={`${label} sha256`} />)
            </span>
          </>
        ) : (
          <>
            <span aria-hidden="true" className="error-text">
              ✗
            </span>
            <span>{section.title}</span>
            <span className="error-text">missing</span>
            {canWrite && !writing ? (
              <button type="button" onClick={() => setWriting(true)}>
                Write {section.title.toLowerCase()}
              </button>
            ) : null}
          </>
        )}
      </div>
      {writing && !section.written ? (
        <SectionEditForm
          subject={{ subjectType: subject.subjectType, subjectId: subject.subjectId }}
          section={{ key: section.key, title: section.title, latest: null }}
          onSaved={onSaved}
          onDone={() => setWriting(false)}
        />
      ) : null}
    </li>
  );
}
