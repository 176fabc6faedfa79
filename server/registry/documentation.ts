/**
 * The documentation a production request is checked against: every section of the model's card and of the datasheet
 * of each dataset the version was trained on (the version's run ancestry, the same datasets whose authors the four-eyes
 * rule excludes), each written (its latest version and sha256) or missing. Reads only.
 *
 * Used twice: by the "Request production" form (the checklist, with the missing sections written inline through the
 * documents service) and inside the request's transaction (server/registry/promotions.ts), which records the checklist
 * in the promotion.request event and refuses a request with missing sections unless the requester acknowledged them.
 */
import { asc, eq, inArray } from "drizzle-orm";
import type { DocumentSubjectType } from "@/db/schema";
import type { Db, Tx } from "@/db/client";
import { asStore, row, rows, type Store, type StoreTables, type TxBody } from "@/db/store";
import { notFound } from "@/server/errors";
import { DOCUMENT_SECTIONS } from "@/server/documents/records";
import { latestVersionIn } from "@/server/documents/queries";
import { datasetIdsOfIn, versionRunAncestryIn } from "@/server/lineage/ancestry";
import { findModelVersionIn } from "./queries";
import { readOnStore } from "./on-store";

export type ChecklistSection = {
  key: string;
  title: string;
  /** The latest written version, or null when the section is missing. */
  written: { documentId: number; version: number; sha256: string; createdAt: string } | null;
};
export type ChecklistSubject = {
  subjectType: DocumentSubjectType;
  subjectId: number;
  subjectName: string;
  /** "Model card" or "Datasheet". */
  document: string;
  sections: ChecklistSection[];
};
export type DocumentationChecklist = {
  modelVersionId: number;
  subjects: ChecklistSubject[];
  written: number;
  total: number;
  missing: { subjectType: DocumentSubjectType; subjectId: number; subjectName: string; document: string; section: string; title: string }[];
};

function* subjectChecklist(
  q: Tx,
  t: StoreTables,
  subjectType: DocumentSubjectType,
  subjectId: number,
  subjectName: string,
): TxBody<ChecklistSubject> {
  const sections: ChecklistSection[] = [];
  for (const s of DOCUMENT_SECTIONS[subjectType]) {
    const latest = yield* latestVersionIn(q, t, subjectType, subjectId, s.key);
    sections.push({
      key: s.key,
      title: s.title,
      written: latest ? { documentId: latest.id, version: latest.version, sha256: latest.sha256, createdAt: latest.createdAt } : null,
    });
  }
  return { subjectType, subjectId, subjectName, document: subjectType === "model" ? "Model card" : "Datasheet", sections };
}

/** The model card and datasheet sections of a model version, written or missing (a part of a store transaction body). */
export function* documentationChecklistIn(q: Tx, t: StoreTables, modelVersionId: number): TxBody<DocumentationChecklist> {
  const { modelVersions, models, datasets } = t;
  const version = yield* row(q.select().from(modelVersions).where(eq(modelVersions.id, modelVersionId)));
  if (!version) notFound(`model version ${modelVersionId}`);
  const model = (yield* row(q.select().from(models).where(eq(models.id, version.modelId))))!;
  const datasetIds = yield* datasetIdsOfIn(q, t, yield* versionRunAncestryIn(q, t, version));
  const dss = datasetIds.length
    ? yield* rows(
        q.select({ id: datasets.id, name: datasets.name }).from(datasets).where(inArray(datasets.id, datasetIds)).orderBy(asc(datasets.id)),
      )
    : [];
  const subjects = [yield* subjectChecklist(q, t, "model", model.id, model.name)];
  for (const d of dss) subjects.push(yield* subjectChecklist(q, t, "dataset", d.id, d.name));
  const missing = subjects.flatMap((s) =>
    s.sections
      .filter((x) => x.written === null)
      .map((x) => ({
        subjectType: s.subjectType,
        subjectId: s.subjectId,
        subjectName: s.subjectName,
        document: s.document,
        section: x.key,
        title: x.title,
      })),
  );
  const total = subjects.reduce((n, s) => n + s.sections.length, 0);
  return { modelVersionId: version.id, subjects, written: total - missing.length, total, missing };
}

/** The checklist of version `version` of model `modelName` (the "Request production" form reads it). */
export function documentationChecklistOf(store: Store | Db, modelName: string, version: number): Promise<DocumentationChecklist> {
  return readOnStore(asStore(store), function* (q, t) {
    return yield* documentationChecklistIn(q, t, (yield* findModelVersionIn(q, t, modelName, version)).version.id);
  });
}

/** What the promotion.request event records of the checklist: hashes and identifiers only, never the text. */
export function documentationRecord(c: DocumentationChecklist, acknowledgedMissing: boolean) {
  return {
    written: c.written,
    total: c.total,
    acknowledgedMissing,
    sections: c.subjects.flatMap((s) =>
      s.sections.map((x) => ({
        subjectType: s.subjectType,
        subjectId: s.subjectId,
        subjectName: s.subjectName,
        section: x.key,
        version: x.written?.version ?? null,
        sha256: x.written?.sha256 ?? null,
      })),
    ),
  };
}
export type DocumentationRecord = ReturnType<typeof documentationRecord>;

/** "Model card of iris-classifier: Limitations and conditions of use; Datasheet of iris: Licence and terms of use". */
export function describeMissing(c: Pick<DocumentationChecklist, "missing">): string {
  const groups = new Map<string, string[]>();
  for (const m of c.missing) {
    const k = `${m.document} of ${m.subjectName}`;
    groups.set(k, [...(groups.get(k) ?? []), m.title]);
  }
  return [...groups].map(([k, titles]) => `${k}: ${titles.join(", ")}`).join("; ");
}
