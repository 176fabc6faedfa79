/**
 * The command line as a process, for the tests that compare a command on SQLite and on PostgreSQL: `npm run cli --
 * ARGS` run through tsx from the project root, with this process's environment minus what selects a store or reaches
 * outside (DATABASE_URL, RUNLEDGER_DATA_DIR, RUNLEDGER_WITNESSES), plus `env` (an undefined value removes a variable).
 * A command still running after `timeoutMs` is killed, so a hung command fails its test instead of the whole run.
 */
import { spawn } from "node:child_process";

export type CliExit = { code: number | null; stdout: string; stderr: string };
export type EnvChanges = Record<string, string | undefined>;

export function runCli(args: string[], env: EnvChanges, timeoutMs: number): Promise<CliExit> {
  const e: NodeJS.ProcessEnv = { ...process.env };
  delete e.DATABASE_URL;
  delete e.RUNLEDGER_DATA_DIR;
  delete e.RUNLEDGER_WITNESSES;
  for (const [k, v] of Object.entries(env)) {
    if (v === undefined) delete e[k];
    else e[k] = v;
  }
  const child = spawn(process.execPath, ["--import", "tsx", "server/cli/main.ts", ...args], { env: e, stdio: ["ignore", "pipe", "pipe"] });
  let stdout = "";
  let stderr = "";
  child.stdout.on("data", (d: Buffer) => (stdout += d.toString()));
  child.stderr.on("data", (d: Buffer) => (stderr += d.toString()));
  const timer = setTimeout(() => child.kill("SIGKILL"), timeoutMs);
  return new Promise((resolve) =>
    child.on("exit", (code) => {
      clearTimeout(timer);
      resolve({ code, stdout, stderr });
    }),
  );
}
