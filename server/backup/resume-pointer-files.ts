/**
 * Exact-resume pointer files of a SQLite installation from before the `resume_states` table
 * (`<dataDir>/resume-states/<run id>-<epoch>.json`, server/runs/resume-states.ts), moved by `migrate-store` as rows of
 * that table: a PostgreSQL store has no data directory of its own, and a paused or interrupted run must resume
 * exactly on whichever worker takes it.
 *
 * How: on the source connection, inside the copy's (or the check's) snapshot, a TEMP table `resume_states` shadows
 * the main one (SQLite resolves an unqualified name in the temp schema first). It holds the table's rows plus, for each
 * pointer file without a row (a row wins, as loading does), the file's pointer. The copy and the check read the
 * source through the unqualified name (store-tables.ts orderedSelect), so they copy and compare the same rows, and a
 * later `migrate-store --check` builds the same view again. Nothing is written to the source's database or files.
 *
 * A pointer file is left out (and named) when its run is not in the source (PostgreSQL's foreign key would refuse
 * it), when it is not a pointer, or when its state is not in the artifact store (loading would find no state either).
 */
import fs from "node:fs";
import path from "node:path";
import type Database from "better-sqlite3";
import { artifactPath } from "@/contracts/artifact-layout";

export type ResumePointerFiles = { files: number; copied: number; leftOut: string[] };

const POINTER_FILE = /^(\d+)-(\d+)\.json$/;
const SHA256 = /^[0-9a-f]{64}$/;

/** The state sha256 a pointer file names, or why it names none. */
function pointerOf(file: string): { sha: string } | { why: string } {
  try {
    const sha = (JSON.parse(fs.readFileSync(file, "utf8")) as { stateSha256?: unknown }).stateSha256;
    return typeof sha === "string" && SHA256.test(sha) ? { sha } : { why: "not a resume-state pointer" };
  } catch (err) {
    return { why: `unreadable (${(err as Error).message})` };
  }
}

/**
 * Shadows the source's resume_states with the table's rows plus its pointer files (see the header). Call inside the
 * source's read transaction, before the first read of resume_states; the TEMP table lasts until the connection closes.
 */
export function shadowResumeStatesWithPointerFiles(source: Database.Database, dataDir: string): ResumePointerFiles {
  const dir = path.join(dataDir, "resume-states");
  const names = fs.existsSync(dir) ? fs.readdirSync(dir).filter((n) => POINTER_FILE.test(n)) : [];
  if (names.length === 0) return { files: 0, copied: 0, leftOut: [] };
  source.exec(
    `CREATE TEMP TABLE resume_states (run_id INTEGER NOT NULL, epoch INTEGER NOT NULL, state_sha256 TEXT NOT NULL, PRIMARY KEY (run_id, epoch));
     INSERT INTO temp.resume_states (run_id, epoch, state_sha256) SELECT run_id, epoch, state_sha256 FROM main.resume_states;`,
  );
  const runExists = source.prepare("SELECT 1 FROM main.runs WHERE id = ?").pluck();
  const insert = source.prepare("INSERT OR IGNORE INTO temp.resume_states (run_id, epoch, state_sha256) VALUES (?, ?, ?)");
  let copied = 0;
  const leftOut: string[] = [];
  for (const name of names.sort()) {
    const [, run, epoch] = POINTER_FILE.exec(name)!;
    const pointer = pointerOf(path.join(dir, name));
    if ("why" in pointer) leftOut.push(`${name}: ${pointer.why}`);
    else if (runExists.get(Number(run)) === undefined) leftOut.push(`${name}: run ${run} is not in the database`);
    else if (!fs.existsSync(artifactPath(dataDir, pointer.sha)))
      leftOut.push(`${name}: its state ${pointer.sha} is not in the artifact store`);
    else if (insert.run(Number(run), Number(epoch), pointer.sha).changes === 1) copied++;
  }
  return { files: names.length, copied, leftOut };
}
