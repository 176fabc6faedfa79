// Plain-JS entry for a "Verify now" job worker: registers tsx so the TypeScript worker loads without a build
// step, then runs it. Spawned by server/audit/verify-jobs.ts.
require("tsx/cjs");
require("./verify-job-worker.ts");
