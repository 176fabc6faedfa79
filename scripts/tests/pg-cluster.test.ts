/**
 * scripts/pg-cluster.sh, the throwaway PostgreSQL of the test command and CI: start prints a loopback URL that
 * answers, the server runs as an unprivileged user (never root, even when the script runs as root) and listens on
 * loopback only, url prints the same URL, stop ends the server and removes its directory.
 * Needs the PostgreSQL binaries: it runs where the PostgreSQL suites run (describePg; CI always).
 */
import { afterAll, expect, it } from "vitest";
import { spawnSync } from "node:child_process";
import crypto from "node:crypto";
import fs from "node:fs";
import path from "node:path";
import pg from "pg";
import { describePg } from "@/server/tests/pg-test-env";

const dir = path.join("/tmp", `rl-pg-cluster-test-${crypto.randomBytes(4).toString("hex")}`);
const script = (command: string) =>
  spawnSync("bash", ["scripts/pg-cluster.sh", command], {
    cwd: path.resolve(__dirname, "../.."),
    env: { ...process.env, RUNLEDGER_PG_DIR: dir },
    encoding: "utf8",
    timeout: 120_000,
  });

describePg("scripts/pg-cluster.sh", () => {
  afterAll(() => {
    script("stop");
  });

  it("starts a loopback cluster run by an unprivileged user, tells its URL, and stops it without a trace", async () => {
    const started = script("start");
    expect(started.stderr).toBe("");
    expect(started.status).toBe(0);
    const url = started.stdout.trim();
    expect(url).toMatch(/^postgres:\/\/runledger@127\.0\.0\.1:\d+\/runledger$/);
    expect(script("url").stdout.trim()).toBe(url);

    const client = new pg.Client({ connectionString: url });
    await client.connect();
    const { rows } = await client.query<{ listen: string; pid: number; version: number }>(
      "SELECT current_setting('listen_addresses') AS listen, pg_backend_pid() AS pid, current_setting('server_version_num')::int AS version",
    );
    // The backend process serves this connection: read its owner before closing it (it exits with the connection).
    const uid = /^Uid:\s+(\d+)/m.exec(fs.readFileSync(`/proc/${rows[0]!.pid}/status`, "utf8"))?.[1];
    await client.end();
    expect(rows[0]!.listen).toBe("127.0.0.1");
    expect(rows[0]!.version).toBeGreaterThanOrEqual(150000);
    expect(uid).toBeDefined();
    expect(Number(uid)).not.toBe(0);

    const stopped = script("stop");
    expect(stopped.status).toBe(0);
    expect(fs.existsSync(dir)).toBe(false);
    const after = new pg.Client({ connectionString: url, connectionTimeoutMillis: 5_000 });
    await expect(after.connect()).rejects.toThrow();
    const noUrl = script("url");
    expect(noUrl.status).not.toBe(0);
    expect(noUrl.stderr).toMatch(/no cluster running/);
  });
});
