/**
 * `token create --user EMAIL [--name NAME] [--data-dir DIR] [--json]` and `token revoke --user EMAIL --id ID`,
 * `token list --user EMAIL`: personal access tokens for the tracking API (server/auth/tokens.ts), for the operator
 * (a script's token on a server nobody signed in to yet). Same service and ledger events as the account page; the
 * audit actor is "operator (command line)". The token is printed once (`{"token": …}` with --json) and never stored.
 * With DATABASE_URL=postgres://… they run on the PostgreSQL store (issue 16; --data-dir is refused there); see
 * cli-store.ts for the audit checkpoint after a write.
 * Exit codes (exit-codes.ts): 0 done, 1 refused (the message says why), 2 usage error, bad input, or an unknown user or token.
 */
import { parseArgs } from "node:util";
import { eq } from "drizzle-orm";
import type { Db } from "@/db/client";
import { asStore, reader, type Store } from "@/db/store";
import { OPERATOR_ACTOR } from "@/server/users/admin";
import { createToken, revokeToken, tokensOf } from "@/server/auth/tokens";
import { dataDirWithPostgresRefusal, openCliStore } from "./cli-store";
import { isBadInput, noUserWithEmail } from "./exit-codes";

const USAGE = `usage: npm run cli -- token <subcommand> --user EMAIL [--data-dir DIR] [--json]
  create --user EMAIL [--name NAME]     prints the new token once ({"token": …} with --json)
  list --user EMAIL                     the user's tokens (never their text)
  revoke --user EMAIL --id ID           revokes one of them (final)`;

class UsageError extends Error {}

async function userByEmail(db: Store | Db, email: string | undefined) {
  if (!email) throw new UsageError("--user is required");
  const store = asStore(db);
  const { users } = store.tables;
  const [row] = await reader(store)
    .select({ id: users.id, email: users.email })
    .from(users)
    .where(eq(users.email, email.trim().toLowerCase()))
    .limit(1);
  if (!row) throw noUserWithEmail(email);
  return row;
}

async function run(
  db: Store | Db,
  sub: string,
  v: { user?: string; name?: string; id?: string },
): Promise<{ text: string; json: unknown }> {
  const user = await userByEmail(db, v.user);
  switch (sub) {
    case "create": {
      const r = await createToken(db, OPERATOR_ACTOR, user, { name: v.name ?? "command line" });
      return {
        text: `created token ${r.id} "${r.name}" for ${user.email} (shown once; store it now):\n${r.token}`,
        json: { token: r.token, id: r.id, name: r.name, user: user.email },
      };
    }
    case "list": {
      const rows = await tokensOf(db, user.id);
      const text = rows
        .map((t) => `${String(t.id).padStart(4)}  ${t.name.padEnd(24)} ${t.prefix}…  ${t.revokedAt ? `revoked ${t.revokedAt}` : "active"}`)
        .join("\n");
      return { text: text || "no tokens", json: { tokens: rows } };
    }
    case "revoke": {
      const id = Number(v.id);
      if (!v.id || !Number.isInteger(id)) throw new UsageError("revoke needs --id ID (a number: see token list)");
      await revokeToken(db, OPERATOR_ACTOR, user.id, { tokenId: id });
      return { text: `revoked token ${id} of ${user.email}`, json: { revoked: id } };
    }
    default:
      throw new UsageError(`unknown subcommand "${sub}"`);
  }
}

export async function tokenCommand(argv: string[]): Promise<number> {
  const [sub, ...rest] = argv;
  let values: { user?: string; name?: string; id?: string; "data-dir"?: string; json?: boolean };
  try {
    ({ values } = parseArgs({
      args: rest,
      options: {
        user: { type: "string" },
        name: { type: "string" },
        id: { type: "string" },
        "data-dir": { type: "string" },
        json: { type: "boolean", default: false },
      },
    }));
  } catch (err) {
    process.stderr.write(`token: ${(err as Error).message}\n${USAGE}\n`);
    return 2;
  }
  if (!sub) {
    process.stderr.write(`${USAGE}\n`);
    return 2;
  }
  const refusal = dataDirWithPostgresRefusal("token", values["data-dir"]);
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
    process.stderr.write(`token: ${(err as Error).message}\n${err instanceof UsageError ? `${USAGE}\n` : ""}`);
    return err instanceof UsageError || isBadInput(err) ? 2 : 1;
  } finally {
    await on.close();
  }
}
