/**
 * Reads of the web app on either store (issue 16): global search (server/search/queries.ts searchGlobal), the
 * administrators' demo-password warning (server/users/admin.ts demoPasswordWarningOn), and the runs explorer given the
 * app's store (server/runs/explore/store.ts asStore of a db/store.ts Store). The same rows are written to a SQLite file
 * and to a PostgreSQL database whose default collation is linguistic (ICU en-US) and whose ctype folds non-ASCII
 * letters, so a dialect-naive statement would answer differently: a plain ILIKE matches "élan" in "Élan vital" where
 * SQLite's LIKE does not (it folds ASCII only), and a plain ORDER BY puts the tag "needle_a" before "Needle_b" where
 * SQLite's byte order does the opposite. Every answer must be equal on both stores (and the SQLite forms unchanged).
 */
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { migratePg, openPgDatabase, type PgDb } from "@/db/pg-client";
import { exec, pgStore, row, transact, type Store } from "@/db/store";
import { DEMO_USERS } from "@/server/auth/demo-users";
import { compareRuns } from "@/server/runs/explore/compare";
import { listColumns } from "@/server/runs/explore/columns";
import { searchRuns } from "@/server/runs/explore/runs-search";
import { pgStore as explorePgStore } from "@/server/runs/explore/store";
import { searchGlobal, searchInput, type SearchResult } from "@/server/search/queries";
import { demoPasswordWarningOn } from "@/server/users/admin";
import { createScratchPgDatabase, describePg, type ScratchPgDatabase } from "./pg-test-env";
import { seedPeople, sqliteForSuite, TEST_PEOPLE } from "./store-test-env";

const AT = "2026-12-05T07:30:00.000Z";
const { engineer } = TEST_PEOPLE;

/** The same rows on either store, in the same order (so with the same ids). */
async function seed(store: Store): Promise<{ runId: number; otherRunId: number }> {
  await seedPeople(store, { at: AT, passwordHash: "x" });
  const t = store.tables;
  return transact(store, function* (tx) {
    // Demo accounts: admin and engineer unchanged, auditor on the first release's hash format (counts as unchanged),
    // reviewer changed (another current hash), reviewer2 unchanged but disabled.
    // Ids given, as seedPeople gives its own (PostgreSQL's identity does not move past ids written explicitly).
    for (const [i, d] of DEMO_USERS.entries()) {
      const passwordHash =
        d.role === "auditor"
          ? "scrypt$16384$8$1$c2FsdHNhbHRzYWx0c2FsdA==$aGFzaGhhc2hoYXNoaGFzaGhhc2hoYXNoaGFzaGhhc2g="
          : d.email === "reviewer@runledger.local"
            ? DEMO_USERS[0]!.passwordHash
            : d.passwordHash;
      yield* exec(
        tx.insert(t.users).values({
          id: 10 + i,
          email: d.email,
          name: d.name,
          role: d.role,
          passwordHash,
          disabled: d.email === "reviewer2@runledger.local",
          createdAt: AT,
        }),
      );
    }
    const project = (name: string, description = "") =>
      row(tx.insert(t.projects).values({ name, description, createdBy: engineer.id, createdAt: AT }).returning());
    const main = (yield* project("srch main", "where the runs are"))!;
    for (const name of ["srch a_b", "srch axb", "srch 100% sure", "srch 1000 sure", "srch back\\slash", "srch backxslash"])
      yield* project(name);
    for (const name of ["Élan vital", "élan small", "Plain Elan", "ÉLAN LOUD"]) yield* project(name, "non-ASCII case");
    yield* project("described", "a project about WOMBATS");
    const experiments: number[] = [];
    for (let i = 0; i < 8; i++)
      experiments.push(
        (yield* row(
          tx
            .insert(t.experiments)
            .values({
              projectId: main.id,
              name: `bulk-exp-${i}`,
              description: i === 3 ? "the Quokka study" : "",
              createdBy: engineer.id,
              createdAt: AT,
            })
            .returning(),
        ))!.id,
      );
    yield* exec(tx.insert(t.experimentTags).values({ experimentId: experiments[0]!, key: "team", value: "wombat-squad", updatedAt: AT }));
    const run = (name: string, description: string) =>
      row(
        tx
          .insert(t.runs)
          .values({
            experimentId: experiments[0]!,
            name,
            description,
            status: "completed",
            configJson: "{}",
            configSha256: "c".repeat(64),
            seed: 1,
            createdBy: engineer.id,
            createdAt: AT,
          })
          .returning(),
      );
    const target = (yield* run("search target run", "a description with quokka inside"))!;
    const other = (yield* run("another run", ""))!;
    for (const tag of ["needle_a", "Needle_b", "hay"])
      yield* exec(tx.insert(t.runTags).values({ runId: target.id, tag, createdBy: engineer.id, createdAt: AT }));
    yield* exec(tx.insert(t.runTagValues).values({ runId: other.id, key: "mlflow.source.name", value: "train_wombat.py", updatedAt: AT }));
    yield* exec(tx.insert(t.runTagValues).values({ runId: other.id, key: "Mlflow.user", value: "wombat", updatedAt: AT }));
    const checkpoint = (yield* row(
      tx
        .insert(t.checkpoints)
        .values({ runId: target.id, epoch: 1, step: 10, sha256: "e".repeat(64), bytes: 1, metricsJson: "{}", createdAt: AT })
        .returning(),
    ))!;
    for (const name of ["srch-model", "Srch-Model-Two"]) {
      const model = (yield* row(
        tx.insert(t.models).values({ name, description: "a model for search", createdBy: engineer.id, createdAt: AT }).returning(),
      ))!;
      for (const version of [1, 2])
        yield* exec(
          tx.insert(t.modelVersions).values({
            modelId: model.id,
            version,
            runId: target.id,
            checkpointId: checkpoint.id,
            weightsSha256: "e".repeat(64),
            createdBy: engineer.id,
            createdAt: AT,
          }),
        );
    }
    for (const [name, origin, sha] of [
      ["iris", "", "1"],
      ["Wombat counts", "from the wombat survey", "2"],
      ["penguins", "Palmer Station, ÉLAN program", "3"],
    ] as const)
      yield* exec(
        tx.insert(t.datasets).values({
          name,
          source: "upload",
          origin,
          sha256: sha.repeat(64),
          byteSize: 1,
          schemaJson: "{}",
          rowCount: 1,
          createdBy: engineer.id,
          createdAt: AT,
        }),
      );
    return { runId: target.id, otherRunId: other.id };
  });
}

const QUERIES: { q: string; limit?: number }[] = [
  { q: "a_b" },
  { q: "100%" },
  { q: "k\\s" },
  { q: "%" },
  { q: "_" },
  { q: "srch" },
  { q: "srch", limit: 2 },
  { q: "wombat" },
  { q: "team=wombat" },
  { q: "team=squad" },
  { q: "mlflow.user=" },
  { q: "target run" },
  { q: "NEEDLE" },
  { q: "needle_" },
  { q: "quokka" },
  { q: "srch-model" },
  { q: "SRCH-MODEL V2" },
  { q: "iris" },
  { q: "bulk-exp" },
  { q: "bulk-exp", limit: 50 },
  { q: "élan" },
  { q: "ÉLAN" },
  { q: "elan" },
  { q: "ELAN" },
  { q: "from run" },
  { q: "x".repeat(100) },
];

const answers: Partial<Record<Store["dialect"], SearchResult[]>> = {};
const warnings: Partial<Record<Store["dialect"], string[]>> = {};

const search = (store: Store, q: { q: string; limit?: number }) => searchGlobal(store, searchInput.parse(q));
const hitsOf = (r: SearchResult, kind: string) => r.groups.find((g) => g.kind === kind)!.hits.map((h) => [h.title, h.matched]);

function behaviourCases(storeOf: () => Store, ids: () => { runId: number; otherRunId: number }) {
  it("searches: wildcards literal, ASCII-only case folding, tags picked in byte order, bounded with 'more'", async () => {
    const store = storeOf();
    const all: SearchResult[] = [];
    for (const q of QUERIES) all.push(await search(store, q));
    answers[store.dialect] = all;
    const at = (q: string, limit?: number) => all[QUERIES.findIndex((x) => x.q === q && x.limit === limit)]!;
    expect(hitsOf(at("a_b"), "project")).toEqual([["srch a_b", "name"]]);
    expect(hitsOf(at("100%"), "project")).toEqual([["srch 100% sure", "name"]]);
    expect(hitsOf(at("k\\s"), "project")).toEqual([["srch back\\slash", "name"]]);
    // "É" and "é" are different letters to both stores; "E" and "e", "L" and "l" are the same.
    expect(hitsOf(at("élan"), "project")).toEqual([["élan small", "name"]]);
    expect(hitsOf(at("ÉLAN"), "project")).toEqual([
      ["ÉLAN LOUD", "name"],
      ["Élan vital", "name"],
    ]);
    expect(hitsOf(at("ÉLAN"), "dataset")).toEqual([["penguins", "origin"]]);
    expect(hitsOf(at("elan"), "project")).toEqual([["Plain Elan", "name"]]);
    expect(at("ELAN")).toEqual({ ...at("elan"), q: "ELAN" });
    // Two tags match "needle": the one first in byte order ("N" < "n") is named.
    expect(at("NEEDLE").groups.find((g) => g.kind === "run")!.hits).toEqual([
      {
        kind: "run",
        id: ids().runId,
        title: "search target run",
        context: "srch main / bulk-exp-0",
        matched: "tag Needle_b",
        href: `/runs/${ids().runId}`,
      },
    ]);
    expect(hitsOf(at("wombat"), "run")).toEqual([["another run", "tag Mlflow.user=wombat"]]);
    expect(hitsOf(at("wombat"), "experiment")).toEqual([["bulk-exp-0", "tag team=wombat-squad"]]);
    expect(hitsOf(at("wombat"), "project")).toEqual([["described", "description"]]);
    expect(hitsOf(at("wombat"), "dataset")).toEqual([["Wombat counts", "name"]]);
    expect(hitsOf(at("quokka"), "experiment")).toEqual([["bulk-exp-3", "description"]]);
    expect(hitsOf(at("quokka"), "run")).toEqual([["search target run", "description"]]);
    expect(
      at("SRCH-MODEL V2")
        .groups.find((g) => g.kind === "modelVersion")!
        .hits.map((h) => [h.title, h.context, h.href]),
    ).toEqual([["srch-model v2", `from run #${ids().runId}`, "/models/srch-model/versions/2"]]);
    const few = at("bulk-exp").groups.find((g) => g.kind === "experiment")!;
    expect([few.hits.length, few.more]).toEqual([5, true]);
    const more = at("bulk-exp", 50).groups.find((g) => g.kind === "experiment")!;
    expect([more.hits.length, more.more]).toEqual([8, false]);
    expect(at("srch", 2).groups.find((g) => g.kind === "project")!).toMatchObject({ more: true, hits: [{}, {}] });
    expect(at("x".repeat(100)).total).toBe(0);
  });

  it("warns administrators of the enabled demo accounts still on their public password, in byte order", async () => {
    const store = storeOf();
    const warning = await demoPasswordWarningOn(store);
    warnings[store.dialect] = warning;
    expect(warning).toEqual(["admin@runledger.local", "auditor@runledger.local", "engineer@runledger.local"]);
  });

  it("runs the explorer's queries when given the app's store", async () => {
    const store = storeOf();
    const explore = store.dialect === "pg" ? explorePgStore(store.db) : store.db;
    expect(await searchRuns(store, {})).toEqual(await searchRuns(explore, {}));
    expect(await listColumns(store)).toEqual(await listColumns(explore));
    const runIds = [ids().runId, ids().otherRunId];
    expect(await compareRuns(store, runIds)).toEqual(await compareRuns(explore, runIds));
  });
}

describe("app reads on SQLite", () => {
  const sqlite = sqliteForSuite("rl-app-reads-");
  let ids = { runId: 0, otherRunId: 0 };
  beforeAll(async () => {
    ids = await seed(sqlite.store());
  });
  behaviourCases(
    () => sqlite.store(),
    () => ids,
  );
});

describePg("app reads on PostgreSQL (an ICU en-US database)", () => {
  let db: PgDb | undefined;
  let scratch: ScratchPgDatabase | undefined;
  let ids = { runId: 0, otherRunId: 0 };
  beforeAll(async () => {
    scratch = await createScratchPgDatabase({ linguisticCollation: true });
    db = openPgDatabase(scratch.url, { max: 4 });
    await migratePg(db);
    ids = await seed(pgStore(db));
  }, 120_000);
  afterAll(async () => {
    await db?.$client.end().catch(() => undefined);
    await scratch?.drop();
  });

  it("is a database where a plain ILIKE folds non-ASCII letters and a plain ORDER BY is not byte order", async () => {
    const { rows } = await db!.$client.query<{ folds: boolean; first: string }>(
      `SELECT 'Élan vital' ILIKE '%élan%' AS folds, (SELECT tag FROM run_tags WHERE tag ILIKE '%needle%' ORDER BY tag LIMIT 1) AS first`,
    );
    expect(rows).toEqual([{ folds: true, first: "needle_a" }]);
  });

  behaviourCases(
    () => pgStore(db!),
    () => ids,
  );

  it("gives the same answers as SQLite", () => {
    expect(answers.sqlite).toBeDefined();
    expect(answers.pg).toEqual(answers.sqlite);
    expect(warnings.pg).toEqual(warnings.sqlite);
  });
});
