import { defineConfig } from "vitest/config";
import os from "node:os";
import path from "node:path";
import { fileURLToPath } from "node:url";

const __dirname = path.dirname(fileURLToPath(import.meta.url));

// Unit and integration tests: real SQLite files in temp dirs, real (small) training.
export default defineConfig({
  resolve: { alias: { "@": path.resolve(__dirname) } },
  test: {
    include: ["**/*.test.ts"],
    exclude: ["node_modules/**", "e2e/**", ".next/**", "data/**"],
    environment: "node",
    testTimeout: 120_000,
    hookTimeout: 120_000,
    pool: "forks",
    // One test file per core, not Vitest's default of one less: most files spend much of their time waiting on the
    // processes they start (the app, the CLI, training and verify workers, PostgreSQL). On this 2-core machine type,
    // one at a time took 26 min on a fast day; two at once took 24 min on a day 1.7x slower (every file passed).
    // One at a time put CI's 90-minute limit at risk on slow days.
    maxWorkers: Math.max(2, os.availableParallelism()),
    globalSetup: ["./vitest.global-setup.ts"],
  },
});
