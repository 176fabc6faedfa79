/**
 * A child of key-start-race.test.ts: one process among several starting at the same moment on the same new data
 * directory and key directory ({ dataDir, keyDir } per round, db/tests/start-race-child.ts): opens the database and
 * the signing keys as every entry point does, and answers the fingerprint of the key it uses.
 */
import { openDatabase } from "@/db/client";
import { serveRaceRounds } from "@/db/tests/start-race-child";
import { openAuditSigningKeys } from "../key-custody";

serveRaceRounds<{ dataDir: string; keyDir: string; goFile: string }>(({ dataDir, keyDir }) => {
  const db = openDatabase(dataDir);
  try {
    return { fingerprint: openAuditSigningKeys(db, { dataDir, keyDir }).fingerprint };
  } finally {
    db.$client.close();
  }
});
