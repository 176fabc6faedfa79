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
 * cosigned it). Exit codes: 0 ok, 1 failure (or bundle does not verify), 2 usage error (an unknown user, model,
 * version or alias included).
 *
 * With DATABASE_URL=postgres://… (issue 16) the export reads the PostgreSQL store as the web app's export route does
 * (export-in-worker.ts: a copy of one snapshot for the report, the export recorded and signed on the store); the
 * checkpoint is signed with the installation's key from this machine's key directory (--key-dir or RUNLEDGER_KEY_DIR:
 * the key the ledger names), whose public key the bundle carries; without that key it refuses (exit 1) and creates
 * none. --data-dir is refused there (exit 2). `--verify` is offline and the same on both.
 */
import fs from "node:fs";
import os from "node:os";
import path from "node:path";
import { parseArgs } from "node:util";
import { eq } from "drizzle-orm";
import { resolveDataDir } from "@/db/client";
import { asStore, reader, type Store } from "@/db/store";
import { postgresUrlFromEnv } from "@/server/app-context/pg-store-services";
import type { Actor } from "@/server/audit/ledger";
import { type AuditKeys, resolveKeyDir } from "@/server/audit/keys";
import { openAuditSigningKeys } from "@/server/audit/key-custody";
import { DEMO_USERS } from "@/server/demo/seed";
import { DomainError } from "@/server/errors";
import { readOnStore } from "@/server/registry/on-store";
import { actorOf } from "@/server/users/service";
import { assertEmptyOutDir, type ReportExportResult } from "@/server/audit/report/bundle-layout";
import { resolveModelVersionIn } from "@/server/audit/report/export-bundle";
import { exportReportInWorker } from "@/server/audit/report/export-in-worker";
import { untarInto } from "@/server/audit/report/tar";
import { exportReportToCosigned } from "@/server/audit/report/export-cosigned";
import { verifyReportBundle } from "@/server/audit/report/verify-report";
import { BUNDLE_COSIGNATURES_FILE } from "@/server/audit/witness/bundle-files";
import type { FreshCheckpointWitnessing } from "@/server/audit/witness/fresh-cosign";
import { dataDirWithPostgresRefusal, openCliStore } from "./cli-store";
import { COPY_THE_KEY_HINT, installationKeyOnPostgres } from "./cli-pg-keys";

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
  const refusal = dataDirWithPostgresRefusal("export", values["data-dir"]);
  if (refusal) {
    io.err(refusal);
    return 2;
  }
  if (!postgresUrlFromEnv()) {
    const dataDir = resolveDataDir(values["data-dir"]);
    if (!fs.existsSync(dataDir)) {
      io.err(`export: data directory not found: ${dataDir}\n`);
      return 2;
    }
  }
  const on = await openCliStore({ dataDir: values["data-dir"], keyDir: values["key-dir"] });
  try {
    const store = asStore(on.store);
    const u = store.tables.users;
    const [user] = await reader(store).select().from(u).where(eq(u.email, values.user.toLowerCase())).limit(1);
    if (!user) {
      io.err(`export: no user with email ${values.user}\n`);
      return 2;
    }
    let target;
    try {
      target = await readOnStore(store, (q, t) => resolveModelVersionIn(q, t, values.model!, { version, alias: values.alias }));
    } catch (err) {
      if (!(err instanceof DomainError)) throw err;
      io.err(`export: ${err.message}\n`);
      return 2;
    }
    const out = path.resolve(values.out);
    let r: ExportedReport;
    if (store.dialect === "sqlite") {
      const dataDir = on.dataDir!; // a SQLite store always has its data directory
      const auditKeys = openAuditSigningKeys(store.db, { dataDir, keyDir: resolveKeyDir(values["key-dir"]) });
      // With RUNLEDGER_WITNESSES set, the export's checkpoint is pushed to the witnesses first (≤ 3 s wait; never fails on them).
      r = await exportReportToCosigned({ db: store.db, auditKeys }, actorOf(user), target.modelVersionId, out, {
        log: () => undefined,
      });
    } else {
      const key = await installationKeyOnPostgres(store, resolveKeyDir(values["key-dir"]));
      if (!key.keys) {
        io.err(`export: the report's checkpoint is signed with the installation's audit key, but ${key.missing}: ${COPY_THE_KEY_HINT}\n`);
        return 1;
      }
      r = await exportFromPostgres(store, key.keys, actorOf(user), target.modelVersionId, out);
    }
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
    await on.close();
  }
}

type ExportedReport = ReportExportResult & {
  witnessing?: FreshCheckpointWitnessing | null;
  out: string;
  kind: "directory" | "tar";
};

/**
 * On PostgreSQL: the web app's export (export-in-worker.ts): a worker thread reads a copy of one snapshot of the store
 * for the report and the bundle, this process records "audit.export" and signs the checkpoint over it on the store
 * with `keys`, whose public key the bundle carries. The same directory or .tar as on SQLite.
 */
async function exportFromPostgres(
  store: Store,
  keys: AuditKeys,
  actor: Actor,
  modelVersionId: number,
  out: string,
): Promise<ExportedReport> {
  // dataDir is the SQLite source of the worker; on PostgreSQL it reads the store's URL instead.
  const deps = { db: store, auditKeys: keys, dataDir: "" };
  if (!out.toLowerCase().endsWith(".tar")) {
    assertEmptyOutDir(out); // before anything is recorded
    const result = await exportReportInWorker(deps, actor, modelVersionId, { outDir: out });
    return { ...result, witnessing: exportWitnessing(result.dir), out, kind: "directory" };
  }
  const tmp = fs.mkdtempSync(path.join(os.tmpdir(), "runledger-report-"));
  try {
    fs.mkdirSync(path.dirname(out), { recursive: true });
    const root = path.basename(out).replace(/\.tar$/i, "") || undefined;
    const result = await exportReportInWorker(deps, actor, modelVersionId, { outDir: path.join(tmp, "bundle"), tar: { path: out, root } });
    return { ...result, witnessing: exportWitnessing(result.dir), dir: out, out, kind: "tar" };
  } finally {
    fs.rmSync(tmp, { recursive: true, force: true });
  }
}

/** Whether the witnesses cosigned the export's checkpoint, as the bundle records it (cosignatures.json exportCheckpoint). */
function exportWitnessing(bundleDir: string): FreshCheckpointWitnessing | null {
  const file = path.join(bundleDir, BUNDLE_COSIGNATURES_FILE);
  if (!fs.existsSync(file)) return null;
  return (JSON.parse(fs.readFileSync(file, "utf8")) as { exportCheckpoint?: FreshCheckpointWitnessing }).exportCheckpoint ?? null;
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
