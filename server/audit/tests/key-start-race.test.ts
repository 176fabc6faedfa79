/**
 * Several processes starting at the same moment on a new data directory with one key directory (web servers,
 * workers and the CLI of one installation) end up with one signing key: the one the data directory's public key
 * file names. Before, each created a key of its own and overwrote the others' public key file. Real processes,
 * released together by a barrier file, several rounds.
 */
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import fs from "node:fs";
import os from "node:os";
import path from "node:path";
import { startRaceChildren, type RaceChildren } from "@/db/tests/start-race";
import { loadAuditPublicKey } from "../keys";

const PROCESSES = 6;
const ROUNDS = 4;

const tmp = fs.mkdtempSync(path.join(os.tmpdir(), "runledger-key-race-"));
let children: RaceChildren;

beforeAll(() => {
  children = startRaceChildren("server/audit/tests/key-start-race-child.ts", PROCESSES, tmp);
});
afterAll(() => {
  children.stop();
  fs.rmSync(tmp, { recursive: true, force: true });
});

describe("signing keys, several processes at once on a new data directory", () => {
  it(`${PROCESSES} processes, ${ROUNDS} rounds: one key, named by the public key file, used by all`, async () => {
    for (let round = 0; round < ROUNDS; round++) {
      const dataDir = path.join(tmp, `data-${round}`);
      const keyDir = path.join(tmp, `keys-${round}`);
      const results = await children.round<{ ok: boolean; fingerprint?: string; error?: string }>(
        { dataDir, keyDir },
        `starting in round ${round}`,
      );
      expect(results.filter((r) => !r.ok)).toEqual([]);
      const fingerprints = new Set(results.map((r) => r.fingerprint));
      expect([...fingerprints], `round ${round}: fingerprints in use`).toHaveLength(1);
      expect(fs.readdirSync(keyDir), `round ${round}: key files`).toHaveLength(1);
      expect(loadAuditPublicKey(dataDir).fingerprint).toBe([...fingerprints][0]);
    }
  });
});
