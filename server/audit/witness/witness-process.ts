/**
 * A REAL witness process (`npx tsx server/cli/main.ts witness serve`) on a free loopback port,
 * started in its own process group so stop() ends it and its children (npx → tsx → node) by group id.
 */
import { spawn, type ChildProcess } from "node:child_process";
import fs from "node:fs";
import os from "node:os";
import path from "node:path";

export type WitnessProcess = { url: string; port: number; vkey: string; keyDir: string; output: () => string; stop: () => Promise<void> };

export async function startWitnessProcess(opts: {
  logKey: string;
  keyDir?: string;
  port?: number;
  name?: string;
}): Promise<WitnessProcess> {
  const keyDir = opts.keyDir ?? fs.mkdtempSync(path.join(os.tmpdir(), "runledger-witness-"));
  const args = [
    "tsx",
    "server/cli/main.ts",
    "witness",
    "serve",
    "--port",
    String(opts.port ?? 0),
    "--host",
    "127.0.0.1",
    "--key-dir",
    keyDir,
    "--log-key",
    opts.logKey,
  ];
  if (opts.name) args.push("--name", opts.name);
  const child: ChildProcess = spawn("npx", args, { cwd: process.cwd(), detached: true, stdio: ["ignore", "pipe", "pipe"] });
  let out = "";
  child.stdout!.on("data", (d: Buffer) => (out += d.toString()));
  child.stderr!.on("data", (d: Buffer) => (out += d.toString()));
  const exited = new Promise<void>((resolve) => child.once("exit", () => resolve()));
  const started = await new Promise<{ url: string; vkey: string }>((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`witness did not start in 60 s:\n${out}`)), 60_000);
    const check = () => {
      const url = /listening on (http:\/\/[^\s]+)/.exec(out)?.[1];
      const vkey = /^vkey (\S+)$/m.exec(out)?.[1];
      if (url && vkey) {
        clearTimeout(timer);
        resolve({ url, vkey });
      }
    };
    child.stdout!.on("data", check);
    child.once("exit", (code) => {
      clearTimeout(timer);
      reject(new Error(`witness exited with ${code}:\n${out}`));
    });
  });
  return {
    ...started,
    port: Number(new URL(started.url).port),
    keyDir,
    output: () => out,
    stop: async () => {
      if (child.exitCode === null && child.signalCode === null) {
        try {
          process.kill(-child.pid!, "SIGTERM");
        } catch {
          // already gone
        }
        await exited;
      }
    },
  };
}
