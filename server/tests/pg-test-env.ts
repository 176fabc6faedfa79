/**
 * PostgreSQL for integration tests (issue 16). scripts/test-all.sh (the README's and CI's test command) starts a
 * throwaway cluster with scripts/pg-cluster.sh and sets RUNLEDGER_TEST_PG_URL; locally:
 *   export RUNLEDGER_TEST_PG_URL=$(bash scripts/pg-cluster.sh start)
 *
 * Without the variable a PostgreSQL suite never passes silently: in CI (CI set) it fails with the reason; elsewhere
 * it is skipped, and the skip names the reason in the suite's title and on stderr.
 * Each suite works in a database of its own (`createScratchPgDatabase`), dropped at the end.
 */
import { describe, it } from "vitest";
import pg from "pg";
import { createScratchPgDatabase as createScratchPgDatabaseOn, type ScratchPgDatabase } from "@/db/pg-client";

export type { ScratchPgDatabase };

export const PG_TEST_URL_VAR = "RUNLEDGER_TEST_PG_URL";
const NO_PG_REASON = `${PG_TEST_URL_VAR} is not set (start a cluster: export ${PG_TEST_URL_VAR}=$(bash scripts/pg-cluster.sh start))`;

export function pgTestUrl(): string | undefined {
  const url = process.env[PG_TEST_URL_VAR];
  return url && url.trim() ? url.trim() : undefined;
}

const inCi = () => !!process.env.CI && process.env.CI !== "false" && process.env.CI !== "0";

/** describe() for suites that need PostgreSQL: runs with a cluster, fails in CI without one, else skips visibly. */
export function describePg(name: string, body: () => void): void {
  if (pgTestUrl()) {
    describe(name, body);
  } else if (inCi()) {
    describe(name, () => {
      it("has a PostgreSQL cluster to test against", () => {
        throw new Error(`${NO_PG_REASON}: CI must run the PostgreSQL suites (scripts/test-all.sh starts the cluster)`);
      });
    });
  } else {
    process.stderr.write(`[skipped] ${name}: ${NO_PG_REASON}\n`);
    describe.skip(`${name} [skipped: ${NO_PG_REASON}]`, body);
  }
}

/**
 * A new empty database on the test cluster; drop() removes it (closing any connection left to it). Options as
 * db/pg-client's (an ICU en-US default collation).
 */
export async function createScratchPgDatabase(options: { linguisticCollation?: boolean } = {}): Promise<ScratchPgDatabase> {
  const base = pgTestUrl();
  if (!base) throw new Error(NO_PG_REASON);
  return createScratchPgDatabaseOn(base, "rl_test", options);
}

/** One client on `url` for `fn` (a tamper, a catalog read), closed afterwards. */
export async function withPgClient<T>(url: string, fn: (c: pg.Client) => Promise<T>): Promise<T> {
  const c = new pg.Client({ connectionString: url });
  await c.connect();
  try {
    return await fn(c);
  } finally {
    await c.end();
  }
}
