/**
 * A minimal POSIX ustar writer for report bundles (regular files and directories only), so the browser download
 * and `export --out FILE.tar` need no extra dependency. Any `tar -xf` unpacks it.
 *
 * Invariants: entries are written in sorted path order with fixed mtime/uid/gid/mode, so the same directory yields
 * the same bytes; paths longer than ustar allows are refused, never truncated.
 */
import fs from "node:fs";
import path from "node:path";

const BLOCK = 512;

function octal(value: number, width: number): string {
  return value.toString(8).padStart(width - 1, "0") + "\0";
}

function header(name: string, size: number, type: "0" | "5", mtime: number): Buffer {
  const h = Buffer.alloc(BLOCK, 0);
  let prefix = "";
  let base = name;
  if (Buffer.byteLength(name) > 100) {
    const cut = name.lastIndexOf("/", 155);
    prefix = cut > 0 ? name.slice(0, cut) : "";
    base = cut > 0 ? name.slice(cut + 1) : name;
    if (!prefix || Buffer.byteLength(base) > 100 || Buffer.byteLength(prefix) > 155) throw new Error(`tar: path too long for ustar: ${name}`);
  }
  h.write(base, 0, 100, "utf8");
  h.write(octal(type === "5" ? 0o755 : 0o644, 8), 100, "ascii");
  h.write(octal(0, 8), 108, "ascii");
  h.write(octal(0, 8), 116, "ascii");
  h.write(octal(size, 12), 124, "ascii");
  h.write(octal(mtime, 12), 136, "ascii");
  h.fill(0x20, 148, 156); // checksum field counts as spaces while summing
  h.write(type, 156, "ascii");
  h.write("ustar\0", 257, "ascii");
  h.write("00", 263, "ascii");
  h.write(prefix, 345, 155, "utf8");
  let sum = 0;
  for (const b of h) sum += b;
  h.write(sum.toString(8).padStart(6, "0") + "\0 ", 148, "ascii");
  return h;
}

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
