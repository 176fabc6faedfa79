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
import { datasets, modelVersions, models, type DocumentSubjectType } from "@/db/schema";
import type { DbOrTx } from "@/db/client";
import { notFound } from "@/server/errors";
import { DOCUMENT_SECTIONS } from "@/server/documents/records";
import { latestVersion } from "@/server/documents/queries";
import { datasetIdsOf, versionRunAncestry } from "@/server/lineage/ancestry";
import { findModelVersion } from "./queries";

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

function subjectChecklist(db: DbOrTx, subjectType: DocumentSubjectType, subjectId: number, subjectName: string): ChecklistSubject {
  return {
    subjectType,
    subjectId,
    subjectName,
    document: subjectType === "model" ? "Model card" : "Datasheet",
    sections: DOCUMENT_SECTIONS[subjectType].map((s) => {
      const latest = latestVersion(db, subjectType, subjectId, s.key);
      return {
        key: s.key,
        title: s.title,
        written: latest ? { documentId: latest.id, version: latest.version, sha256: latest.sha256, createdAt: latest.createdAt } : null,
      };
    }),
  };
}

/** The model card and datasheet sections of a model version, written or missing. */
export function documentationChecklist(db: DbOrTx, modelVersionId: number): DocumentationChecklist {
  const version = db.select().from(modelVersions).where(eq(modelVersions.id, modelVersionId)).get();
  if (!version) notFound(`model version ${modelVersionId}`);
  const model = db.select().from(models).where(eq(models.id, version.modelId)).get()!;
  const datasetIds = datasetIdsOf(db, versionRunAncestry(db, version));
  const dss = datasetIds.length
    ? db
        .select({ id: datasets.id, name: datasets.name })
        .from(datasets)
        .where(inArray(datasets.id, datasetIds))
        .orderBy(asc(datasets.id))
        .all()
    : [];
  const subjects = [subjectChecklist(db, "model", model.id, model.name), ...dss.map((d) => subjectChecklist(db, "dataset", d.id, d.name))];
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
export function documentationChecklistOf(db: DbOrTx, modelName: string, version: number): DocumentationChecklist {
  return documentationChecklist(db, findModelVersion(db, modelName, version).version.id);
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
