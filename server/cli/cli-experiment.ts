/**
 * The signed-in user and target experiment of a CLI command that launches runs (train, sweep): the user named by
 * --user, and the experiment named by --experiment in the demo project, created when it does not exist yet.
 *
 * On either store (issue 16): the same rule on SQLite and PostgreSQL. A new database (no users) gets the demo users
 * unless RUNLEDGER_DEMO=0, and the demo project and experiment are found or created by the demo engineer
 * (server/demo/seed.ts on SQLite; ensureDemoProjectOn, the same rows and events in one transaction, on the store).
 */
import { and, eq } from "drizzle-orm";
import { PG_LOCK_KEYS } from "@/db/pg-client";
import { asStore, reader, row, transact, type Store } from "@/db/store";
import type { Db } from "@/db/client";
import type { AppServices } from "@/server/app-context/app-services";
import type { SignedInActor } from "@/server/app-context/service-context";
import { SYSTEM_ACTOR } from "@/server/audit/ledger";
import { DEMO_EXPERIMENT, DEMO_PROJECT, DEMO_USERS, demoDataWanted, ensureDemoUsersAndProject } from "@/server/demo/seed";
import { createExperiment, createExperimentInput, createProjectInput, insertExperiment, insertProject } from "@/server/projects/service";
import { DomainError } from "@/server/errors";
import { actorOf, insertUserWithEvent } from "@/server/users/service";

/** Returns null (after saying so on stderr, prefixed by `command`) when no user has that email. */
export async function cliUserAndExperiment(services: AppServices, command: string, email: string, experimentName: string) {
  const seed = ensureDemoUsersAndProject(services);
  const found = await cliUserAndExperimentOn(services.db, seed.experimentId, command, email, experimentName);
  return found && { ctx: { ...services, actor: found.actor }, experiment: found.experiment };
}

/**
 * The demo users (in a new database, unless RUNLEDGER_DEMO=0) and the demo project and experiment (found, or created by
 * the demo engineer), as server/demo/seed.ts ensureDemoUsersAndProject does on SQLite, in one transaction under the
 * ledger lock: two commands starting at once on a new PostgreSQL database seed it once. Resolves to the demo
 * experiment's id.
 */
export async function ensureDemoProjectOn(db: Store | Db): Promise<number> {
  const store = asStore(db);
  const wanted = demoDataWanted();
  return transact(
    store,
    function* (tx) {
      const { users, projects, experiments } = store.tables;
      if (!(yield* row(tx.select({ id: users.id }).from(users).limit(1)))) {
        if (!wanted)
          throw new Error("RUNLEDGER_DEMO=0: this new database gets no demo data; create users with `npm run cli -- users create`");
        for (const u of DEMO_USERS)
          yield* insertUserWithEvent(tx, store.tables, SYSTEM_ACTOR, {
            email: u.email,
            name: u.name,
            role: u.role,
            passwordHash: u.passwordHash,
          });
      }
      const engineer = yield* row(tx.select().from(users).where(eq(users.email, DEMO_USERS[1]!.email)).limit(1));
      if (!engineer)
        throw new Error(
          `this database has no demo engineer (${DEMO_USERS[1]!.email}): it was created without demo data, so there is no demo project`,
        );
      const actor = actorOf(engineer);
      const project =
        (yield* row(tx.select().from(projects).where(eq(projects.name, DEMO_PROJECT)).limit(1))) ??
        (yield* insertProject(
          tx,
          store.tables,
          actor,
          createProjectInput.parse({
            name: DEMO_PROJECT,
            description: "A small MLP on Fisher's Iris data, seeded on first start so there is something to look at.",
          }),
        ));
      const experiment =
        (yield* row(tx.select().from(experiments).where(eq(experiments.name, DEMO_EXPERIMENT)).limit(1))) ??
        (yield* insertExperiment(
          tx,
          store.tables,
          actor,
          createExperimentInput.parse({ projectId: project.id, name: DEMO_EXPERIMENT, description: "Baseline MLPs on Iris." }),
        ));
      return experiment.id;
    },
    { pgLock: PG_LOCK_KEYS.ledger },
  );
}

/**
 * On either store: the user by email, and the experiment by name in the demo experiment's project (created by that user
 * when missing). Returns null (after saying so on stderr, prefixed by `command`) when no user has that email.
 */
export async function cliUserAndExperimentOn(
  db: Store | Db,
  demoExperimentId: number,
  command: string,
  email: string,
  experimentName: string,
): Promise<{ actor: SignedInActor; experiment: { id: number; name: string } } | null> {
  const store = asStore(db);
  const { users, experiments } = store.tables;
  const [user] = await reader(store).select().from(users).where(eq(users.email, email.toLowerCase())).limit(1);
  if (!user) {
    process.stderr.write(`${command}: no user with email ${email}\n`);
    return null;
  }
  const actor = actorOf(user);
  const [demo] = await reader(store)
    .select({ projectId: experiments.projectId })
    .from(experiments)
    .where(eq(experiments.id, demoExperimentId));
  const projectId = demo!.projectId;
  const find = async () =>
    (
      await reader(store)
        .select()
        .from(experiments)
        .where(and(eq(experiments.projectId, projectId), eq(experiments.name, experimentName)))
        .limit(1)
    )[0];
  const existing = await find();
  if (existing) return { actor, experiment: existing };
  try {
    return {
      actor,
      experiment: await createExperiment(
        { db: store, actor },
        { projectId, name: experimentName, description: "Runs launched from the command line." },
      ),
    };
  } catch (err) {
    // Another command created it between the read and the creation (two CLIs at once): use that one.
    const created = err instanceof DomainError && err.kind === "conflict" ? await find() : undefined;
    if (!created) throw err;
    return { actor, experiment: created };
  }
}
