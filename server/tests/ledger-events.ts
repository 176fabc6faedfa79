/**
 * Test helper: appends `n` "decision.create" events to a store's ledger, one transaction each, under the ledger lock
 * as a service writes them (PostgreSQL: PG_LOCK_KEYS.ledger), payload { label, i }. No table row backs them: for tests
 * of checkpoints, rotations and witnesses, which need ledger volume only.
 */
import { transact, type Store } from "@/db/store";
import { PG_LOCK_KEYS } from "@/db/pg-client";
import { appendEvent } from "@/server/audit/ledger-pg";
import type { Actor } from "@/server/audit/ledger";

const TEST_ACTOR: Actor = { id: null, name: "test", role: "system" };

export async function appendDecisionEvents(store: Store, n: number, label: string, actor: Actor = TEST_ACTOR): Promise<void> {
  for (let i = 0; i < n; i++)
    await transact(
      store,
      function* () {
        yield* appendEvent({ actor, action: "decision.create", entityType: "decision", entityId: i + 1, payload: { label, i } });
      },
      { pgLock: PG_LOCK_KEYS.ledger },
    );
}
