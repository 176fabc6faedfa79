/**
 * A child of key-start-race.test.ts: one process among several starting at the same moment on the same new data
 * directory and key directory. Reads one JSON line per round on stdin ({ dataDir, keyDir, goFile }), says "ready",
 * waits for goFile (the barrier), opens the database and the signing keys as every entry point does, and prints
 * { ok: true, fingerprint } or { ok: false, error }.
 */
import fs from "node:fs";
import readline from "node:readline";
import { openDatabase } from "@/db/client";
import { openAuditSigningKeys } from "../key-custody";

const BARRIER_TIMEOUT_MS = 20_000;

readline.createInterface({ input: process.stdin }).on("line", (line) => {
  const { dataDir, keyDir, goFile } = JSON.parse(line) as { dataDir: string; keyDir: string; goFile: string };
  process.stdout.write("ready\n");
  let result: { ok: boolean; fingerprint?: string; error?: string };
  try {
    const deadline = Date.now() + BARRIER_TIMEOUT_MS;
    // A short spin, so that every child leaves the barrier within a millisecond or so of the others.
    while (!fs.existsSync(goFile)) if (Date.now() > deadline) throw new Error(`barrier ${goFile} not created in time`);
    const db = openDatabase(dataDir);
    try {
      result = { ok: true, fingerprint: openAuditSigningKeys(db, { dataDir, keyDir }).fingerprint };
    } finally {
      db.$client.close();
    }
  } catch (e) {
    result = { ok: false, error: e instanceof Error ? e.message : String(e) };
  }
  process.stdout.write(`${JSON.stringify(result)}\n`);
});
