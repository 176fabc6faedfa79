/**
 * `restore --data-dir DIR` writes a SQLite data directory. With DATABASE_URL naming PostgreSQL, the server and every
 * command use the PostgreSQL store and would never read it, so the restore is refused (exit 2) before anything is
 * written, saying what was asked, why it cannot be done and what to do instead (restore with DATABASE_URL unset; copy
 * into PostgreSQL with migrate-store). Real processes on a real backup of a data directory; with DATABASE_URL unset
 * the same command restores. Before, it restored into a directory nothing would read.
 */
import fs from "node:fs";
import os from "node:os";
import path from "node:path";
import { afterAll, beforeAll, expect, it, vi } from "vitest";
import { createAppServices } from "@/server/app-context/app-services";
import { ensureDemoUsersAndProject } from "@/server/demo/seed";
import { backupCommand } from "@/server/cli/backup";
import { createScratchPgDatabase, describePg, type ScratchPgDatabase } from "./pg-test-env";
import { runCli } from "./cli-process";

vi.mock("server-only", () => ({}));

describePg("[restore] --data-dir while DATABASE_URL names PostgreSQL", () => {
  let scratch: ScratchPgDatabase | undefined;
  const tmp = fs.mkdtempSync(path.join(os.tmpdir(), "rl-restore-pg-refusal-"));
  const archive = path.join(tmp, "backup.tar");
  beforeAll(async () => {
    scratch = await createScratchPgDatabase();
    const services = createAppServices(path.join(tmp, "source"), { backend: "cpu", keyDir: path.join(tmp, "keys") });
    ensureDemoUsersAndProject(services);
    services.db.$client.close();
    const err: string[] = [];
    const code = await backupCommand(["--out", archive, "--data-dir", path.join(tmp, "source"), "--json"], {
      out: () => undefined,
      err: (t) => void err.push(t),
    });
    expect(code, err.join("")).toBe(0);
  }, 120_000);
  afterAll(async () => {
    await scratch?.drop();
    fs.rmSync(tmp, { recursive: true, force: true });
  });

  it("is refused with exit 2, saying why and what to do instead, and writes nothing; without DATABASE_URL it restores", async () => {
    const target = path.join(tmp, "restored");
    const refused = await runCli(["restore", "--from", archive, "--data-dir", target], { DATABASE_URL: scratch!.url }, 60_000);
    expect(refused.code, refused.stderr).toBe(2);
    expect(refused.stdout).toBe("");
    expect(refused.stderr).toBe(
      `restore: --data-dir ${target} would restore into a SQLite data directory, but DATABASE_URL names a PostgreSQL store, ` +
        "which the server and every command use instead: nothing was restored. Run the restore with DATABASE_URL unset " +
        `(DATABASE_URL= npm run cli -- restore --from FILE --data-dir ${target}); to put the backup into PostgreSQL, then ` +
        `copy it there: npm run cli -- migrate-store --from ${target} --to postgres://…\n`,
    );
    expect(fs.existsSync(target)).toBe(false);

    const restored = await runCli(["restore", "--from", archive, "--data-dir", target, "--json"], {}, 60_000);
    expect(restored.code, restored.stderr).toBe(0);
    expect(fs.existsSync(path.join(target, "runledger.sqlite"))).toBe(true);
  }, 120_000);
});
