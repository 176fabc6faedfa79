/** `seed [--data-dir DIR] [--no-demo-run]`: first-start set-up; prints the demo credentials when it creates the users. */
import { parseArgs } from "node:util";
import { createAppServices } from "@/server/app-services";
import { ensureDemoSeed, ensureDemoUsersAndProject } from "@/server/seed";

export async function seedCommand(argv: string[]): Promise<number> {
  const { values } = parseArgs({ args: argv, options: { "data-dir": { type: "string" }, "key-dir": { type: "string" }, "no-demo-run": { type: "boolean", default: false } } });
  const services = createAppServices(values["data-dir"], { recover: true, keyDir: values["key-dir"] });
  const result = values["no-demo-run"] ? ensureDemoUsersAndProject(services) : await ensureDemoSeed(services);
  if (result.createdUsers.length) {
    process.stdout.write(`Runledger: created demo users in ${services.dataDir} (shown once; also in README.md):\n`);
    for (const u of result.createdUsers) process.stdout.write(`  ${u.role.padEnd(9)} ${u.email.padEnd(28)} ${u.password}\n`);
  }
  if (result.demoRunId) process.stdout.write(`Runledger: trained demo run ${result.demoRunId}\n`);
  services.db.$client.close();
  return 0;
}
