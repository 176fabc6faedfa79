// Plain-JS entry for the long-lived size-estimate worker: registers tsx so the TypeScript worker loads without a
// build step, then runs it. Spawned by trainer/estimate-pool.ts.
require("tsx/cjs");
require("./estimate-worker.ts");
