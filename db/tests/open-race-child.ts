/**
 * A child of open-race.test.ts: one process among several opening the same brand-new data directory at the same
 * moment ({ dataDir } per round, start-race-child.ts): opens the database (migrations included) and closes it.
 */
import { openDatabase } from "../client";
import { serveRaceRounds } from "./start-race-child";

serveRaceRounds<{ dataDir: string; goFile: string }>(({ dataDir }) => {
  openDatabase(dataDir).$client.close();
  return {};
});
