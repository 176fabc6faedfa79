// Plain-JS entry for a content-check worker (the run-derived part of content verification): registers tsx so the
// TypeScript worker loads without a build step, then runs it. Spawned by server/audit/verify-content-parts.ts.
require("tsx/cjs");
require("./verify-content-worker.ts");
