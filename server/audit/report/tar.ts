/**
 * A minimal POSIX ustar writer for report bundles (regular files and directories only), so the browser download
 * and `export --out FILE.tar` need no extra dependency. Any `tar -xf` unpacks it.
 *
 * untarInto reads such an archive back (tests and `export --verify FILE.tar`).
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

/** Reads back an archive written by tarDirectory (regular files only; strips the top folder). For tests and `export --verify FILE.tar`. */
export function untarInto(bytes: Buffer, dir: string): string[] {
  const files: string[] = [];
  let off = 0;
  while (off + 512 <= bytes.length) {
    const h = bytes.subarray(off, off + 512);
    if (h.every((b) => b === 0)) break;
    const name = h.subarray(0, 100).toString("utf8").replace(/\0.*$/s, "");
    const prefix = h.subarray(345, 500).toString("utf8").replace(/\0.*$/s, "");
    const size = parseInt(h.subarray(124, 136).toString("ascii").replace(/\0.*$/s, "").trim() || "0", 8);
    const type = String.fromCharCode(h[156]!);
    const full = prefix ? `${prefix}/${name}` : name;
    const rel = full.split("/").slice(1).join("/");
    off += 512;
    if ((type === "0" || type === "\0") && rel) {
      if (rel.split("/").some((p) => p === ".." || p === "")) throw new Error(`tar: unsafe path ${full}`);
      fs.mkdirSync(path.dirname(path.join(dir, rel)), { recursive: true });
      fs.writeFileSync(path.join(dir, rel), bytes.subarray(off, off + size));
      files.push(rel);
    }
    off += Math.ceil(size / 512) * 512;
  }
  return files;
}
