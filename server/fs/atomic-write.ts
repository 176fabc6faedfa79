/**
 * Atomic, durable file writes: the content goes to a temporary file next to the target (created exclusively, with
 * the exact mode asked for, whatever the umask), is fsynced, then put in place in one step and the directory is
 * fsynced. Used for key files, the witness's state, and content-addressed artifacts.
 *
 * Invariants:
 * - A reader (or a crash) sees either no file / the old file, or the whole new one; never a partial write.
 * - `createOnly`: the temp file is hard-linked to the target, which fails if the target exists, so an existing
 *   file is never overwritten and of two processes creating the same file exactly one wins (the other gets false).
 *   Otherwise the temp file is renamed over the target (replace).
 * - The temp file never outlives the call.
 * - Directory fsync: errors meaning the file system cannot sync a directory (EINVAL, ENOTSUP, EOPNOTSUPP) or the
 *   directory cannot be opened for reading (EACCES, EPERM) are ignored (the file itself is synced); any other
 *   error (EIO, ...) is thrown.
 */
import crypto from "node:crypto";
import fs from "node:fs";
import path from "node:path";

export type AtomicWriteOptions = { mode: number; createOnly?: boolean };

const DIR_SYNC_UNSUPPORTED = new Set(["EINVAL", "ENOTSUP", "EOPNOTSUPP", "EACCES", "EPERM"]);

/** fsync of a directory, so a rename or link inside it survives a crash. */
export function fsyncDirectory(dir: string): void {
  let fd: number;
  try {
    fd = fs.openSync(dir, "r");
  } catch (err) {
    if (DIR_SYNC_UNSUPPORTED.has((err as NodeJS.ErrnoException).code ?? "")) return;
    throw err;
  }
  try {
    fs.fsyncSync(fd);
  } catch (err) {
    if (!DIR_SYNC_UNSUPPORTED.has((err as NodeJS.ErrnoException).code ?? "")) throw err;
  } finally {
    fs.closeSync(fd);
  }
}

/**
 * Writes `content` to `target` atomically with exactly `mode`. Returns true when written; false only with
 * `createOnly` when `target` already exists (it is left untouched).
 */
export function writeFileAtomic(target: string, content: string | Uint8Array, { mode, createOnly = false }: AtomicWriteOptions): boolean {
  const tmp = `${target}.${process.pid}.${crypto.randomBytes(6).toString("hex")}.tmp`;
  const data = typeof content === "string" ? Buffer.from(content, "utf8") : content;
  const fd = fs.openSync(tmp, "wx", mode);
  try {
    let done = 0;
    while (done < data.byteLength) done += fs.writeSync(fd, data, done, data.byteLength - done);
    fs.fsyncSync(fd);
  } catch (err) {
    fs.closeSync(fd);
    fs.rmSync(tmp, { force: true });
    throw err;
  }
  fs.closeSync(fd);
  try {
    fs.chmodSync(tmp, mode); // the umask may have narrowed it; make it exact
    if (createOnly) {
      try {
        fs.linkSync(tmp, target); // atomic, and fails if the target exists
      } catch (err) {
        if ((err as NodeJS.ErrnoException).code === "EEXIST") return false;
        throw err;
      }
    } else {
      fs.renameSync(tmp, target);
    }
  } finally {
    fs.rmSync(tmp, { force: true });
  }
  fsyncDirectory(path.dirname(target));
  return true;
}
