// Plain-JS entry for an audit verification range worker: registers tsx so the TypeScript worker loads
// without a build step, then runs it. Spawned by server/audit/verify.ts (verifyDatabase).
require("tsx/cjs");
require("./verify-worker.ts");
