/**
 * `export-prov --model NAME --version N [--user EMAIL] [--data-dir DIR]`: prints the lineage of a model version as
 * W3C PROV-JSON on stdout (validated before printing; the export is recorded in the audit ledger as lineage.export,
 * attributed to --user, by default the demo auditor).
 */
import { parseArgs } from "node:util";
import { eq } from "drizzle-orm";
import { users } from "@/db/schema";
import { openDatabase, resolveDataDir } from "@/db/client";
import { DEMO_USERS } from "@/server/demo/seed";
import { actorOf } from "@/server/users/service";
import { exportLineageProv } from "@/server/lineage/service";
import { checkpointAfterCliWrite } from "./checkpoint-after-write";

export async function exportProvCommand(argv: string[]): Promise<number> {
  const { values } = parseArgs({
    args: argv,
    options: {
      model: { type: "string" },
      version: { type: "string" },
      user: { type: "string", default: DEMO_USERS[3]!.email },
      "data-dir": { type: "string" },
    },
  });
  const version = Number(values.version);
  if (!values.model || !values.version || !Number.isInteger(version)) {
    process.stderr.write("export-prov: --model NAME and --version N are required\n");
    return 2;
  }
  const dataDir = resolveDataDir(values["data-dir"]);
  const db = openDatabase(dataDir);
  try {
    const user = db.select().from(users).where(eq(users.email, values.user.toLowerCase())).get();
    if (!user) {
      process.stderr.write(`export-prov: no user with email ${values.user}\n`);
      return 2;
    }
    const { document } = await exportLineageProv(db, actorOf(user), values.model, version);
    checkpointAfterCliWrite(db, { dataDir });
    process.stdout.write(`${JSON.stringify(document, null, 2)}\n`);
    return 0;
  } finally {
    db.$client.close();
  }
}
