/**
 * The web app's own PostgreSQL services for one describe block (call inside describePg): a scratch database,
 * createPgAppServices on it (CPU backend, its own local and key directories), the test people seeded; tRPC callers
 * signed in as any of them. Dropped with its directories after the block.
 */
import { afterAll, beforeAll } from "vitest";
import fs from "node:fs";
import os from "node:os";
import path from "node:path";
import { eq } from "drizzle-orm";
import { createPgAppServices, type OwnedAppServices } from "@/server/app-context/app-services";
import { reader, type Store } from "@/db/store";
import { createCaller } from "@/server/trpc/root";
import { actorOf } from "@/server/users/service";
import { createScratchPgDatabase, type ScratchPgDatabase } from "./pg-test-env";
import { seedPeople } from "./store-test-env";

export type PgWebApp = {
  app(): OwnedAppServices;
  store(): Store;
  /** The directory holding the app's local ("web") and key ("keys") directories. */
  dir(): string;
  /** A caller signed in as the user with this email (the test people's, or one `setup` added). */
  callerAs(email: string): Promise<ReturnType<typeof createCaller>>;
};

export function usePgWebApp(name: string, opts: { at: string; poolSize?: number; setup?: (store: Store) => Promise<void> }): PgWebApp {
  let scratch: ScratchPgDatabase | undefined;
  let app: OwnedAppServices | undefined;
  let dir = "";
  beforeAll(async () => {
    dir = fs.mkdtempSync(path.join(os.tmpdir(), `rl-${name}-`));
    scratch = await createScratchPgDatabase();
    app = await createPgAppServices(scratch.url, {
      localDir: path.join(dir, "web"),
      keyDir: path.join(dir, "keys"),
      backend: "cpu",
      poolSize: opts.poolSize ?? 4,
    });
    await seedPeople(app.db as Store, { at: opts.at, passwordHash: "x" });
    await opts.setup?.(app.db as Store);
  }, 120_000);
  afterAll(async () => {
    await app?.close();
    await scratch?.drop();
    if (dir) fs.rmSync(dir, { recursive: true, force: true });
  });
  const store = () => app!.db as Store;
  return {
    app: () => app!,
    store,
    dir: () => dir,
    callerAs: async (email) => {
      const { users } = store().tables;
      const [user] = await reader(store()).select().from(users).where(eq(users.email, email));
      if (!user) throw new Error(`no user ${email}`);
      return createCaller({ services: app!, user: actorOf(user), sessionToken: undefined });
    },
  };
}
