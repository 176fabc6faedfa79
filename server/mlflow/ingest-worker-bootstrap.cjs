// Plain-JS entry for the tracking API's ingest worker (started by server/mlflow/ingest.ts, a fixed path as Next.js
// needs it): registers tsx, then ingest-worker-load.ts runs the worker's esbuild bundle, or its TypeScript.
require("tsx/cjs");
require("./ingest-worker-load.ts");
