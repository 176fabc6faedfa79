import { buildBenchContentDatabase } from "@/server/audit/content/bench-content";
const [dir, n, k] = process.argv.slice(2);
const t = performance.now();
const seq = buildBenchContentDatabase(dir!, Number(n), { checkpointsPerRun: Number(k) });
console.log("built", seq, "events in", ((performance.now() - t) / 1000).toFixed(1), "s");
