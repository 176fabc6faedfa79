/**
 * Several processes starting at the same moment on a new data directory with one key directory (web servers,
 * workers and the CLI of one installation) end up with one signing key: the one the data directory's public key
 * file names. Before, each created a key of its own and overwrote the others' public key file. Real processes,
 * released together by a barrier file, several rounds.
 */
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { spawn, type ChildProcess } from "node:child_process";
import fs from "node:fs";
import os from "node:os";
import path from "node:path";
import { loadAuditPublicKey } from "../keys";

const PROCESSES = 6;
const ROUNDS = 4;
const STEP_TIMEOUT_MS = 25_000;

type Child = { proc: ChildProcess; lines: string[]; waiters: Array<() => void>; stderr: string; exited: boolean };

const tmp = fs.mkdtempSync(path.join(os.tmpdir(), "runledger-key-race-"));
const children: Child[] = [];

function startChild(): Child {
  const proc = spawn(process.execPath, ["--import", "tsx", "server/audit/tests/key-start-race-child.ts"], {
    stdio: ["pipe", "pipe", "pipe"],
  });
  const c: Child = { proc, lines: [], waiters: [], stderr: "", exited: false };
  let buf = "";
  proc.stdout!.on("data", (d: Buffer) => {
    buf += d.toString();
    let nl: number;
    while ((nl = buf.indexOf("\n")) >= 0) {
      c.lines.push(buf.slice(0, nl));
      buf = buf.slice(nl + 1);
    }
    for (const w of c.waiters.splice(0)) w();
  });
  proc.stderr!.on("data", (d: Buffer) => (c.stderr += d.toString()));
  proc.on("exit", () => {
    c.exited = true;
    for (const w of c.waiters.splice(0)) w();
  });
  return c;
}

/** The next line the child prints, failing with its stderr if it exits or stays silent too long. */
async function nextLine(c: Child, what: string): Promise<string> {
  const deadline = Date.now() + STEP_TIMEOUT_MS;
  while (c.lines.length === 0) {
    if (c.exited) throw new Error(`child pid ${c.proc.pid} exited while ${what}: ${c.stderr}`);
    const left = deadline - Date.now();
    if (left <= 0) throw new Error(`child pid ${c.proc.pid} silent for ${STEP_TIMEOUT_MS} ms while ${what}: ${c.stderr}`);
    await new Promise<void>((resolve) => {
      const t = setTimeout(resolve, left);
      c.waiters.push(() => {
        clearTimeout(t);
        resolve();
      });
    });
  }
  return c.lines.shift()!;
}

beforeAll(() => {
  for (let i = 0; i < PROCESSES; i++) children.push(startChild());
});
afterAll(() => {
  for (const c of children) if (!c.exited) c.proc.kill();
  fs.rmSync(tmp, { recursive: true, force: true });
});

describe("signing keys, several processes at once on a new data directory", () => {
  it(`${PROCESSES} processes, ${ROUNDS} rounds: one key, named by the public key file, used by all`, async () => {
    for (let round = 0; round < ROUNDS; round++) {
      const dataDir = path.join(tmp, `data-${round}`);
      const keyDir = path.join(tmp, `keys-${round}`);
      const goFile = path.join(tmp, `go-${round}`);
      for (const c of children) c.proc.stdin!.write(`${JSON.stringify({ dataDir, keyDir, goFile })}\n`);
      for (const c of children) expect(await nextLine(c, `getting ready for round ${round}`)).toBe("ready");
      fs.writeFileSync(goFile, "");
      const results = (await Promise.all(children.map((c) => nextLine(c, `starting in round ${round}`)))).map(
        (line) => JSON.parse(line) as { ok: boolean; fingerprint?: string; error?: string },
      );
      expect(results.filter((r) => !r.ok)).toEqual([]);
      const fingerprints = new Set(results.map((r) => r.fingerprint));
      expect([...fingerprints], `round ${round}: fingerprints in use`).toHaveLength(1);
      expect(fs.readdirSync(keyDir), `round ${round}: key files`).toHaveLength(1);
      expect(loadAuditPublicKey(dataDir).fingerprint).toBe([...fingerprints][0]);
    }
  });
});
