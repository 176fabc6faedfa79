/**
 * Races of processes starting at the same moment (issue 16: web servers, training workers and the CLI started
 * together on one data directory), for tests. The parent side starts child processes that each serve rounds
 * (serveRaceRounds, start-race-child.ts): per round, every child gets one JSON line on stdin, says "ready", and all
 * are released together by a barrier file; each then prints one JSON result line. A child that exits or stays
 * silent fails the round with its stderr.
 */
import { spawn, type ChildProcess } from "node:child_process";
import fs from "node:fs";
import path from "node:path";

const STEP_TIMEOUT_MS = 25_000;

type Child = { proc: ChildProcess; lines: string[]; waiters: Array<() => void>; stderr: string; exited: boolean };

function startChild(script: string): Child {
  const proc = spawn(process.execPath, ["--import", "tsx", script], { stdio: ["pipe", "pipe", "pipe"] });
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

export type RaceChildren = {
  /** One round: `request` (plus the barrier file) to every child, all released at once; their results in order. */
  round<R>(request: object, name: string): Promise<R[]>;
  stop(): void;
};

/** `count` processes running `script` (a file calling serveRaceRounds); barrier files go in `tmpDir`. */
export function startRaceChildren(script: string, count: number, tmpDir: string): RaceChildren {
  const children = Array.from({ length: count }, () => startChild(script));
  let rounds = 0;
  return {
    async round<R>(request: object, name: string): Promise<R[]> {
      const goFile = path.join(tmpDir, `go-${rounds++}`);
      for (const c of children) c.proc.stdin!.write(`${JSON.stringify({ ...request, goFile })}\n`);
      for (const c of children) {
        const line = await nextLine(c, `getting ready for ${name}`);
        if (line !== "ready") throw new Error(`child pid ${c.proc.pid} said ${JSON.stringify(line)} instead of ready (${name})`);
      }
      fs.writeFileSync(goFile, "");
      const lines = await Promise.all(children.map((c) => nextLine(c, name)));
      return lines.map((l) => JSON.parse(l) as R);
    },
    stop() {
      for (const c of children) if (!c.exited) c.proc.kill();
    },
  };
}
