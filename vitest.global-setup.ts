/**
 * Every Vitest run gets a temporary directory of its own (TMPDIR, inherited by the test processes and whatever they
 * spawn: workers, the CLI, witness servers), removed when the run ends. Tests make their databases, key directories
 * and bundles with os.tmpdir(), and many leave them behind when they fail or forget; without this, repeated runs
 * fill /tmp (hundreds of leftover directories after a day's work).
 *
 * RUNLEDGER_KEEP_TEST_TMP=1 keeps the directory and prints where it is, to look at what a failing test left.
 */
import fs from "node:fs";
import os from "node:os";
import path from "node:path";

export default function setup(): () => void {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), "runledger-vitest-"));
  const before = process.env.TMPDIR;
  process.env.TMPDIR = dir;
  return () => {
    if (before === undefined) delete process.env.TMPDIR;
    else process.env.TMPDIR = before;
    if (process.env.RUNLEDGER_KEEP_TEST_TMP === "1") console.log(`test temporary files kept in ${dir}`);
    else fs.rmSync(dir, { recursive: true, force: true });
  };
}
