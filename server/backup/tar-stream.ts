/**
 * Streaming POSIX ustar for backups: a writer that copies files into an archive chunk by chunk (never a whole file
 * in memory, any size: GNU base-256 size fields above 8 GiB) while hashing them, and a reader that walks an
 * archive's entries and streams each one out. Both are strict: the reader refuses a bad header checksum, any entry
 * type but a regular file or a directory, and any path that is absolute, has "..", or leaves `root/`.
 * (The report bundle's tar.ts builds small archives in memory; backups can be gigabytes. Both write their headers
 * with server/fs/ustar-header.ts.)
 */
import fs from "node:fs";
import { createHash } from "node:crypto";
import { TAR_BLOCK as BLOCK, ustarHeader as header } from "@/server/fs/ustar-header";

const CHUNK = 1024 * 1024;

export type TarEntryDigest = { sha256: string; bytes: number };

export class TarWriter {
  private offset = 0;
  private constructor(
    private readonly fh: fs.promises.FileHandle,
    private readonly mtime: number,
  ) {}

  /** Creates `file` (which must not exist). */
  static async create(file: string, mtime = Math.floor(Date.now() / 1000)): Promise<TarWriter> {
    return new TarWriter(await fs.promises.open(file, "wx", 0o600), mtime);
  }

  private async write(buf: Buffer): Promise<void> {
    let done = 0;
    while (done < buf.length) done += (await this.fh.write(buf, done, buf.length - done, this.offset + done)).bytesWritten;
    this.offset += buf.length;
  }

  private async pad(size: number): Promise<void> {
    const rest = (BLOCK - (size % BLOCK)) % BLOCK;
    if (rest) await this.write(Buffer.alloc(rest, 0));
  }

  async addDirectory(name: string): Promise<void> {
    await this.write(header(name.endsWith("/") ? name : `${name}/`, 0, "5", this.mtime));
  }

  /** Copies `source` (size taken when opened; the file must not change meanwhile) into the archive as `name`. */
  async addFile(name: string, source: string): Promise<TarEntryDigest> {
    const src = await fs.promises.open(source, "r");
    try {
      const size = (await src.stat()).size;
      await this.write(header(name, size, "0", this.mtime));
      const hash = createHash("sha256");
      const buf = Buffer.allocUnsafe(CHUNK);
      let copied = 0;
      while (copied < size) {
        const { bytesRead } = await src.read(buf, 0, Math.min(CHUNK, size - copied), copied);
        if (bytesRead === 0) throw new Error(`${source} shrank while being archived (${copied} of ${size} bytes)`);
        const piece = buf.subarray(0, bytesRead);
        hash.update(piece);
        await this.write(piece);
        copied += bytesRead;
      }
      await this.pad(size);
      return { sha256: hash.digest("hex"), bytes: size };
    } finally {
      await src.close();
    }
  }

  async addBuffer(name: string, data: Buffer): Promise<TarEntryDigest> {
    await this.write(header(name, data.length, "0", this.mtime));
    await this.write(data);
    await this.pad(data.length);
    return { sha256: createHash("sha256").update(data).digest("hex"), bytes: data.length };
  }

  /** Writes the end-of-archive blocks, flushes to disk and closes. */
  async close(): Promise<void> {
    await this.write(Buffer.alloc(BLOCK * 2, 0));
    await this.fh.sync();
    await this.fh.close();
  }

  async abort(): Promise<void> {
    await this.fh.close().catch(() => {});
  }
}

function readSize(h: Buffer): number {
  if (h[124]! & 0x80) {
    let v = 0n;
    for (let i = 125; i < 136; i++) v = (v << 8n) | BigInt(h[i]!);
    if (v > BigInt(Number.MAX_SAFE_INTEGER)) throw new Error("tar: entry size out of range");
    return Number(v);
  }
  const text = h.subarray(124, 136).toString("ascii").replace(/\0.*$/s, "").trim();
  if (!/^[0-7]*$/.test(text)) throw new Error("tar: malformed size field");
  return parseInt(text || "0", 8);
}

function checksumOk(h: Buffer): boolean {
  const recorded = parseInt(
    h
      .subarray(148, 156)
      .toString("ascii")
      .replace(/[\0 ].*$/s, "") || "-1",
    8,
  );
  let sum = 0;
  for (let i = 0; i < BLOCK; i++) sum += i >= 148 && i < 156 ? 0x20 : h[i]!;
  return recorded === sum;
}

export type TarEntry = { path: string; type: "file" | "directory"; size: number };

/**
 * Walks the archive: for each entry under `root/`, calls `onEntry` with its path relative to root; for a file,
 * `sink` receives its content in chunks. Throws on anything malformed or unsafe.
 */
export async function readTar(
  file: string,
  root: string,
  onEntry: (entry: TarEntry) => Promise<((chunk: Buffer) => Promise<void>) | null>,
): Promise<void> {
  const fh = await fs.promises.open(file, "r");
  try {
    const total = (await fh.stat()).size;
    const h = Buffer.alloc(BLOCK);
    const buf = Buffer.allocUnsafe(CHUNK);
    let off = 0;
    for (;;) {
      if (off + BLOCK > total) throw new Error("tar: the archive ends without its end-of-archive blocks (truncated?)");
      await fh.read(h, 0, BLOCK, off);
      if (h.every((b) => b === 0)) return;
      if (!checksumOk(h)) throw new Error(`tar: header checksum mismatch at byte ${off} (the archive is damaged)`);
      const name = h.subarray(0, 100).toString("utf8").replace(/\0.*$/s, "");
      const prefix = h.subarray(345, 500).toString("utf8").replace(/\0.*$/s, "");
      const full = prefix ? `${prefix}/${name}` : name;
      const type = String.fromCharCode(h[156]!);
      const size = readSize(h);
      off += BLOCK;
      if (type !== "0" && type !== "\0" && type !== "5")
        throw new Error(`tar: ${full} is not a regular file or a directory (type ${JSON.stringify(type)})`);
      const trimmed = full.replace(/\/$/, "");
      if (!(trimmed === root || trimmed.startsWith(`${root}/`))) throw new Error(`tar: ${full} is outside ${root}/`);
      const rel = trimmed.slice(root.length + 1);
      if (rel.split("/").some((p) => p === ".." || p === "." || (p === "" && rel !== ""))) throw new Error(`tar: unsafe path ${full}`);
      if (off + size > total) throw new Error(`tar: ${full} is cut short (the archive is truncated)`);
      const sink = rel === "" ? null : await onEntry({ path: rel, type: type === "5" ? "directory" : "file", size });
      if (sink && type !== "5") {
        let done = 0;
        while (done < size) {
          const { bytesRead } = await fh.read(buf, 0, Math.min(CHUNK, size - done), off + done);
          if (bytesRead === 0) throw new Error(`tar: ${full} is cut short`);
          await sink(buf.subarray(0, bytesRead));
          done += bytesRead;
        }
      }
      off += Math.ceil(size / BLOCK) * BLOCK;
    }
  } finally {
    await fh.close();
  }
}
