/**
 * The child side of start-race.ts: reads one JSON request per round on stdin, says "ready", waits for the round's
 * barrier file, runs `start` and prints one JSON line: { ok: true, ...what start returned } or { ok: false, error }.
 */
import fs from "node:fs";
import readline from "node:readline";

const BARRIER_TIMEOUT_MS = 20_000;

export function serveRaceRounds<Req extends { goFile: string }>(start: (request: Req) => object): void {
  readline.createInterface({ input: process.stdin }).on("line", (line) => {
    const request = JSON.parse(line) as Req;
    process.stdout.write("ready\n");
    let result: object;
    try {
      const deadline = Date.now() + BARRIER_TIMEOUT_MS;
      // A short spin, so that every child leaves the barrier within a millisecond or so of the others.
      while (!fs.existsSync(request.goFile))
        if (Date.now() > deadline) throw new Error(`barrier ${request.goFile} not created within ${BARRIER_TIMEOUT_MS} ms`);
      result = { ok: true, ...start(request) };
    } catch (e) {
      // drizzle wraps SQLite's error ("table `x` already exists") as its cause, under the failed query's text.
      const cause = e instanceof Error && e.cause instanceof Error ? `: ${e.cause.message}` : "";
      result = { ok: false, error: `${e instanceof Error ? e.message.split("\n")[0] : String(e)}${cause}` };
    }
    process.stdout.write(`${JSON.stringify(result)}\n`);
  });
}
