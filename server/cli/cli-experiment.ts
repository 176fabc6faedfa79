/**
 * The signed-in user and target experiment of a CLI command that launches runs (train, sweep): the user named by
 * --user, and the experiment named by --experiment in the demo project, created when it does not exist yet.
 */
import { and, eq } from "drizzle-orm";
import { experiments, users } from "@/db/schema";
import type { AppServices } from "@/server/app-context/app-services";
import { ensureDemoUsersAndProject } from "@/server/demo/seed";
import { createExperiment } from "@/server/projects/service";
import { actorOf } from "@/server/users/service";

/** Returns null (after saying so on stderr, prefixed by `command`) when no user has that email. */
export async function cliUserAndExperiment(services: AppServices, command: string, email: string, experimentName: string) {
  const { db } = services;
  const seed = ensureDemoUsersAndProject(services);
  const user = db.select().from(users).where(eq(users.email, email.toLowerCase())).get();
  if (!user) {
    process.stderr.write(`${command}: no user with email ${email}\n`);
    return null;
  }
  const ctx = { ...services, actor: actorOf(user) };
  const project = db.select().from(experiments).where(eq(experiments.id, seed.experimentId)).get()!.projectId;
  const experiment =
    db
      .select()
      .from(experiments)
      .where(and(eq(experiments.projectId, project), eq(experiments.name, experimentName)))
      .get() ??
    (await createExperiment(ctx, { projectId: project, name: experimentName, description: "Runs launched from the command line." }));
  return { ctx, experiment };
}
