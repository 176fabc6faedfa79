import { defineConfig } from "drizzle-kit";

// The PostgreSQL store (issue 16): schema db/schema-pg (kept in step with db/schema by db/tests/schema-dialects.test.ts),
// migrations generated into db/migrations-pg and committed, like the SQLite ones:
//   flock /tmp/runledger-migrate.lock npx drizzle-kit generate --config drizzle.pg.config.ts --name X
export default defineConfig({
  dialect: "postgresql",
  // PostgreSQL-only tables, not in db/schema-pg/index.ts: cluster-artifacts.ts (the cluster artifact store) and
  // audit-verify-jobs.ts (the audit page's "Verify now" jobs, shared by the web servers).
  schema: ["./db/schema-pg/index.ts", "./db/schema-pg/cluster-artifacts.ts", "./db/schema-pg/audit-verify-jobs.ts"],
  out: "./db/migrations-pg",
});
