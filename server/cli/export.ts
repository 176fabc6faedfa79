/**
 * `npm run cli -- export --model NAME [--version N | --alias production] --out PATH [--user EMAIL] [--data-dir DIR] [--json]`
 * writes the auditor's report bundle of a model version (latest version when neither --version nor --alias is given).
 * PATH ending in .tar gives a ustar archive whose top folder is PATH without .tar; any other PATH is a new (or empty)
 * directory. `audit verify --bundle DIR` reads the directory (unpack a .tar first: `tar xf PATH`).
 *
 * `npm run cli -- export --verify DIR|FILE.tar [--public-key FILE] [--json]` checks a bundle offline: the ledger, the
 * report's binding to it, every inclusion proof, re-rendered page and charts, manifest hashes.
 *
 * The export is recorded in the ledger ("audit.export") attributed to --user (default: the demo auditor), followed by a
 * signed checkpoint, pushed to the witnesses of RUNLEDGER_WITNESSES (a bounded wait; cosignatures.json records who
 * cosigned it). Exit codes: 0 ok, 1 failure (or bundle does not verify), 2 usage error.
 */
import fs from "node:fs";
import os from "node:os";
import path from "node:path";
import { parseArgs } from "node:util";
import { eq } from "drizzle-orm";
import { users } from "@/db/schema";
import { openDatabase, resolveDataDir } from "@/db/client";
import { resolveKeyDir } from "@/server/audit/keys";
import { openAuditSigningKeys } from "@/server/audit/key-custody";
import { DEMO_USERS } from "@/server/demo/seed";
import { actorOf } from "@/server/users/service";
import { resolveModelVersion } from "@/server/audit/report/export-bundle";
import { untarInto } from "@/server/audit/report/tar";
import { exportReportToCosigned } from "@/server/audit/report/export-cosigned";
import { verifyReportBundle } from "@/server/audit/report/verify-report";

export type CliIo = { out: (text: string) => void; err: (text: string) => void };
const processIo: CliIo = { out: (t) => process.stdout.write(t), err: (t) => process.stderr.write(t) };

const USAGE = `usage:
  export --model NAME [--version N | --alias ALIAS] --out DIR|FILE.tar [--user EMAIL] [--data-dir DIR] [--key-dir DIR] [--json]
  export --verify DIR|FILE.tar [--public-key FILE] [--json]`;

export async function exportCommand(argv: string[], io: CliIo = processIo): Promise<number> {
  let values;
  try {
    ({ values } = parseArgs({
      args: argv,
      options: {
        model: { type: "string" },
        version: { type: "string" },
        alias: { type: "string" },
        out: { type: "string" },
        user: { type: "string", default: DEMO_USERS[3]!.email },
        "data-dir": { type: "string" },
        "key-dir": { type: "string" },
        verify: { type: "string" },
        "public-key": { type: "string" },
        json: { type: "boolean", default: false },
      },
      strict: true,
      allowPositionals: false,
    }));
  } catch (err) {
    io.err(`${(err as Error).message}\n${USAGE}\n`);
    return 2;
  }
  if (values.verify) return verifyCommand(values.verify, values["public-key"], values.json, io);
  const version = values.version === undefined ? undefined : Number(values.version);
  if (!values.model || !values.out || (version !== undefined && !Number.isInteger(version)) || (values.version && values.alias)) {
    io.err(`export: --model NAME and --out PATH are required; give --version N or --alias ALIAS, not both\n${USAGE}\n`);
    return 2;
  }
  const dataDir = resolveDataDir(values["data-dir"]);
  if (!fs.existsSync(dataDir)) {
    io.err(`export: data directory not found: ${dataDir}\n`);
    return 2;
  }
  const db = openDatabase(dataDir);
  try {
    const user = db.select().from(users).where(eq(users.email, values.user.toLowerCase())).get();
    if (!user) {
      io.err(`export: no user with email ${values.user}\n`);
      return 2;
    }
    const target = resolveModelVersion(db, values.model, { version, alias: values.alias });
    const out = path.resolve(values.out);
    // With RUNLEDGER_WITNESSES set, the export's checkpoint is pushed to the witnesses first (≤ 3 s wait; never fails on them).
    const r = await exportReportToCosigned(
      { db, auditKeys: openAuditSigningKeys(db, { dataDir, keyDir: resolveKeyDir(values["key-dir"]) }) },
      actorOf(user),
      target.modelVersionId,
      out,
      { log: () => undefined },
    );
    if (values.json) io.out(JSON.stringify(r) + "\n");
    else {
      io.out(
        `Wrote the auditor's report of ${r.model} v${r.version} (weights ${r.weightsSha256}) to ${r.out} (${r.kind}, ${r.files.length} files)\n` +
          `  recorded as ledger event #${r.exportEventSeq}; signed checkpoint #${r.checkpoint.id} (tree size ${r.checkpoint.treeSize}, key ${r.checkpoint.keyFingerprint})\n` +
          (r.witnessing?.witnesses ?? [])
            .map(
              (w) =>
                `  witness ${w.witness} (${w.url}): ${w.cosigned ? "cosigned this checkpoint" : `NOT cosigned (${w.reason ?? "no answer"}); the bundle says so`}\n`,
            )
            .join("") +
          `  check it: npm run cli -- export --verify ${r.out}   (ledger only: audit verify --bundle DIR${r.kind === "tar" ? " after tar xf" : ""})\n`,
      );
    }
    return 0;
  } catch (err) {
    io.err(`export: ${(err as Error).message}\n`);
    return 1;
  } finally {
    db.$client.close();
  }
}

async function verifyCommand(target: string, publicKeyFile: string | undefined, json: boolean, io: CliIo): Promise<number> {
  const abs = path.resolve(target);
  if (!fs.existsSync(abs)) {
    io.err(`export --verify: not found: ${abs}\n`);
    return 2;
  }
  let dir = abs;
  let tmp: string | null = null;
  try {
    if (fs.statSync(abs).isFile()) {
      tmp = fs.mkdtempSync(path.join(os.tmpdir(), "runledger-verify-"));
      untarInto(fs.readFileSync(abs), tmp);
      dir = tmp;
    }
    const publicKeyPem = publicKeyFile ? fs.readFileSync(publicKeyFile, "utf8") : undefined;
    const r = await verifyReportBundle(dir, { publicKeyPem });
    if (json) io.out(JSON.stringify({ target: abs, ...r }) + "\n");
    else {
      io.out(`Auditor's report bundle ${abs}: ${r.ok ? "VERIFIED" : "NOT VERIFIED"}\n`);
      for (const c of r.checked) io.out(`  ok:      ${c}\n`);
      for (const p of r.problems) io.out(`  PROBLEM: ${p}\n`);
      for (const n of r.ledger.notes) io.out(`  note:    ${n}\n`);
    }
    return r.ok ? 0 : 1;
  } catch (err) {
    io.err(`export --verify: ${(err as Error).message}\n`);
    return 1;
  } finally {
    if (tmp) fs.rmSync(tmp, { recursive: true, force: true });
  }
}
