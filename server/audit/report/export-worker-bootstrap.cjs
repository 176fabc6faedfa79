// Plain-JS entry for a report-export worker: registers tsx so the TypeScript worker loads without a build step,
// then runs it. Spawned by server/audit/report/export-in-worker.ts.
require("tsx/cjs");
require("./export-worker.ts");
