// Plain-JS entry for the training worker thread: registers tsx so the TypeScript worker can load
// without a build step, then runs it. Spawned by trainer/worker-client.ts (startTrainingWorker).
require("tsx/cjs");
require("./worker.ts");
