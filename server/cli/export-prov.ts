/**
 * `export-prov --model NAME --version N [--user EMAIL] [--data-dir DIR]`: prints the lineage of a model version as
 * W3C PROV-JSON on stdout (validated before printing; the export is recorded in the audit ledger as lineage.export,
 * attributed to --user, by default the demo auditor). An unknown user, model or version exits 2.
 * With DATABASE_URL=postgres://… (issue 16) it reads and records in the PostgreSQL store (--data-dir is refused there,
 * exit 2); the due checkpoint is signed only when the key directory holds the installation's key (cli-store.ts).
 */
import { parseArgs } from "node:util";
import { eq } from "drizzle-orm";
import { asStore, reader } from "@/db/store";
import { DEMO_USERS } from "@/server/demo/seed";
import { DomainError } from "@/server/errors";
import { actorOf } from "@/server/users/service";
import { exportLineageProv } from "@/server/lineage/service";
import { dataDirWithPostgresRefusal, openCliStore } from "./cli-store";

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
  const refusal = dataDirWithPostgresRefusal("export-prov", values["data-dir"]);
  if (refusal) {
    process.stderr.write(refusal);
    return 2;
  }
  const on = await openCliStore({ dataDir: values["data-dir"] });
  try {
    const store = asStore(on.store);
    const u = store.tables.users;
    const [user] = await reader(store).select().from(u).where(eq(u.email, values.user.toLowerCase())).limit(1);
    if (!user) {
      process.stderr.write(`export-prov: no user with email ${values.user}\n`);
      return 2;
    }
    const { document } = await exportLineageProv(on.store, actorOf(user), values.model, version);
    await on.checkpointAfterWrite();
    process.stdout.write(`${JSON.stringify(document, null, 2)}\n`);
    return 0;
  } catch (err) {
    if (!(err instanceof DomainError)) throw err;
    process.stderr.write(`export-prov: ${err.message}\n`);
    return 2;
  } finally {
    await on.close();
  }
}
