/**
 * The protective triggers of a PostgreSQL store (issue 16): the counterpart of verify-triggers.ts. Every trigger of
 * db/migrations-pg (append-only ledger tables, immutable decisions, signatures and document versions, the single
 * transition of a run intervention) must be present, enabled and unaltered, and so must the plpgsql function they
 * call: whoever drops, disables or rewrites one can then edit history without the app refusing.
 *
 * Expected definitions are PostgreSQL's own rendering (`pg_get_triggerdef`, `prosrc`) of the committed migrations,
 * kept in db/migrations-pg/protective-triggers.json. verify-triggers-pg.test.ts migrates a scratch database and fails
 * when that file no longer matches the migrations (it prints the new file), so a migration that adds or changes a
 * trigger updates it in the same commit. Renderings are compared with the table's schema name removed and runs of
 * whitespace collapsed.
 *
 * What this cannot see: a superuser's session with `session_replication_role = replica` (triggers do not fire there)
 * leaves no trace in the catalog. The ledger's hash chain still exposes any edit of audit events.
 *
 * Invariants: reads the catalog only, inside the caller's transaction; an error is a failed check, never a pass.
 */
import fs from "node:fs";
import path from "node:path";
import type pg from "pg";
import type { TriggerLevel } from "./verify-types";

export type ExpectedPgTriggers = { triggers: Record<string, string>; functions: Record<string, string> };

export const PG_TRIGGERS_FILE = path.join(process.cwd(), "db", "migrations-pg", "protective-triggers.json");

const normalise = (sql: string) => sql.replace(/\s+/g, " ").trim();

/** The live triggers (name → rendering, enabled) and the trigger functions of the current schema. */
export async function liveProtectiveTriggers(
  client: pg.ClientBase,
): Promise<{ triggers: Map<string, { def: string; enabled: boolean }>; functions: Map<string, string> }> {
  const t = await client.query<{ name: string; def: string; enabled: string; schema: string }>(
    `SELECT t.tgname AS name, pg_get_triggerdef(t.oid) AS def, t.tgenabled AS enabled, n.nspname AS schema
       FROM pg_trigger t JOIN pg_class c ON c.oid = t.tgrelid JOIN pg_namespace n ON n.oid = c.relnamespace
      WHERE NOT t.tgisinternal AND n.nspname = current_schema()`,
  );
  const f = await client.query<{ name: string; src: string }>(
    `SELECT p.proname AS name, p.prosrc AS src FROM pg_proc p JOIN pg_namespace n ON n.oid = p.pronamespace
      WHERE n.nspname = current_schema() AND p.prorettype = 'trigger'::regtype`,
  );
  const withoutSchema = (def: string, schema: string) => normalise(def.split(` ON ${schema}.`).join(" ON "));
  return {
    // 'D' is disabled; 'O' (origin), 'A' (always) and 'R' (replica) fire in some mode.
    triggers: new Map(t.rows.map((r) => [r.name, { def: withoutSchema(r.def, r.schema), enabled: r.enabled !== "D" }])),
    functions: new Map(f.rows.map((r) => [r.name, normalise(r.src)])),
  };
}

export function expectedPgTriggers(file = PG_TRIGGERS_FILE): ExpectedPgTriggers {
  return JSON.parse(fs.readFileSync(file, "utf8")) as ExpectedPgTriggers;
}

export async function checkTriggersPg(
  client: pg.ClientBase,
  file = PG_TRIGGERS_FILE,
): Promise<{ level: TriggerLevel; problems: string[]; notes: string[] }> {
  let expected: ExpectedPgTriggers;
  let live: Awaited<ReturnType<typeof liveProtectiveTriggers>>;
  try {
    expected = expectedPgTriggers(file);
    live = await liveProtectiveTriggers(client);
  } catch (err) {
    const message = `the protective triggers could not be checked: ${(err as Error).message}`;
    return { level: { ok: false, missing: [], altered: [] }, problems: [message], notes: [] };
  }
  const missing: string[] = [];
  const altered: string[] = [];
  const problems: string[] = [];
  for (const [name, def] of Object.entries(expected.triggers)) {
    const found = live.triggers.get(name);
    if (!found) {
      missing.push(name);
      problems.push(`protective trigger ${name} is missing (dropped?): the table it guards can be changed without the app refusing`);
    } else if (found.def !== normalise(def)) {
      altered.push(name);
      problems.push(`protective trigger ${name} differs from its migration (altered?): expected "${normalise(def)}", found "${found.def}"`);
    } else if (!found.enabled) {
      altered.push(name);
      problems.push(`protective trigger ${name} is disabled (ALTER TABLE … DISABLE TRIGGER): it does not fire`);
    }
  }
  for (const [name, src] of Object.entries(expected.functions)) {
    const found = live.functions.get(name);
    if (found === undefined) {
      missing.push(`function ${name}`);
      problems.push(`the triggers' function ${name} is missing`);
    } else if (found !== normalise(src)) {
      altered.push(`function ${name}`);
      problems.push(`the triggers' function ${name} differs from its migration (altered?): expected "${normalise(src)}", found "${found}"`);
    }
  }
  const notes: string[] = [];
  const extra = [...live.triggers.keys()].filter((n) => !(n in expected.triggers)).sort();
  if (extra.length > 0)
    notes.push(`the database has ${extra.length === 1 ? "a trigger" : "triggers"} no migration creates: ${extra.join(", ")}`);
  return { level: { ok: missing.length === 0 && altered.length === 0, missing, altered }, problems, notes };
}
