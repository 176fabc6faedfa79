// Plain-JS entry for the CSV scan worker thread: registers tsx so the TypeScript worker loads without a build
// step, then runs it. Spawned by server/datasets/upload/scan-client.ts (scanCsvInWorker).
require("tsx/cjs");
require("./csv-scan-worker.ts");
