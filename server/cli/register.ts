/**
 * `register --run ID --model NAME [--checkpoint best|EPOCH] [--user EMAIL] [--data-dir DIR] [--key-dir DIR] [--json]`:
 * registers a checkpoint of a completed run (any other is refused, exit 1) as the next version of a named model,
 * through the same service as the web app (engineer role, audited). With --json, stdout carries exactly one object: {model, version, weightsSha256}.
 * With DATABASE_URL=postgres://… it registers in the PostgreSQL store (issue 16; --data-dir is refused there); the
 * due checkpoint is signed only when the key directory holds the installation's key (cli-store.ts), never a new key.
 */
import { parseArgs } from "node:util";
import { eq } from "drizzle-orm";
import { users } from "@/db/schema";
import { openDatabase, resolveDataDir, type Db } from "@/db/client";
import { checkpointAfterCliWrite } from "./checkpoint-after-write";
import { DEMO_USERS } from "@/server/demo/seed";
import { actorOf } from "@/server/users/service";
import { registerModelVersion } from "@/server/registry/service";
import { resolveKeyDir } from "@/server/audit/keys";
import { openAuditSigningKeys } from "@/server/audit/key-custody";
import { postgresUrlFromEnv } from "@/server/app-context/pg-store-services";
import { asStore, reader, type Store } from "@/db/store";
import { dataDirWithPostgresRefusal, openCliStore } from "./cli-store";
import { runStatusOn, wrongRunState } from "./exit-codes";

/**
 * Only a completed run's checkpoints are registered (the registry's rule): any other run is refused with exit 1, said
 * on stderr (exit-codes.ts). An unknown run is left to the service, whose "not found" exits 2.
 */
async function notCompleted(db: Store | Db, runId: number): Promise<boolean> {
  const status = await runStatusOn(db, runId);
  return status !== undefined && wrongRunState("register", runId, status, "register", ["completed"]) !== null;
}

export async function registerCommand(argv: string[]): Promise<number> {
  const { values } = parseArgs({
    args: argv,
    options: {
      run: { type: "string" },
      model: { type: "string" },
      checkpoint: { type: "string", default: "best" },
      user: { type: "string", default: DEMO_USERS[1]!.email },
      "data-dir": { type: "string" },
      "key-dir": { type: "string" },
      json: { type: "boolean", default: false },
    },
  });
  const runId = Number(values.run);
  if (!values.run || !Number.isInteger(runId) || !values.model) {
    process.stderr.write("register: --run ID and --model NAME are required\n");
    return 2;
  }
  const checkpoint = values.checkpoint === "best" ? ("best" as const) : { epoch: Number(values.checkpoint) };
  if (checkpoint !== "best" && !Number.isInteger(checkpoint.epoch)) {
    process.stderr.write(`register: --checkpoint must be "best" or an epoch number, not "${values.checkpoint}"\n`);
    return 2;
  }
  const refusal = dataDirWithPostgresRefusal("register", values["data-dir"]);
  if (refusal) {
    process.stderr.write(refusal);
    return 2;
  }
  const registered = (out: { model: string; version: number; weightsSha256: string; epoch: number }) =>
    process.stdout.write(
      values.json
        ? `${JSON.stringify({ model: out.model, version: out.version, weightsSha256: out.weightsSha256 })}\n`
        : `registered ${out.model} version ${out.version} from run ${runId} (epoch ${out.epoch}), weights sha256 ${out.weightsSha256}\n`,
    );
  if (postgresUrlFromEnv()) {
    const on = await openCliStore({ keyDir: values["key-dir"] });
    try {
      const store = asStore(on.store);
      const u = store.tables.users;
      const [user] = await reader(store).select().from(u).where(eq(u.email, values.user.toLowerCase())).limit(1);
      if (!user) {
        process.stderr.write(`register: no user with email ${values.user}\n`);
        return 2;
      }
      if (await notCompleted(on.store, runId)) return 1;
      registered(await registerModelVersion({ db: on.store, actor: actorOf(user) }, { runId, modelName: values.model, checkpoint }));
      await on.checkpointAfterWrite();
      return 0;
    } finally {
      await on.close();
    }
  }
  const dataDir = resolveDataDir(values["data-dir"]);
  const db = openDatabase(dataDir);
  try {
    const user = db.select().from(users).where(eq(users.email, values.user.toLowerCase())).get();
    if (!user) {
      process.stderr.write(`register: no user with email ${values.user}\n`);
      return 2;
    }
    if (await notCompleted(db, runId)) return 1;
    const auditKeys = openAuditSigningKeys(db, { dataDir, keyDir: resolveKeyDir(values["key-dir"]) });
    const out = await registerModelVersion({ db, actor: actorOf(user) }, { runId, modelName: values.model, checkpoint });
    checkpointAfterCliWrite(db, { dataDir, auditKeys });
    registered(out);
    return 0;
  } finally {
    db.$client.close();
  }
}
