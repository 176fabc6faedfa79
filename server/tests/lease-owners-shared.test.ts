/**
 * The lease owner registry is one per process, not one per copy of leases.ts. Next.js bundles the module into several
 * chunks (the start-up hook that creates the orchestrator, the tRPC route answering runs.holder), each with its own
 * module scope; with a registry per copy the run page said the web server's own training run was "gone since …;
 * another process takes it over". Two copies are made here with vi.resetModules.
 */
import os from "node:os";
import { describe, expect, it, vi } from "vitest";

type Leases = typeof import("@/server/runs/orchestrator/leases");
type Db = ConstructorParameters<Leases["LeaseHolder"]>[0];

async function freshCopy(): Promise<Leases> {
  vi.resetModules();
  return import("@/server/runs/orchestrator/leases");
}

describe("lease owners registered in this process", () => {
  it("are alive (and, once abandoned, dead) for every copy of the module", async () => {
    const first = await freshCopy();
    const second = await freshCopy();
    expect(second).not.toBe(first);
    // The constructor only needs a store for later transactions; none is run here.
    const fakeDb = { dialect: "sqlite", tables: {} } as unknown as Db;
    const holder = new first.LeaseHolder(fakeDb);
    const lease = { owner: holder.owner, host: os.hostname(), pid: process.pid, heartbeatAt: Date.now() };

    expect(first.ownerAlive(lease)).toBe(true);
    expect(second.ownerAlive(lease)).toBe(true);

    holder.abandon();
    expect(first.ownerAlive(lease)).toBe(false);
    expect(second.ownerAlive(lease)).toBe(false);
    expect(second.ownerAlive(lease, Date.now(), "pg")).toBe(false);
  });
});
