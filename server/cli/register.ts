/**
 * `register --run ID --model NAME [--checkpoint best|EPOCH] [--user EMAIL] [--data-dir DIR] [--key-dir DIR] [--json]`:
 * registers a checkpoint of a completed run as the next version of a named model, through the same service as the
 * web app (engineer role, audited). With --json, stdout carries exactly one object: {model, version, weightsSha256}.
 */
import { parseArgs } from "node:util";
import { eq } from "drizzle-orm";
import { users } from "@/db/schema";
import { openDatabase, resolveDataDir } from "@/db/client";
import { checkpointAfterCliWrite } from "./checkpoint-after-write";
import { DEMO_USERS } from "@/server/demo/seed";
import { actorOf } from "@/server/users/service";
import { registerModelVersion } from "@/server/registry/service";
import { resolveKeyDir } from "@/server/audit/keys";
import { openAuditSigningKeys } from "@/server/audit/key-custody";

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
  const dataDir = resolveDataDir(values["data-dir"]);
  const db = openDatabase(dataDir);
  try {
    const user = db.select().from(users).where(eq(users.email, values.user.toLowerCase())).get();
    if (!user) {
      process.stderr.write(`register: no user with email ${values.user}\n`);
      return 2;
    }
    const auditKeys = openAuditSigningKeys(db, { dataDir, keyDir: resolveKeyDir(values["key-dir"]) });
    const out = await registerModelVersion({ db, actor: actorOf(user) }, { runId, modelName: values.model, checkpoint });
    checkpointAfterCliWrite(db, { dataDir, auditKeys });
    if (values.json)
      process.stdout.write(`${JSON.stringify({ model: out.model, version: out.version, weightsSha256: out.weightsSha256 })}\n`);
    else
      process.stdout.write(
        `registered ${out.model} version ${out.version} from run ${runId} (epoch ${out.epoch}), weights sha256 ${out.weightsSha256}\n`,
      );
    return 0;
  } finally {
    db.$client.close();
  }
}
