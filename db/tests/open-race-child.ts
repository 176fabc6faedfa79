/**
 * A child of open-race.test.ts: one process among several opening the same brand-new data directory at the same
 * moment. Reads one JSON line per round on stdin ({ dataDir, goFile }), says "ready", waits for goFile (the barrier,
 * created by the test once every child is ready), opens the database (migrations included), closes it and prints one
 * JSON line: { ok: true } or { ok: false, error }.
 */
import fs from "node:fs";
import readline from "node:readline";
import { openDatabase } from "../client";

const BARRIER_TIMEOUT_MS = 20_000;

function waitFor(file: string): void {
  const deadline = Date.now() + BARRIER_TIMEOUT_MS;
  // A short spin, so that every child leaves the barrier within a millisecond or so of the others.
  while (!fs.existsSync(file)) {
    if (Date.now() > deadline) throw new Error(`barrier ${file} not created within ${BARRIER_TIMEOUT_MS} ms`);
  }
}

const lines = readline.createInterface({ input: process.stdin });
lines.on("line", (line) => {
  const { dataDir, goFile } = JSON.parse(line) as { dataDir: string; goFile: string };
  process.stdout.write("ready\n");
  let result: { ok: boolean; error?: string };
  try {
    waitFor(goFile);
    const db = openDatabase(dataDir);
    db.$client.close();
    result = { ok: true };
  } catch (e) {
    // drizzle wraps SQLite's error ("table `x` already exists") as its cause, under the failed query's text.
    const cause = e instanceof Error && e.cause instanceof Error ? `: ${e.cause.message}` : "";
    result = { ok: false, error: `${e instanceof Error ? e.message.split("\n")[0] : String(e)}${cause}` };
  }
  process.stdout.write(`${JSON.stringify(result)}\n`);
});
