/**
 * `npm run cli -- <command>`: the command line, over the same services and database as the web app.
 * Commands: seed, users, token, train, sweep, resume, pilot, rerun, compress, show, audit verify, audit checkpoint-export, audit move-key, audit rotate-key, register, export-prov, export (auditor's report), backup, restore, migrate-store. Each prints plain text, or one JSON object with --json.
 */
import { trainCommand } from "./train";
import { seedCommand } from "./seed";
import { isBadInput } from "./exit-codes";
import { BACKEND_USAGE } from "./backend-option";
import { DomainError } from "@/server/errors";

const USAGE = `usage: npm run cli -- <command> [options]   (key directory: --key-dir, RUNLEDGER_KEY_DIR or ~/.config/runledger/keys)
  With DATABASE_URL=postgres://… every command that reads or changes the record runs on the PostgreSQL store (no
  --data-dir; those that train here take no --key-dir either), audit verify (with --public-key or --trusted-checkpoint)
  and backup included; audit move-key and restore concern a SQLite data directory only.
  seed  [--data-dir DIR] [--key-dir DIR] [--no-demo-run]   demo users, project and a trained demo run, in a NEW database only (RUNLEDGER_DEMO=0: none)
  users list|create|set-role|disable|enable|reset-password [--email E] [--name N] [--role R] [--data-dir DIR] [--json]
  token create|list|revoke --user EMAIL [--name NAME] [--id ID] [--data-dir DIR] [--json]
                                                     personal access tokens for the MLflow-compatible API (printed once)
  train --config FILE [--data-dir DIR] [--experiment NAME] [--user EMAIL] [--backend ${BACKEND_USAGE}] [--enqueue [--wait-timeout S]] [--json]
                                                     --enqueue: queue it for the training workers (npm run worker) and wait for its end
                                                     (says so on stderr when no worker has taken it after 5 s); --wait-timeout S: give up
                                                     after S seconds in the queue with no worker: exit 3, the run stays queued
                                                     DATABASE_URL=postgres://…: on the PostgreSQL store (--enqueue: its workers); no
                                                     audit checkpoint is signed there (the key stays with the web servers)
  sweep --config FILE [--data-dir DIR] [--experiment NAME] [--user EMAIL] [--backend ${BACKEND_USAGE}] [--json]
                                                     create a sweep from a spec (examples/iris-sweep.json) and run it to its budget
  resume --run ID [--data-dir DIR] [--key-dir DIR] [--backend ${BACKEND_USAGE}] [--rationale T] [--json]
                                                     continue an interrupted (or paused) run from its last checkpoint; prints what train prints
  audit verify [--data-dir DIR | --bundle DIR | --database URL] [--public-key FILE] [--trusted-checkpoint FILE] [--json]
  audit checkpoint-export --out FILE [--data-dir DIR] [--key-dir DIR] [--new]
  audit move-key [--data-dir DIR] [--key-dir DIR]     move an old data dir's private key into the key directory
  audit rotate-key [--data-dir DIR] [--key-dir DIR] [--json]
                                                     new signing key, introduced by a ledger event the old key signs
                                                     (PostgreSQL: copy the new key file to every web server's key directory)
  register --run ID --model NAME [--checkpoint best|EPOCH] [--user EMAIL] [--data-dir DIR] [--json]
  pilot --run ID (--pause | --resume | --stop | --set PATH=VALUE ... | --rollback CKPT [--backend ${BACKEND_USAGE}]) --rationale TEXT [--as EMAIL] [--data-dir DIR] [--key-dir DIR] [--json]
                                                     queue an intervention; it takes effect at the run's next epoch boundary
                                                     (a rollback of a paused or completed run trains its branch here, on --backend)
  rerun --run ID [--data-dir DIR] [--user EMAIL] [--backend ${BACKEND_USAGE}] [--json]   re-run a finished run replaying its piloting; trains it here
  compress --run ID [--checkpoint best|EPOCH] --method float16|int8|prune|distill [--sparsity S] [--student FILE] [--data-dir DIR] [--json]
                                                     derive a smaller model (a run evaluated on the same test partition); prints sizes and metrics
  show --run ID [--data-dir DIR] [--json]            status, epoch, weights sha256 and decisions (planned, interventions) of a run
  export-prov --model NAME --version N [--user EMAIL] [--data-dir DIR]   lineage as W3C PROV-JSON on stdout
  export --model NAME [--version N | --alias production] --out DIR|FILE.tar [--user EMAIL] [--data-dir DIR] [--json]
                                                     the auditor's report bundle (report.html, events, proofs, PROV, key)
  export --verify DIR|FILE.tar [--public-key FILE]   check a report bundle offline
  backup --out FILE [--data-dir DIR | --database URL] [--json]
                                                     database (online backup) + artifacts + public key in one tar with SHA-256 manifest
  restore --from FILE --data-dir DIR [--json]        into an empty directory, after every manifest hash checks out
  migrate-store --from DATA_DIR --to postgres://… [--check] [--json]
                                                     copy an installation (tables, ledger, artifacts) into an EMPTY PostgreSQL
                                                     database, check the copy equals the source, then commit it (--check: compare only)
  witness serve --port P --key-dir D --log-key FILE_OR_VKEY [--host H]   run a transparency-log witness (C2SP tlog-witness)
  witness key --key-dir D | witness log-key [--data-dir DIR | --key-dir DIR] | witness push [--data-dir DIR | --key-dir DIR] [--json]
Exit codes: 0 done; 1 failed, or refused by a rule of the record (e.g. a ledger that does not verify, a run that did not
complete, a run in a state the action does not apply to: "<command>: run N is <status>; <action> needs …", a signing
key this machine lacks); 2 usage or bad input, an unknown run, user, model, version or token included; 3 train
--enqueue --wait-timeout gave up (the run stays queued).`;

export type Command = (argv: string[]) => Promise<number>;

async function main(argv: string[]): Promise<number> {
  const [command, ...rest] = argv;
  const commands: Record<string, Command> = {
    train: trainCommand,
    seed: seedCommand,
    audit: async (a) => (await import("./audit-verify")).auditVerifyCommand(a),
    register: async (a) => (await import("./register")).registerCommand(a),
    "export-prov": async (a) => (await import("./export-prov")).exportProvCommand(a),
    export: async (a) => (await import("./export")).exportCommand(a),
    backup: async (a) => (await import("./backup")).backupCommand(a),
    restore: async (a) => (await import("./backup")).restoreCommand(a),
    "migrate-store": async (a) => (await import("./migrate-store")).migrateStoreCommand(a),
    witness: async (a) => (await import("./witness")).witnessCommand(a),
    users: async (a) => (await import("./users")).usersCommand(a),
    token: async (a) => (await import("./token")).tokenCommand(a),
    pilot: async (a) => (await import("./pilot")).pilotCommand(a),
    resume: async (a) => (await import("./resume")).resumeCommand(a),
    rerun: async (a) => (await import("./rerun")).rerunCommand(a),
    show: async (a) => (await import("./show")).showCommand(a),
    sweep: async (a) => (await import("./sweep")).sweepCommand(a),
    compress: async (a) => (await import("./compress")).compressCommand(a),
  };
  const run = command ? commands[command] : undefined;
  if (!run) {
    process.stderr.write(`${command ? `unknown command "${command}"\n` : ""}${USAGE}\n`);
    return 2;
  }
  return run(rest);
}

main(process.argv.slice(2)).then(
  (code) => process.exit(code),
  (err: Error) => {
    // A service's "not found" or "bad input" (an unknown run id, say) is the caller's input: exit 2, as the
    // commands' own checks (exit-codes.ts); anything else failed: exit 1.
    if (isBadInput(err)) {
      process.stderr.write(`${process.argv[2]}: ${err.message}\n`);
      process.exit(2);
    }
    // A service's refusal of another kind (a run already has a pending pause, the caller's role) is a rule of the
    // record: exit 1, said as the command's own refusals are ("<command>: …"); an unexpected error stays "error: …".
    process.stderr.write(`${err instanceof DomainError ? process.argv[2] : "error"}: ${err.message}\n`);
    process.exit(1);
  },
);
