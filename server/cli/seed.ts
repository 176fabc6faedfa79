/**
 * `seed [--data-dir DIR] [--key-dir DIR] [--no-demo-run]`: first-start set-up, run by `npm run serve` before every
 * start. In a NEW database (no users) and unless RUNLEDGER_DEMO=0, it creates the demo users, project and a trained
 * demo run and prints the demo credentials once. Any other time it changes nothing (no re-seeding of demo users or
 * their passwords); with no users at all it says how to create the first administrator.
 */
import { parseArgs } from "node:util";
import { createAppServices, createPgAppServices } from "@/server/app-context/app-services";
import { postgresUrlFromEnv } from "@/server/app-context/pg-store-services";
import { applyCheckpointPolicyOn } from "@/server/audit/checkpoint-policy";
import { demoDataWanted, ensureDemoSeed, ensureDemoSeedOn, ensureDemoUsersAndProject, isNewDatabase, isNewStore } from "@/server/demo/seed";
import { checkpointAfterCliWrite } from "./checkpoint-after-write";
import { dataDirWithPostgresRefusal } from "./cli-store";

export async function seedCommand(argv: string[]): Promise<number> {
  const { values } = parseArgs({
    args: argv,
    options: { "data-dir": { type: "string" }, "key-dir": { type: "string" }, "no-demo-run": { type: "boolean", default: false } },
  });
  const pgUrl = postgresUrlFromEnv();
  if (pgUrl) return seedPostgres(pgUrl, values);
  // Only the upload sweep: runs a dead process left are taken over by the web server that starts next (it stays up to
  // train them), not by this process, which exits right after seeding.
  const services = createAppServices(values["data-dir"], { recover: "uploads", keyDir: values["key-dir"] });
  if (!isNewDatabase(services.db) || !demoDataWanted()) {
    if (isNewDatabase(services.db))
      process.stdout.write(
        `Runledger: RUNLEDGER_DEMO=0, no demo data. No users yet: create the first administrator with\n  npm run cli -- users create --email YOU@EXAMPLE.ORG --name "Your Name" --role admin --data-dir ${services.dataDir}\n`,
      );
    services.db.$client.close();
    return 0;
  }
  const result = values["no-demo-run"] ? ensureDemoUsersAndProject(services) : await ensureDemoSeed(services);
  if (result.createdUsers.length) {
    process.stdout.write(`Runledger: created demo users in ${services.dataDir} (shown once; also in README.md):\n`);
    for (const u of result.createdUsers) process.stdout.write(`  ${u.role.padEnd(9)} ${u.email.padEnd(28)} ${u.password}\n`);
  }
  if (result.demoRunId) process.stdout.write(`Runledger: trained demo run ${result.demoRunId}\n`);
  checkpointAfterCliWrite(services.db, { dataDir: services.dataDir, auditKeys: services.auditKeys });
  services.db.$client.close();
  return 0;
}

/**
 * `seed` with DATABASE_URL=postgres://… (issue 16): the same first-start set-up in the PostgreSQL store, through the
 * ported services; the checkpoint it makes due is signed with this machine's key (RUNLEDGER_KEY_DIR), the key the web
 * server started next on this machine signs with. --data-dir is refused: the record is in PostgreSQL.
 */
async function seedPostgres(url: string, values: { "data-dir"?: string; "key-dir"?: string; "no-demo-run"?: boolean }): Promise<number> {
  const refusal = dataDirWithPostgresRefusal("seed", values["data-dir"]);
  if (refusal) {
    process.stderr.write(refusal);
    return 2;
  }
  const services = await createPgAppServices(url, { keyDir: values["key-dir"], poolSize: 2 });
  try {
    if (!(await isNewStore(services.db)) || !demoDataWanted()) {
      if (await isNewStore(services.db))
        process.stdout.write(
          'Runledger: RUNLEDGER_DEMO=0, no demo data. No users yet: create the first administrator with\n  DATABASE_URL=… npm run cli -- users create --email YOU@EXAMPLE.ORG --name "Your Name" --role admin\n',
        );
      return 0;
    }
    const result = await ensureDemoSeedOn(services, { withRun: !values["no-demo-run"] });
    if (result.createdUsers.length) {
      process.stdout.write("Runledger: created demo users in PostgreSQL (shown once; also in README.md):\n");
      for (const u of result.createdUsers) process.stdout.write(`  ${u.role.padEnd(9)} ${u.email.padEnd(28)} ${u.password}\n`);
    }
    if (result.demoRunId) process.stdout.write(`Runledger: trained demo run ${result.demoRunId}\n`);
    const outcome = await applyCheckpointPolicyOn(services);
    if ("error" in outcome && outcome.error) process.stderr.write(`note: no audit checkpoint signed after seeding (${outcome.error})\n`);
    return 0;
  } finally {
    await services.close();
  }
}
