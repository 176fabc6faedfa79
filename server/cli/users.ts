/**
 * `users <list|create|set-role|disable|enable|reset-password> [--data-dir DIR] [--json]`: user management from the
 * command line, for the operator (bootstrap without demo data, recovery when no administrator can sign in).
 * The same services as the admin page (server/users/admin.ts), so the same rules and audit events; the
 * audit actor is "operator (command line)". Temporary passwords are printed once and never stored in clear.
 * With DATABASE_URL=postgres://… they run on the PostgreSQL store (issue 16; --data-dir is refused there), the first
 * administrator of a new PostgreSQL installation included; see cli-store.ts for the audit checkpoint after a write.
 * Exit codes (exit-codes.ts): 0 done, 1 refused (the message says why), 2 usage error, bad input or an unknown user.
 */
import { parseArgs } from "node:util";
import { eq } from "drizzle-orm";
import type { Db } from "@/db/client";
import { asStore, reader, type Store } from "@/db/store";
import { createUser, listUsers, OPERATOR_ACTOR, resetPassword, updateUser } from "@/server/users/admin";
import { ROLE_NAMES } from "@/contracts/user-fields";
import { dataDirWithPostgresRefusal, openCliStore } from "./cli-store";
import { isBadInput, noUserWithEmail } from "./exit-codes";

const USAGE = `usage: npm run cli -- users <subcommand> [--data-dir DIR] [--json]
  list
  create --email EMAIL --name NAME --role ${ROLE_NAMES.join("|")}   prints a temporary password (changed at first sign-in)
  set-role --email EMAIL --role ROLE
  disable --email EMAIL                              also ends the user's sessions
  enable --email EMAIL
  reset-password --email EMAIL                       prints a new temporary password; ends the user's sessions`;

class UsageError extends Error {}

async function userIdByEmail(db: Store | Db, email: string | undefined): Promise<number> {
  if (!email) throw new UsageError("--email is required");
  const store = asStore(db);
  const { users } = store.tables;
  const [row] = await reader(store).select({ id: users.id }).from(users).where(eq(users.email, email.trim().toLowerCase())).limit(1);
  if (!row) throw noUserWithEmail(email);
  return row.id;
}

async function run(
  db: Store | Db,
  sub: string,
  v: { email?: string; name?: string; role?: string },
): Promise<{ text: string; json: unknown }> {
  switch (sub) {
    case "list": {
      const rows = await listUsers(db);
      const text = rows
        .map((u) =>
          `${String(u.id).padStart(4)}  ${u.email.padEnd(32)} ${u.role.padEnd(9)} ${u.disabled ? "disabled" : "enabled "} ${u.mustChangePassword ? "must change password" : ""}`.trimEnd(),
        )
        .join("\n");
      return { text: text || "no users", json: { users: rows } };
    }
    case "create": {
      if (!v.email || !v.name || !v.role) throw new UsageError("create needs --email, --name and --role");
      const r = await createUser(db, OPERATOR_ACTOR, { email: v.email, name: v.name, role: v.role as (typeof ROLE_NAMES)[number] });
      return {
        text: `created user ${r.user.id} ${r.user.email} (${r.user.role})\ntemporary password (shown once; to be changed at first sign-in): ${r.temporaryPassword}`,
        json: r,
      };
    }
    case "set-role": {
      if (!v.role) throw new UsageError("set-role needs --role");
      const r = await updateUser(db, OPERATOR_ACTOR, {
        userId: await userIdByEmail(db, v.email),
        role: v.role as (typeof ROLE_NAMES)[number],
      });
      return { text: `${r.email} is now ${r.role}`, json: r };
    }
    case "disable":
    case "enable": {
      const r = await updateUser(db, OPERATOR_ACTOR, { userId: await userIdByEmail(db, v.email), disabled: sub === "disable" });
      return { text: `${r.email} is ${r.disabled ? `disabled (${r.sessionsRevoked} session(s) ended)` : "enabled"}`, json: r };
    }
    case "reset-password": {
      const r = await resetPassword(db, OPERATOR_ACTOR, { userId: await userIdByEmail(db, v.email) });
      return {
        text: `new temporary password for ${r.user.email} (shown once; to be changed at next sign-in): ${r.temporaryPassword}\n${r.sessionsRevoked} session(s) ended`,
        json: r,
      };
    }
    default:
      throw new UsageError(`unknown subcommand "${sub}"`);
  }
}

export async function usersCommand(argv: string[]): Promise<number> {
  const [sub, ...rest] = argv;
  let values: { email?: string; name?: string; role?: string; "data-dir"?: string; json?: boolean };
  try {
    ({ values } = parseArgs({
      args: rest,
      options: {
        email: { type: "string" },
        name: { type: "string" },
        role: { type: "string" },
        "data-dir": { type: "string" },
        json: { type: "boolean", default: false },
      },
    }));
  } catch (err) {
    process.stderr.write(`users: ${(err as Error).message}\n${USAGE}\n`);
    return 2;
  }
  if (!sub) {
    process.stderr.write(`${USAGE}\n`);
    return 2;
  }
  const refusal = dataDirWithPostgresRefusal("users", values["data-dir"]);
  if (refusal) {
    process.stderr.write(refusal);
    return 2;
  }
  const on = await openCliStore({ dataDir: values["data-dir"] });
  try {
    const out = await run(on.store, sub, values);
    if (sub !== "list") await on.checkpointAfterWrite();
    process.stdout.write(values.json ? `${JSON.stringify(out.json)}\n` : `${out.text}\n`);
    return 0;
  } catch (err) {
    process.stderr.write(`users: ${(err as Error).message}\n${err instanceof UsageError ? `${USAGE}\n` : ""}`);
    return err instanceof UsageError || isBadInput(err) ? 2 : 1;
  } finally {
    await on.close();
  }
}
