/**
 * The protective triggers of a live database (audit_events and audit_checkpoints append-only, decisions,
 * signatures and document versions immutable, and whatever later migrations add) must all be present and
 * unaltered: someone who drops or rewrites one can then edit history without the app refusing.
 *
 * Expected triggers come from the committed migrations (db/migrations, in journal order): they are applied to a
 * scratch in-memory database, so SQLite itself parses them (a trigger body holds semicolons; a later migration
 * may drop or recreate one) and stores them in the same normalised form as the live database. Both texts are
 * compared with runs of whitespace collapsed. A new migration that adds a trigger is thus expected automatically.
 *
 * Invariants: reads the live database only (sqlite_master, __drizzle_migrations); an error reading the
 * migrations is reported as a failed check, never as a pass.
 */
import Database from "better-sqlite3";
import fs from "node:fs";
import path from "node:path";
import type { TriggerLevel } from "./verify-types";

type Journal = { entries: { idx: number; when: number; tag: string }[] };
type ExpectedTriggers = { triggers: Map<string, string>; lastMigrationAt: number; lastTag: string };

const normalise = (sql: string) => sql.replace(/\s+/g, " ").trim();

const cache = new Map<string, { stamp: string; expected: ExpectedTriggers }>();

/** Name → normalised SQL of every trigger the committed migrations leave in place. */
export function expectedTriggers(migrationsDir = path.join(process.cwd(), "db", "migrations")): ExpectedTriggers {
  const journalFile = path.join(migrationsDir, "meta", "_journal.json");
  const journal = JSON.parse(fs.readFileSync(journalFile, "utf8")) as Journal;
  const files = journal.entries.map((e) => path.join(migrationsDir, `${e.tag}.sql`));
  const stamp = [journalFile, ...files].map((f) => `${f}:${fs.statSync(f).mtimeMs}`).join("|");
  const hit = cache.get(migrationsDir);
  if (hit?.stamp === stamp) return hit.expected;

  const scratch = new Database(":memory:");
  try {
    for (const file of files) {
      for (const statement of fs.readFileSync(file, "utf8").split("--> statement-breakpoint")) {
        if (statement.trim()) scratch.exec(statement);
      }
    }
    const rows = scratch.prepare("SELECT name, sql FROM sqlite_master WHERE type = 'trigger' ORDER BY name").all() as {
      name: string;
      sql: string;
    }[];
    const last = journal.entries.at(-1);
    const expected = {
      triggers: new Map(rows.map((r) => [r.name, normalise(r.sql)])),
      lastMigrationAt: last?.when ?? 0,
      lastTag: last?.tag ?? "",
    };
    cache.set(migrationsDir, { stamp, expected });
    return expected;
  } finally {
    scratch.close();
  }
}

/** Compares the live database's triggers with the expected ones. `problems` are ready to show. */
export function checkTriggers(
  sqlite: Database.Database,
  migrationsDir?: string,
): { level: TriggerLevel; problems: string[]; notes: string[] } {
  let expected: ExpectedTriggers;
  try {
    expected = expectedTriggers(migrationsDir);
  } catch (err) {
    const message = `the protective triggers could not be checked: the migrations could not be read (${(err as Error).message})`;
    return { level: { ok: false, missing: [], altered: [] }, problems: [message], notes: [] };
  }
  const live = new Map(
    (sqlite.prepare("SELECT name, sql FROM sqlite_master WHERE type = 'trigger'").all() as { name: string; sql: string | null }[]).map(
      (r) => [r.name, normalise(r.sql ?? "")],
    ),
  );
  const missing: string[] = [];
  const altered: string[] = [];
  const problems: string[] = [];
  for (const [name, sql] of expected.triggers) {
    const found = live.get(name);
    if (found === undefined) {
      missing.push(name);
      problems.push(`protective trigger ${name} is missing (dropped?): the table it guards can be changed without the app refusing`);
    } else if (found !== sql) {
      altered.push(name);
      problems.push(`protective trigger ${name} differs from its migration (altered?): expected "${sql}", found "${found}"`);
    }
  }
  const notes: string[] = [];
  const extra = [...live.keys()].filter((n) => !expected.triggers.has(n)).sort();
  if (extra.length > 0)
    notes.push(`the database has ${extra.length === 1 ? "a trigger" : "triggers"} no migration creates: ${extra.join(", ")}`);
  if (missing.length > 0 && appliedUpTo(sqlite) < expected.lastMigrationAt) {
    notes.push(
      `the database has not applied every migration (the latest is ${expected.lastTag}); open it with the current app to migrate it`,
    );
  }
  return { level: { ok: missing.length === 0 && altered.length === 0, missing, altered }, problems, notes };
}

function appliedUpTo(sqlite: Database.Database): number {
  try {
    const row = sqlite.prepare("SELECT max(created_at) AS at FROM __drizzle_migrations").get() as { at: number | null };
    return Number(row.at ?? 0);
  } catch {
    return 0;
  }
}
