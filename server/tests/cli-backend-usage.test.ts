/**
 * The command line's usage texts name every --backend value the commands accept, from the one list the refusal of an
 * unknown backend reads (server/cli/backend-option.ts BACKEND_CHOICES): auto, tensorflow, wasm and cpu. Before, the
 * texts said "auto|wasm|cpu" (or "B"), leaving out tensorflow, which the commands accept. The main usage is read as
 * `npm run cli` prints it (a real process, exit 2), `npm run worker -- --help`'s as it prints it (exit 0, the worker
 * refusing an unknown backend with the same words); the commands' own usage texts as they are exported.
 */
import { spawnSync } from "node:child_process";
import { describe, expect, it, vi } from "vitest";
import { BACKEND_CHOICES, unknownBackendRefusal } from "@/server/cli/backend-option";
import { COMPRESS_USAGE } from "@/server/cli/compress";
import { PILOT_USAGE } from "@/server/cli/pilot";
import { RERUN_USAGE } from "@/server/cli/rerun";
import { runCli } from "./cli-process";

vi.mock("server-only", () => ({}));

/** The value list of each "[--backend …]" option of a usage text. */
const backendLists = (usage: string) => [...usage.matchAll(/\[--backend ([^\]]+)\]/g)].map((m) => m[1]);

describe("[cli usage] --backend values", () => {
  it("every usage text lists the values the commands accept, tensorflow included", async () => {
    const main = await runCli([], {}, 60_000);
    expect(main.code).toBe(2);
    const worker = spawnSync(process.execPath, ["--import", "tsx", "server/worker/main.ts", "--help"], { encoding: "utf8" });
    expect(worker.status, worker.stderr).toBe(0);
    const lists = {
      main: backendLists(main.stderr),
      worker: backendLists(worker.stdout),
      compress: backendLists(COMPRESS_USAGE),
      pilot: backendLists(PILOT_USAGE),
      rerun: backendLists(RERUN_USAGE),
    };
    // train, sweep, resume, pilot --rollback and rerun in the main usage; each command's own.
    expect(lists.main).toHaveLength(5);
    for (const [usage, found] of Object.entries(lists)) {
      expect(found.length, usage).toBeGreaterThan(0);
      for (const list of found) expect(list, usage).toBe("auto|tensorflow|wasm|cpu");
    }
    expect(BACKEND_CHOICES.join("|")).toBe("auto|tensorflow|wasm|cpu");
    for (const choice of BACKEND_CHOICES) expect(unknownBackendRefusal("train", choice)).toBeNull();
    expect(unknownBackendRefusal("train", "gpu")).toBe('train: --backend takes auto, tensorflow, wasm, cpu, not "gpu"\n');
  }, 60_000);
});
