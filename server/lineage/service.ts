/**
 * Exporting a model version's lineage as W3C PROV-JSON. Any signed-in role may export (auditors included); the
 * export changes nothing but is recorded in the audit ledger (lineage.export) with the sha256 of what left the server.
 * Invariant: a document that fails validateProvJson is never returned (fail loudly rather than export a broken graph).
 *
 * On the store (issue 16, db/store.ts): the facts are one read (SQLite or PostgreSQL); the ledger event is appended in
 * its own transaction under the ledger's lock, after the document was built and validated (no work inside it).
 */
import { sha256Canonical } from "@/contracts/canonical";
import { collectLineageIn } from "@/server/lineage/collect";
import { lineageToProvJson, type ProvJson } from "@/server/lineage/prov";
import { validateProvJson } from "@/server/lineage/prov-schema";
import type { Actor } from "@/server/audit/ledger";
import { appendEvent } from "@/server/audit/ledger-pg";
import type { Db } from "@/db/client";
import { PG_LOCK_KEYS } from "@/db/pg-client";
import { asStore, transact, type Store } from "@/db/store";
import { findModelVersionIn } from "../registry/queries";
import { readOnStore } from "../registry/on-store";

export async function exportLineageProv(
  db: Store | Db,
  actor: Actor,
  modelName: string,
  version: number,
): Promise<{ document: ProvJson; sha256: string; fileName: string }> {
  const store = asStore(db);
  const {
    model,
    version: v,
    facts,
  } = await readOnStore(store, function* (q, t) {
    const found = yield* findModelVersionIn(q, t, modelName, version);
    return { ...found, facts: yield* collectLineageIn(q, t, found.version.id) };
  });
  const document = lineageToProvJson(facts);
  const problems = validateProvJson(document);
  if (problems.length) throw new Error(`PROV-JSON export of ${model.name} v${v.version} is malformed: ${problems.slice(0, 5).join("; ")}`);
  const sha256 = sha256Canonical(document);
  await transact(
    store,
    function* () {
      yield* appendEvent({
        actor,
        action: "lineage.export",
        entityType: "modelVersion",
        entityId: v.id,
        payload: { model: model.name, version: v.version, format: "PROV-JSON", sha256, entities: Object.keys(document.entity).length },
      });
    },
    { pgLock: PG_LOCK_KEYS.ledger },
  );
  return { document, sha256, fileName: `${model.name}-v${v.version}.prov.json` };
}
