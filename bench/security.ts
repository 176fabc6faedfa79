/**
 * Security bench: the real production server (`next start` on a loopback port, temp data and key
 * directories) under two abuses, measuring what an ordinary signed-in user sees meanwhile:
 *   signin_flood_p95_ms           p95 latency of ordinary requests (a tRPC query and a page GET, alternating)
 *                                 while 100 concurrent wrong sign-ins run
 *   csv_upload_100mb_p95_ms       the same p95 while a 100 MB CSV uploads (streamed body, checked in a worker)
 *   csv_upload_100mb_peak_rss_mb  peak resident memory of the server's process tree during that upload
 *                                 (VmRSS of every process in the tree, summed, sampled every 50 ms)
 * Needs a production build: run `npm run build` first (if .next has none, one is built here). The server runs under
 * the e2e lock (/tmp/runledger-e2e.lock) so no build replaces .next beneath it. Loops are bounded in count and
 * time; every request goes to 127.0.0.1.
 *
 * Run alone: npm run bench -- security
 */
import fs from "node:fs";
import os from "node:os";
import path from "node:path";
import http from "node:http";
import { spawn, execFileSync, type ChildProcess } from "node:child_process";
import { once } from "node:events";
import { DEMO_USERS } from "@/server/demo/seed";
import type { Figure } from "./figures";

const LOCK = "/tmp/runledger-e2e.lock";
const MAX_PROBES = 3000;
const MAX_PROBE_SECONDS = 180;
const PROBE_GAP_MS = 40;
const CSV_BYTES = 100 * 1000 * 1000;

export type Server = { port: number; proc: ChildProcess; dataDir: string; keyDir: string; stop: () => Promise<void> };
type Reply = { status: number; headers: http.IncomingHttpHeaders; body: string };

export function request(
  port: number,
  method: string,
  urlPath: string,
  opts: { headers?: Record<string, string>; body?: string | fs.ReadStream; timeoutMs?: number } = {},
): Promise<Reply> {
  return new Promise((resolve, reject) => {
    const req = http.request({ host: "127.0.0.1", port, method, path: urlPath, headers: opts.headers, agent: false }, (res) => {
      const parts: Buffer[] = [];
      res.on("data", (c: Buffer) => parts.push(c));
      res.on("end", () => resolve({ status: res.statusCode ?? 0, headers: res.headers, body: Buffer.concat(parts).toString("utf8") }));
      res.on("error", reject);
    });
    req.setTimeout(opts.timeoutMs ?? 120_000, () => req.destroy(new Error(`${method} ${urlPath} timed out`)));
    req.on("error", reject);
    if (opts.body instanceof fs.ReadStream) opts.body.pipe(req);
    else req.end(opts.body);
  });
}

export function freePort(): number {
  return Number(
    execFileSync(process.execPath, [
      "-e",
      "const s=require('net').createServer().listen(0,'127.0.0.1',()=>{console.log(s.address().port);s.close()})",
    ])
      .toString()
      .trim(),
  );
}

/** `next start` of the production build on a free loopback port with fresh data and key directories (also used by
 * bench/mlflow.ts; `nodeArgs`, e.g. `--cpu-prof --cpu-prof-dir=DIR`, go to the node running Next). */
export async function startServer(name = "security", nodeArgs = ""): Promise<Server> {
  const root = process.cwd();
  const dataDir = fs.mkdtempSync(path.join(os.tmpdir(), `runledger-bench-${name}-`));
  const keyDir = fs.mkdtempSync(path.join(os.tmpdir(), `runledger-bench-${name}-keys-`));
  const env: NodeJS.ProcessEnv = { ...process.env, NODE_ENV: "production", RUNLEDGER_DATA_DIR: dataDir, RUNLEDGER_KEY_DIR: keyDir };
  execFileSync(process.execPath, [path.join(root, "node_modules/tsx/dist/cli.mjs"), "server/cli/main.ts", "seed", "--no-demo-run"], {
    env,
    stdio: "ignore",
  });
  const port = freePort();
  process.stdout.write(`(waiting for ${LOCK}, then next start on 127.0.0.1:${port})\n`);
  // Build if .next has none, then start; the lock is held for the server's lifetime.
  const script = `test -f .next/BUILD_ID || npx next build >/dev/null; test -f .next/server/app/api/datasets/upload/route.js || { echo "the build in .next has no upload route: run npm run build" >&2; exit 3; }; exec ${nodeArgs ? `node ${nodeArgs} node_modules/next/dist/bin/next` : "npx next"} start -H 127.0.0.1 -p ${port}`;
  const proc = spawn("flock", [LOCK, "sh", "-c", script], { cwd: root, env, detached: true, stdio: ["ignore", "ignore", "pipe"] });
  let stderr = "";
  proc.stderr!.on("data", (c: Buffer) => void (stderr = (stderr + c.toString()).slice(-4000)));
  const stop = async () => {
    if (proc.exitCode === null && proc.pid) {
      try {
        process.kill(-proc.pid, "SIGTERM");
      } catch {
        /* already gone */
      }
      await Promise.race([once(proc, "exit"), new Promise((r) => setTimeout(r, 10_000))]);
    }
    fs.rmSync(dataDir, { recursive: true, force: true });
    fs.rmSync(keyDir, { recursive: true, force: true });
  };
  const deadline = Date.now() + 15 * 60_000; // the lock may be held by a build or an e2e run
  for (;;) {
    if (proc.exitCode !== null) {
      await stop();
      throw new Error(`the server exited (code ${proc.exitCode}): ${stderr.trim()}`);
    }
    const ok = await request(port, "GET", "/signin", { timeoutMs: 5000 }).then(
      (r) => r.status === 200,
      () => false,
    );
    if (ok) return { port, proc, dataDir, keyDir, stop };
    if (Date.now() > deadline) {
      await stop();
      throw new Error("the server did not answer within 15 minutes");
    }
    await new Promise((r) => setTimeout(r, 500));
  }
}

/** Resident memory (MB) of `pid` and all its descendants, from /proc. */
function treeRssMb(pid: number): number {
  const children = new Map<number, number[]>();
  for (const d of fs.readdirSync("/proc")) {
    if (!/^\d+$/.test(d)) continue;
    try {
      const stat = fs.readFileSync(`/proc/${d}/stat`, "utf8");
      const ppid = Number(stat.slice(stat.lastIndexOf(")") + 2).split(" ")[1]);
      children.set(ppid, [...(children.get(ppid) ?? []), Number(d)]);
    } catch {
      /* exited meanwhile */
    }
  }
  let kb = 0;
  const stack = [pid];
  while (stack.length) {
    const p = stack.pop()!;
    try {
      kb += Number(/VmRSS:\s+(\d+)/.exec(fs.readFileSync(`/proc/${p}/status`, "utf8"))?.[1] ?? 0);
    } catch {
      /* exited meanwhile */
    }
    stack.push(...(children.get(p) ?? []));
  }
  return kb / 1024;
}

async function signIn(port: number, email: string, password: string): Promise<string> {
  const r = await request(port, "POST", "/api/trpc/auth.signIn", {
    headers: { "content-type": "application/json", origin: `http://127.0.0.1:${port}` },
    body: JSON.stringify({ email, password }),
  });
  const cookie = [r.headers["set-cookie"] ?? []]
    .flat()
    .map((c) => c.split(";")[0] ?? "")
    .find((c) => c.startsWith("runledger_session="));
  if (r.status !== 200 || !cookie) throw new Error(`sign-in as ${email} failed: HTTP ${r.status} ${r.body.slice(0, 200)}`);
  return cookie;
}

/** Ordinary requests, one after another (a tRPC query, then a page GET), while `load` runs; latencies in ms. */
async function probeWhile(port: number, cookie: string, load: Promise<unknown>): Promise<{ latencies: number[]; failures: number }> {
  let done = false;
  void load.finally(() => (done = true));
  const latencies: number[] = [];
  let failures = 0;
  const started = Date.now();
  for (let i = 0; !done && i < MAX_PROBES && Date.now() - started < MAX_PROBE_SECONDS * 1000; i++) {
    const t0 = performance.now();
    const r =
      i % 2 === 0
        ? await request(port, "GET", "/api/trpc/projects.list", { headers: { cookie } })
        : await request(port, "GET", "/datasets", { headers: { cookie } });
    latencies.push(performance.now() - t0);
    if (r.status !== 200) failures++;
    await new Promise((res) => setTimeout(res, PROBE_GAP_MS));
  }
  await load;
  return { latencies, failures };
}

function p95(xs: number[]): number {
  if (xs.length === 0) return Number.NaN;
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.min(s.length - 1, Math.ceil(0.95 * s.length) - 1)]!;
}

/** A CSV of about `bytes` bytes (10 numeric features and a label), written in pieces. */
async function writeCsv(file: string, bytes: number): Promise<number> {
  const out = fs.createWriteStream(file);
  let written = 0;
  const header = "f0,f1,f2,f3,f4,f5,f6,f7,f8,f9,label\n";
  out.write(header);
  written += header.length;
  let i = 0;
  while (written < bytes) {
    let piece = "";
    while (piece.length < 1 << 20 && written + piece.length < bytes) {
      piece += `${(i % 97) / 7},${(i * 3) % 11},${(i % 13) * 0.25},${i % 17},${(i * 7) % 19},${(i % 23) / 3},${i % 29},${(i * 5) % 31},${(i % 37) * 0.5},${i % 41},${i % 3 ? "b" : "a"}\n`;
      i++;
    }
    written += piece.length;
    if (!out.write(piece)) await once(out, "drain");
  }
  out.end();
  await once(out, "finish");
  return written;
}

export async function benchSecurity(): Promise<Figure[]> {
  const csv = path.join(os.tmpdir(), `runledger-bench-${process.pid}.csv`);
  const csvBytes = await writeCsv(csv, CSV_BYTES);
  const server = await startServer();
  try {
    const engineer = DEMO_USERS.find((u) => u.role === "engineer")!;
    const cookie = await signIn(server.port, engineer.email, engineer.password);
    await probeWhile(server.port, cookie, new Promise((r) => setTimeout(r, 2000))); // warm-up: compile paths, caches

    // 1. A 100 MB CSV upload, with the server tree's memory sampled throughout.
    const baselineRss = treeRssMb(server.proc.pid!);
    let peakRss = baselineRss;
    const sampler = setInterval(() => void (peakRss = Math.max(peakRss, treeRssMb(server.proc.pid!))), 50);
    const uploadStarted = performance.now();
    const upload = request(server.port, "POST", `/api/datasets/upload?name=bench-100mb`, {
      headers: { cookie, "content-type": "text/csv", "content-length": String(csvBytes), origin: `http://127.0.0.1:${server.port}` },
      body: fs.createReadStream(csv, { highWaterMark: 1 << 20 }),
      timeoutMs: 15 * 60_000,
    });
    const duringUpload = await probeWhile(server.port, cookie, upload);
    clearInterval(sampler);
    const uploadSeconds = (performance.now() - uploadStarted) / 1000;
    const uploaded = await upload;
    if (uploaded.status !== 200) throw new Error(`the 100 MB upload failed: HTTP ${uploaded.status} ${uploaded.body.slice(0, 300)}`);
    process.stdout.write(
      `(upload: ${(csvBytes / 1e6).toFixed(0)} MB, ${(JSON.parse(uploaded.body) as { rowCount: number }).rowCount} rows in ${uploadSeconds.toFixed(1)} s; ${duringUpload.latencies.length} probes, ${duringUpload.failures} failed; RSS ${baselineRss.toFixed(0)} MB before)\n`,
    );

    // 2. 100 concurrent wrong sign-ins (cycling over the real accounts, so each costs a password hash).
    const flood = Promise.all(
      Array.from({ length: 100 }, (_, i) =>
        request(server.port, "POST", "/api/trpc/auth.signIn", {
          headers: { "content-type": "application/json" },
          body: JSON.stringify({ email: DEMO_USERS[i % DEMO_USERS.length]!.email, password: `wrong-password-${i}` }),
        }),
      ),
    );
    const floodStarted = performance.now();
    const duringFlood = await probeWhile(server.port, cookie, flood);
    const statuses = (await flood).reduce<Record<number, number>>((m, r) => ({ ...m, [r.status]: (m[r.status] ?? 0) + 1 }), {});
    process.stdout.write(
      `(sign-in flood: answered in ${((performance.now() - floodStarted) / 1000).toFixed(1)} s, statuses ${JSON.stringify(statuses)}; ${duringFlood.latencies.length} probes, ${duringFlood.failures} failed)\n`,
    );

    return [
      { name: "signin_flood_p95_ms", value: Math.round(p95(duringFlood.latencies)), unit: "ms", target: "< 200 ms" },
      { name: "csv_upload_100mb_p95_ms", value: Math.round(p95(duringUpload.latencies)), unit: "ms", target: "< 200 ms" },
      { name: "csv_upload_100mb_peak_rss_mb", value: Math.round(peakRss), unit: "MB", target: "< 500 MB" },
      { name: "csv_upload_100mb_seconds", value: Number(uploadSeconds.toFixed(1)), unit: "s" },
    ];
  } finally {
    await server.stop();
    fs.rmSync(csv, { force: true });
  }
}
