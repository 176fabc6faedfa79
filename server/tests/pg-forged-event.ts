/**
 * A careful forger on a PostgreSQL store (tests of migrate-store --check and audit verify --database): changes one
 * event's payload and recomputes its leaf hash and every chain hash after it, so the chain is internally consistent
 * and only the signed roots (or the source) can tell. The update trigger is disabled for the rewrite, as the store's
 * owner can; `restore()` writes the original rows back and enables it again.
 */
import type pg from "pg";
import { chainHash, eventBody, leafHash } from "@/server/audit/ledger";
import { withPgClient } from "./pg-test-env";

const COLUMNS = "seq, at, actor_id, actor_name, role, action, entity_type, entity_id, payload, leaf_hash, chain_hash";

async function writeRows(c: pg.Client, rows: { payload: string; leaf: string; chain: string; seq: string }[]): Promise<void> {
  for (const r of rows)
    await c.query("UPDATE audit_events SET payload = $1, leaf_hash = $2, chain_hash = $3 WHERE seq = $4", [
      r.payload,
      r.leaf,
      r.chain,
      r.seq,
    ]);
}

export async function forgeEventOnPg(
  url: string,
  seq: number,
  opts: { leaveTriggerDisabled: boolean },
): Promise<{ restore: () => Promise<void> }> {
  const originals = await withPgClient(url, async (c) => {
    const rows = (await c.query<Record<string, string>>(`SELECT ${COLUMNS} FROM audit_events WHERE seq >= $1 - 1 ORDER BY seq`, [seq]))
      .rows;
    await c.query("ALTER TABLE audit_events DISABLE TRIGGER audit_events_no_update");
    let prev = rows[0]!.chain_hash!;
    const forged = rows.slice(1).map((r) => {
      const payload = Number(r.seq) === seq ? '{"tampered":true}' : r.payload!;
      const leaf = leafHash(
        eventBody({
          seq: Number(r.seq),
          at: r.at!,
          actorId: r.actor_id === null ? null : Number(r.actor_id),
          actorName: r.actor_name!,
          role: r.role!,
          action: r.action!,
          entityType: r.entity_type!,
          entityId: r.entity_id!,
          payload,
        }),
      );
      prev = chainHash(prev, leaf);
      return { payload, leaf, chain: prev, seq: r.seq! };
    });
    await writeRows(c, forged);
    if (!opts.leaveTriggerDisabled) await c.query("ALTER TABLE audit_events ENABLE TRIGGER audit_events_no_update");
    return rows.slice(1).map((r) => ({ payload: r.payload!, leaf: r.leaf_hash!, chain: r.chain_hash!, seq: r.seq! }));
  });
  return {
    restore: () =>
      withPgClient(url, async (c) => {
        await c.query("ALTER TABLE audit_events DISABLE TRIGGER audit_events_no_update");
        await writeRows(c, originals);
        await c.query("ALTER TABLE audit_events ENABLE TRIGGER audit_events_no_update");
      }),
  };
}
