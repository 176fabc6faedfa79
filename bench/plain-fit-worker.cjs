// Plain-JS entry for the benchmark's plain-fit worker thread (registers tsx, then runs the TypeScript worker),
// so the plain TensorFlow.js fit starts in a fresh thread exactly like a tracked run's trainer worker.
require("tsx/cjs");
require("./plain-fit-worker.ts");
