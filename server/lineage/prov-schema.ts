/**
 * The structure of a PROV-JSON document (W3C member submission, 2013) as far as Runledger uses it, and a checker:
 * a prefix map of IRIs; entity, activity and agent maps keyed by qualified names; relation maps keyed by ids whose
 * records carry the required prov: attributes. validateProvJson also checks that every qualified name uses a
 * declared (or PROV's predefined) prefix and that every relation points at a record of the right kind.
 * Used by tests and by the export itself as a self-check before anything leaves the server.
 */
import { z } from "zod";

const qualifiedName = z.string().regex(/^[A-Za-z_][\w.-]*:[^\s]*$/, "a qualified name prefix:local");
const relationId = z.string().regex(/^(_:[\w.-]+|[A-Za-z_][\w.-]*:[^\s]*)$/);
const attrs = z.record(z.string(), z.unknown());
const relation = <T extends z.ZodRawShape>(shape: T) => z.record(relationId, z.object(shape).catchall(z.unknown()));

export const provJsonSchema = z
  .object({
    prefix: z.record(z.string().regex(/^[A-Za-z_][\w.-]*$/), z.url().or(z.string().startsWith("urn:"))),
    entity: z.record(qualifiedName, attrs),
    activity: z.record(
      qualifiedName,
      z.object({ "prov:startTime": z.iso.datetime().optional(), "prov:endTime": z.iso.datetime().optional() }).catchall(z.unknown()),
    ),
    agent: z.record(qualifiedName, attrs),
    used: relation({ "prov:activity": qualifiedName, "prov:entity": qualifiedName }),
    wasGeneratedBy: relation({ "prov:entity": qualifiedName, "prov:activity": qualifiedName }),
    wasDerivedFrom: relation({ "prov:generatedEntity": qualifiedName, "prov:usedEntity": qualifiedName }),
    wasAssociatedWith: relation({ "prov:activity": qualifiedName, "prov:agent": qualifiedName }),
    wasAttributedTo: relation({ "prov:entity": qualifiedName, "prov:agent": qualifiedName }),
  })
  .strict();

const PREDEFINED = new Set(["prov", "xsd"]);
type RelationName = "used" | "wasGeneratedBy" | "wasDerivedFrom" | "wasAssociatedWith" | "wasAttributedTo";
const REFERENCES: Record<RelationName, [attribute: string, kind: "entity" | "activity" | "agent"][]> = {
  used: [
    ["prov:activity", "activity"],
    ["prov:entity", "entity"],
  ],
  wasGeneratedBy: [
    ["prov:entity", "entity"],
    ["prov:activity", "activity"],
  ],
  wasDerivedFrom: [
    ["prov:generatedEntity", "entity"],
    ["prov:usedEntity", "entity"],
  ],
  wasAssociatedWith: [
    ["prov:activity", "activity"],
    ["prov:agent", "agent"],
  ],
  wasAttributedTo: [
    ["prov:entity", "entity"],
    ["prov:agent", "agent"],
  ],
};

/** Problems found in `doc` (empty: a well-formed, self-contained PROV-JSON document). */
export function validateProvJson(doc: unknown): string[] {
  const parsed = provJsonSchema.safeParse(doc);
  if (!parsed.success) return parsed.error.issues.map((i) => `${i.path.join(".")}: ${i.message}`);
  const d = parsed.data;
  const problems: string[] = [];
  const declared = new Set([...Object.keys(d.prefix), ...PREDEFINED]);
  const checkPrefix = (where: string, name: string) => {
    const p = name.split(":")[0]!;
    if (!declared.has(p)) problems.push(`${where}: prefix "${p}" of ${name} is not declared`);
  };
  for (const kind of ["entity", "activity", "agent"] as const) for (const id of Object.keys(d[kind])) checkPrefix(kind, id);
  for (const rel of Object.keys(REFERENCES) as RelationName[]) {
    const refs = REFERENCES[rel];
    for (const [id, record] of Object.entries(d[rel] as Record<string, Record<string, unknown>>)) {
      for (const [attr, kind] of refs) {
        const target = record[attr] as string;
        checkPrefix(`${rel}.${id}`, target);
        if (!(target in d[kind])) problems.push(`${rel}.${id}: ${attr} ${target} is not a declared ${kind}`);
      }
    }
  }
  return problems;
}
