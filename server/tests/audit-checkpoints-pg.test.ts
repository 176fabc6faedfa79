/**
 * Signed audit checkpoints on the store (issue 16, server/audit/checkpoints.ts):
 * - the same events and key give the same checkpoint rows (tree sizes, roots, signatures), checkpoint events (with
 *   their frontiers) and stored tree levels on SQLite and on PostgreSQL, whether signed directly, after a commit or by
 *   the policy; the signer fails closed on a tampered log on both, and rebuilds wrong stored tree levels on both;
 * - on PostgreSQL the checkpoints read back through ledger-pg-reads.ts (audit verify's PostgreSQL reader) verify;
 * - two pools (two web servers) racing the policy, the after-commit checkpoint and the timer sign each tree size once,
 *   each checkpoint's event directly after the tree it signs, and no timer checkpoint only re-signs the previous one.
 * No signing key is ever written to the database: the suite looks for the private key's bytes in every table.
 */
import { describe, expect, it } from "vitest";
import { sql } from "drizzle-orm";
import type { PgDb } from "@/db/pg-client";
import { pgStore, rows, transact, type Store } from "@/db/store";
import { checkpointAfterCommit, checkpointAfterCommitOn } from "@/server/app-context/audit-checkpoint-after-commit";
import { applyCheckpointPolicy, startCheckpointTimer } from "@/server/audit/checkpoint-policy";
import {
  AuditIntegrityError,
  createAuditCheckpointOn,
  maybeCheckpointOn,
  verifyTreeHeadSignature,
  treeHeadOf,
} from "@/server/audit/checkpoints";
import { generateAuditKeys } from "@/server/audit/keys";
import { KEY_ROTATE_ACTION } from "@/server/audit/key-rotation";
import { auditEventsWithActionPg, iterateAuditEventsPg, listAuditCheckpointsPg } from "@/server/audit/ledger-pg-reads";
import { inclusionProofFromLevels, TreeLevelReader } from "@/server/audit/tree-levels";
import { consistencyPathFromLevelsPg, inclusionProofFromLevelsPg, storeTreeLevelsForCheckpointPg } from "@/server/audit/tree-levels-pg";
import { verifyConsistency } from "@/server/audit/merkle";
import { AuditLogVerifier } from "@/server/audit/verify";
import { describePg } from "./pg-test-env";
import { fixedDateForEachTest, sqliteForSuite, TEST_PEOPLE, twoPgServersForSuite } from "./store-test-env";
import { appendDecisionEvents } from "./ledger-events";

const AT = "2026-12-05T09:00:00.000Z";
const auditKeys = generateAuditKeys();
const { engineer } = TEST_PEOPLE;

/** `n` plain events, each in a transaction of its own under the ledger lock (as a ported service appends them). */
const appendEvents = (store: Store, n: number, label: string) => appendDecisionEvents(store, n, label, engineer);

/** Everything a checkpoint leaves in the database, in a comparable form (tree node hashes as hex). */
async function ledgerState(store: Store) {
  const { auditEvents, auditCheckpoints, auditTreeNodes } = store.tables;
  return transact(store, function* (tx) {
    return {
      events: yield* rows(tx.select().from(auditEvents).orderBy(auditEvents.seq)),
      checkpoints: yield* rows(tx.select().from(auditCheckpoints).orderBy(auditCheckpoints.id)),
      treeNodes: (yield* rows(tx.select().from(auditTreeNodes).orderBy(auditTreeNodes.level, auditTreeNodes.idx))).map((n) => ({
        level: n.level,
        idx: n.idx,
        hash: Buffer.from(n.hash).toString("hex"),
      })),
    };
  });
}

/** One history on either store: checkpoints signed directly, after a commit, by the policy (due and not due). */
async function scenario(store: Store) {
  await appendEvents(store, 37, "first");
  const outcomes: unknown[] = [];
  outcomes.push((await maybeCheckpointOn(store, auditKeys, { everyEvents: 100, everyMinutes: 10 }))?.checkpoint.reason); // first events
  await appendEvents(store, 21, "second");
  outcomes.push(await maybeCheckpointOn(store, auditKeys, { everyEvents: 100, everyMinutes: 10 })); // not due: null
  outcomes.push(await applyCheckpointPolicy({ db: store, auditKeys }, { everyEvents: 20 }));
  await appendEvents(store, 5, "third");
  outcomes.push(await checkpointAfterCommit({ db: store, auditKeys }, "after a signature"));
  outcomes.push((await createAuditCheckpointOn(store, auditKeys, "directly")).checkpoint.treeSize);
  await appendEvents(store, 1, "fourth");
  outcomes.push(await applyCheckpointPolicy({ db: store, auditKeys }, { now: new Date(Date.parse(AT) + 11 * 60_000) })); // by time
  return { outcomes, ...(await ledgerState(store)) };
}

type Outcome = Awaited<ReturnType<typeof scenario>>;
const outcomes: Partial<Record<Store["dialect"], Outcome>> = {};

function behaviourCases(storeOf: () => Store): void {
  fixedDateForEachTest(AT);

  it("signs a checkpoint directly, after a commit and by the policy, each over the tree it read", async () => {
    const store = storeOf();
    const outcome = await scenario(store);
    outcomes[store.dialect] = outcome;
    expect(outcome.outcomes).toEqual([
      "first events",
      null,
      { checkpointed: true, checkpointId: 2, treeSize: 59, reason: "every 20 events" },
      { ok: true, checkpointId: 3, treeSize: 65, rootHash: expect.stringMatching(/^[0-9a-f]{64}$/) },
      66,
      { checkpointed: true, checkpointId: 5, treeSize: 68, reason: "every 10 minutes" },
    ]);
    expect(outcome.checkpoints.map((c) => c.treeSize)).toEqual([37, 59, 65, 66, 68]);
    for (const c of outcome.checkpoints) {
      expect(verifyTreeHeadSignature(auditKeys, treeHeadOf(c), c.signature)).toBe(true);
      // Its event directly follows the tree it signs, and carries the whole signed head.
      const event = outcome.events[c.treeSize]!;
      expect([event.action, event.entityId]).toEqual(["audit.checkpoint", String(c.id)]);
      expect(JSON.parse(event.payload)).toMatchObject({ ...treeHeadOf(c), signature: c.signature, checkpointId: c.id });
    }
    // The tree levels are stored up to the last even size signed.
    expect(outcome.treeNodes.filter((n) => n.level === 1).length * 2).toBe(68);
  });

  it("refuses to sign a log whose events were rewritten, with the same error on both stores", async () => {
    const store = storeOf();
    await appendEvents(store, 3, "to tamper");
    const last = (await ledgerState(store)).events.at(-1)!;
    await tamper(store, last.seq);
    const failure = await createAuditCheckpointOn(store, auditKeys, "after tamper").catch((err: unknown) => err);
    expect(failure).toBeInstanceOf(AuditIntegrityError);
    expect((failure as Error).message).toBe(`refusing to sign: seq ${last.seq}: leaf hash does not match its content (edited?)`);
    expect(await checkpointAfterCommit({ db: store, auditKeys }, "after tamper")).toMatchObject({ ok: false });
    expect((await ledgerState(store)).checkpoints).toHaveLength(5); // none signed
  });

  it("proves inclusion and consistency from the stored tree levels, against the signed roots", async () => {
    const store = storeOf();
    const found = await proofsFromLevels(store);
    proofs[store.dialect] = found;
    expect(found.proofs.map((p) => [p.seq, p.treeSize, p.checkpoint?.id ?? null, p.verified, p.signedRoot])).toEqual([
      [1, 68, 5, true, true],
      [5, 68, 5, true, true],
      [37, 68, 5, true, true],
      [38, 68, 5, true, true],
      [59, 68, 5, true, true],
      [66, 68, 5, true, true],
      [68, 68, 5, true, true],
      [71, 72, null, true, false],
      [3, 40, null, true, false],
      [40, 72, null, true, false],
      [72, 72, null, true, false],
    ]);
    const { checkpoints } = await ledgerState(store);
    const rootAt = (size: number) => checkpoints.find((c) => c.treeSize === size)!.rootHash;
    const [p3759, p5968] = found.paths;
    expect(
      verifyConsistency(
        37,
        59,
        Buffer.from(rootAt(37), "hex"),
        Buffer.from(rootAt(59), "hex"),
        p3759!.map((h) => Buffer.from(h, "hex")),
      ),
    ).toBe(true);
    expect(
      verifyConsistency(
        59,
        68,
        Buffer.from(rootAt(59), "hex"),
        Buffer.from(rootAt(68), "hex"),
        p5968!.map((h) => Buffer.from(h, "hex")),
      ),
    ).toBe(true);
  });
}

/** Inclusion proofs and consistency paths from the stored tree levels (tree-levels.ts; tree-levels-pg.ts on PostgreSQL). */
async function proofsFromLevels(store: Store) {
  const inclusion = (seq: number, size?: number) =>
    store.dialect === "sqlite" ? inclusionProofFromLevels(store.db, seq, size) : inclusionProofFromLevelsPg(store.db, seq, size);
  const consistency = async (m: number, n: number) =>
    (store.dialect === "sqlite"
      ? new TreeLevelReader(store.db).consistencyPath(m, n)
      : await consistencyPathFromLevelsPg(store.db, m, n)
    ).map((b) => b.toString("hex"));
  const proofs = [];
  let mostRowsRead = 0;
  for (const [seq, size] of [[1], [5], [37], [38], [59], [66], [68], [71], [3, 40], [40, 72], [72, 72]] as [number, number?][]) {
    const { rowsRead, ...proof } = await inclusion(seq, size);
    proofs.push(proof);
    mostRowsRead = Math.max(mostRowsRead, rowsRead);
  }
  expect(mostRowsRead).toBeLessThanOrEqual(16); // O(log n) rows, not every leaf (72)
  const paths = [];
  for (const [m, n] of [
    [37, 59],
    [59, 68],
    [0, 68],
    [68, 72],
    [12, 71],
    [71, 72],
  ] as [number, number][])
    paths.push(await consistency(m, n));
  return { proofs, paths };
}
const proofs: Partial<Record<Store["dialect"], Awaited<ReturnType<typeof proofsFromLevels>>>> = {};

/** Rewrites one event's payload behind the protective triggers (as someone with the database's owner rights could). */
async function tamper(store: Store, seq: number): Promise<void> {
  const payload = JSON.stringify({ label: "rewritten" });
  if (store.dialect === "sqlite") {
    const sqlite = store.db.$client;
    const triggers = sqlite.prepare("SELECT name, sql FROM sqlite_master WHERE type = 'trigger' AND tbl_name = 'audit_events'").all() as {
      name: string;
      sql: string;
    }[];
    for (const t of triggers) sqlite.exec(`DROP TRIGGER ${t.name}`);
    sqlite.prepare("UPDATE audit_events SET payload = ? WHERE seq = ?").run(payload, seq);
    for (const t of triggers) sqlite.exec(t.sql);
    return;
  }
  await store.db.transaction(async (tx) => {
    await tx.execute(sql`ALTER TABLE audit_events DISABLE TRIGGER USER`);
    await tx.execute(sql`UPDATE audit_events SET payload = ${payload} WHERE seq = ${seq}`);
    await tx.execute(sql`ALTER TABLE audit_events ENABLE TRIGGER USER`);
  });
}

describe("audit checkpoints on SQLite", () => {
  const sqlite = sqliteForSuite("rl-audit-checkpoints-store-");
  behaviourCases(() => sqlite.store());
});

/** The verifier over what audit verify's PostgreSQL reader (ledger-pg-reads.ts) reads, in one snapshot. */
async function verifyOnPg(db: PgDb) {
  const client = await db.$client.connect();
  try {
    await client.query("BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY");
    const checkpoints = await listAuditCheckpointsPg(client);
    const verifier = new AuditLogVerifier(
      auditKeys,
      "given",
      checkpoints,
      undefined,
      await auditEventsWithActionPg(client, KEY_ROTATE_ACTION),
    );
    for await (const e of iterateAuditEventsPg(client)) if (!verifier.add(e)) break;
    await client.query("COMMIT");
    return { checkpoints, result: verifier.finish() };
  } finally {
    client.release();
  }
}

describePg("audit checkpoints on PostgreSQL", () => {
  const pg = twoPgServersForSuite();
  behaviourCases(() => pgStore(pg.a()));

  it("gives the same checkpoint rows, signatures, checkpoint events, tree levels and proofs as SQLite", () => {
    expect(outcomes.sqlite).toBeDefined();
    expect(outcomes.pg).toEqual(outcomes.sqlite);
    expect(proofs.pg).toEqual(proofs.sqlite);
  });
});

describePg("audit checkpoints on PostgreSQL: read back by audit verify's reader", () => {
  const pg = twoPgServersForSuite();

  it("reads the checkpoints back and the verifier accepts them", async () => {
    const store = pgStore(pg.a());
    await appendEvents(store, 12, "verify");
    await createAuditCheckpointOn(store, auditKeys, "one");
    await appendEvents(store, 3, "verify");
    expect(await checkpointAfterCommitOn({ db: store, auditKeys }, "two")).toMatchObject({ ok: true, treeSize: 16 });
    const { checkpoints, result } = await verifyOnPg(pg.b());
    expect(checkpoints).toEqual((await ledgerState(store)).checkpoints);
    expect(checkpoints.map((c) => c.treeSize)).toEqual([12, 16]);
    expect(result).toMatchObject({ ok: true, checkpointsChecked: 2, eventsChecked: 17, problems: [] });
    expect(result.levels.chain.ok).toBe(true);
  });

  it("no signing key is stored in the database", async () => {
    const der = auditKeys.privateKey.export({ format: "der", type: "pkcs8" });
    const secret = der.subarray(der.length - 32); // the Ed25519 seed
    const forms = [
      secret.toString("hex"),
      secret.toString("base64"),
      auditKeys.privateKey.export({ format: "pem", type: "pkcs8" }).toString(),
    ];
    const tables = await pg.a().execute<{ t: string }>(sql`SELECT tablename AS t FROM pg_tables WHERE schemaname = current_schema()`);
    for (const { t } of tables.rows) {
      const dump = await pg.a().execute<{ d: string | null }>(sql`SELECT string_agg(x::text, ' ') AS d FROM ${sql.identifier(t)} x`);
      const text = dump.rows[0]?.d ?? "";
      for (const f of forms) expect(text.includes(f), `${t} holds the signing key`).toBe(false);
    }
  });
});

describePg("audit checkpoints on PostgreSQL: stored tree levels", () => {
  const pg = twoPgServersForSuite();

  it("rebuilds stored tree levels that disagree with the root being signed, in a savepoint", async () => {
    const store = pgStore(pg.a());
    await appendEvents(store, 9, "levels");
    const first = (await createAuditCheckpointOn(store, auditKeys, "levels")).checkpoint;
    const nodes = (await ledgerState(store)).treeNodes;
    expect(nodes).toHaveLength(7); // the perfect subtrees of 8 leaves; the root of size 9 reads (3, 0) and leaf 9
    await pg.a().execute(sql`UPDATE audit_tree_nodes SET hash = ${Buffer.alloc(32)} WHERE level = 3 AND idx = 0`);
    const outcome = await pg.a().transaction((tx) => storeTreeLevelsForCheckpointPg(tx, first.treeSize, first.rootHash));
    expect(outcome).toEqual({ ok: true, storedSize: 8, written: 7, rebuilt: true });
    expect((await ledgerState(store)).treeNodes).toEqual(nodes);
    const wrong = await pg.a().transaction((tx) => storeTreeLevelsForCheckpointPg(tx, first.treeSize, "00".repeat(32)));
    expect(wrong).toMatchObject({ ok: false, error: expect.stringMatching(/not the root being signed/) });
    expect((await ledgerState(store)).treeNodes).toEqual(nodes); // the savepoint left the table as it was
  });
});

/** Checks what racing signers must leave: distinct tree sizes, each checkpoint's event right after its tree, no gap. */
async function expectEachTreeSizeSignedOnce(store: Store) {
  const { checkpoints, events } = await ledgerState(store);
  const sizes = checkpoints.map((c) => c.treeSize);
  expect(sizes.length - new Set(sizes).size, `tree sizes signed twice in ${sizes.join(",")}`).toBe(0);
  for (const c of checkpoints)
    expect([events[c.treeSize]?.action, events[c.treeSize]?.entityId], `checkpoint #${c.id} (size ${c.treeSize})`).toEqual([
      "audit.checkpoint",
      String(c.id),
    ]);
  expect(events.map((e) => e.seq)).toEqual(events.map((_, i) => i + 1));
  return { checkpoints, events };
}

describePg("audit checkpoints on PostgreSQL: two web servers", () => {
  const pg = twoPgServersForSuite();

  it("racing the policy and after-commit checkpoints through two pools, they sign each tree size once", async () => {
    const servers = pg.stores();
    for (let round = 0; round < 8; round++) {
      await appendEvents(servers[round % 2]!, 3, `round ${round}`);
      await Promise.all(
        Array.from({ length: 8 }, (_, i) =>
          i < 6
            ? maybeCheckpointOn(servers[i % 2]!, auditKeys, { everyEvents: 1 })
            : checkpointAfterCommitOn({ db: servers[i % 2]!, auditKeys }, `after commit ${round}.${i}`),
        ),
      );
    }
    const { checkpoints } = await expectEachTreeSizeSignedOnce(servers[0]);
    expect(checkpoints.length).toBeGreaterThanOrEqual(8 * 2); // per round: both after-commit ones, and the policy's when first
    expect((await verifyOnPg(pg.b())).result).toMatchObject({ ok: true, checkpointsChecked: checkpoints.length });
  });

  it("both servers' checkpoint timers: each tree size once, and none only re-signs the previous checkpoint", async () => {
    const servers = pg.stores();
    const before = (await ledgerState(servers[0])).checkpoints.length;
    const outcomes: { checkpointed: boolean; error?: string }[] = [];
    const stops = servers.map((db) => startCheckpointTimer({ db, auditKeys }, 5, { everyEvents: 1, onOutcome: (o) => outcomes.push(o) }));
    try {
      for (let i = 0; i < 30; i++) await appendEvents(servers[i % 2]!, 1, `timer ${i}`);
      await new Promise((resolve) => setTimeout(resolve, 200));
    } finally {
      stops.forEach((stop) => stop());
    }
    await new Promise((resolve) => setTimeout(resolve, 100)); // a tick still signing
    expect(outcomes.filter((o) => o.error)).toEqual([]);
    const { checkpoints, events } = await expectEachTreeSizeSignedOnce(servers[0]);
    const byTimer = checkpoints.slice(before);
    expect(byTimer.length).toBeGreaterThan(1);
    for (let i = 1; i < byTimer.length; i++) {
      const between = events.slice(byTimer[i - 1]!.treeSize, byTimer[i]!.treeSize).filter((e) => e.action !== "audit.checkpoint");
      expect(between.length, `checkpoint #${byTimer[i]!.id} re-signs #${byTimer[i - 1]!.id} only`).toBeGreaterThan(0);
    }
  });
});
