import { execFileSync } from "node:child_process";
import { randomBytes } from "node:crypto";
import { runledgerE2eConfig } from "./playwright.config";

/**
 * The browser tests again, with the app on PostgreSQL (issue 16: "everything else works the same, every page"):
 * `npm run serve` with DATABASE_URL naming a new database on the test cluster (RUNLEDGER_TEST_PG_URL,
 * scripts/pg-cluster.sh), so `seed` fills PostgreSQL and `next start` serves from it; the record and the artifacts
 * live only there (the data directory is the server's local scratch directory: upload temp files, the public key
 * file). The witness is the same as on SQLite. Specs that start servers or run commands on a SQLite data directory of
 * their own are left out (they would test SQLite again). The database stays for inspection until the cluster goes.
 */
const base = process.env.RUNLEDGER_TEST_PG_URL?.trim();
if (!base)
  throw new Error("RUNLEDGER_TEST_PG_URL is not set: start a cluster (export RUNLEDGER_TEST_PG_URL=$(bash scripts/pg-cluster.sh start))");
// One database per run (its name goes into the environment: Playwright loads this config again in its workers).
if (!process.env.E2E_PG_DATABASE) {
  process.env.E2E_PG_DATABASE = `rl_e2e_${randomBytes(6).toString("hex")}`;
  // Through node-postgres in a child process (the config is synchronous; psql need not be on PATH).
  const create = `const c = new (require("pg").Client)({ connectionString: process.argv[1] });
    c.connect().then(() => c.query(process.argv[2])).then(() => c.end(), (e) => { console.error(e.message); process.exit(1); });`;
  execFileSync(process.execPath, ["-e", create, base, `CREATE DATABASE ${process.env.E2E_PG_DATABASE}`], { stdio: "inherit" });
}
const databaseUrl = new URL(base);
databaseUrl.pathname = `/${process.env.E2E_PG_DATABASE}`;

export default runledgerE2eConfig({
  databaseUrl: databaseUrl.toString(),
  testIgnore: ["auth-followups.spec.ts", "auth.spec.ts", "daily-use-review.spec.ts", "training-workers.spec.ts", "witness-boot.spec.ts"],
});
