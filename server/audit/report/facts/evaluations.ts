/** Report facts, section 6: the evaluations of the version's checkpoint (oldest first), with who requested each. */
import { asc, eq } from "drizzle-orm";
import { evaluations, users } from "@/db/schema";
import type { DbOrTx } from "@/db/client";
import { parseJson, type Json } from "./json";

export function evaluationFacts(db: DbOrTx, checkpointId: number) {
  const rows = db
    .select({ e: evaluations, createdByName: users.name })
    .from(evaluations)
    .innerJoin(users, eq(users.id, evaluations.createdBy))
    .where(eq(evaluations.checkpointId, checkpointId))
    .orderBy(asc(evaluations.id))
    .all();
  return rows.map(({ e, createdByName }) => ({
    id: e.id,
    runId: e.runId,
    partition: e.partition,
    splitId: e.splitId,
    dataSha256: e.dataSha256,
    source: e.source,
    createdBy: createdByName,
    metrics: JSON.parse(e.metricsJson) as Record<string, Json>,
    confusion: parseJson<{ labels: string[]; matrix: number[][] }>(e.confusionJson),
    createdAt: e.createdAt,
  }));
}
