/**
 * A minimal POSIX ustar writer for report bundles (regular files and directories only), so the browser download
 * and `export --out FILE.tar` need no extra dependency. Any `tar -xf` unpacks it.
 *
 * Invariants: entries are written in sorted path order with fixed mtime/uid/gid/mode, so the same directory yields
 * the same bytes; paths longer than ustar allows are refused, never truncated.
 */
import fs from "node:fs";
import path from "node:path";
import { TAR_BLOCK as BLOCK, ustarHeader as header } from "@/server/fs/ustar-header";

/** Every file under `dir` (relative, "/"-separated, sorted). */
function listFiles(dir: string, rel = ""): string[] {
  const out: string[] = [];
  for (const e of fs.readdirSync(path.join(dir, rel), { withFileTypes: true }).sort((a, b) => a.name.localeCompare(b.name))) {
    const r = rel ? `${rel}/${e.name}` : e.name;
    if (e.isDirectory()) out.push(`${r}/`, ...listFiles(dir, r));
    else if (e.isFile()) out.push(r);
  }
  return out;
}

/** The tar archive (as bytes) of `dir`'s contents under the top-level folder `root`. */
export function tarDirectory(dir: string, root: string, mtime = Math.floor(Date.now() / 1000)): Buffer {
  const parts: Buffer[] = [header(`${root}/`, 0, "5", mtime)];
  for (const rel of listFiles(dir)) {
    if (rel.endsWith("/")) {
      parts.push(header(`${root}/${rel}`, 0, "5", mtime));
      continue;
    }
    const data = fs.readFileSync(path.join(dir, rel));
    parts.push(header(`${root}/${rel}`, data.length, "0", mtime), data);
    const pad = (BLOCK - (data.length % BLOCK)) % BLOCK;
    if (pad) parts.push(Buffer.alloc(pad, 0));
  }
  parts.push(Buffer.alloc(BLOCK * 2, 0));
  return Buffer.concat(parts);
}
