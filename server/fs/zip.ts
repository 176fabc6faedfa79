/**
 * A minimal ZIP writer (PKWARE APPNOTE 6.3): stored entries (no compression), UTF-8 names, one fixed timestamp
 * (1980-01-01 00:00, the format's epoch), so the same files in the same order always give the same bytes and the
 * archive's SHA-256 can be compared by anyone who downloads it again. For small archives held in memory (weights
 * downloads); no ZIP64, so each entry and the whole archive must stay under 4 GiB.
 */
import { crc32 } from "node:zlib";

export type ZipEntry = { name: string; data: Uint8Array };

const DOS_DATE_1980_01_01 = (0 << 9) | (1 << 5) | 1;
const UTF8_NAMES = 0x0800;
const LIMIT = 0xffff_ffff;

export function zipStored(entries: ZipEntry[]): Uint8Array {
  const locals: Buffer[] = [];
  const centrals: Buffer[] = [];
  let offset = 0;
  for (const entry of entries) {
    const name = Buffer.from(entry.name, "utf8");
    const data = Buffer.from(entry.data.buffer, entry.data.byteOffset, entry.data.byteLength);
    if (data.length >= LIMIT) throw new Error(`zip entry ${entry.name} is too large for a ZIP without ZIP64`);
    const crc = crc32(data) >>> 0;
    const local = Buffer.alloc(30);
    local.writeUInt32LE(0x04034b50, 0);
    local.writeUInt16LE(20, 4);
    local.writeUInt16LE(UTF8_NAMES, 6);
    local.writeUInt16LE(0, 8);
    local.writeUInt16LE(0, 10);
    local.writeUInt16LE(DOS_DATE_1980_01_01, 12);
    local.writeUInt32LE(crc, 14);
    local.writeUInt32LE(data.length, 18);
    local.writeUInt32LE(data.length, 22);
    local.writeUInt16LE(name.length, 26);
    local.writeUInt16LE(0, 28);
    const central = Buffer.alloc(46);
    central.writeUInt32LE(0x02014b50, 0);
    central.writeUInt16LE(20, 4);
    central.writeUInt16LE(20, 6);
    central.writeUInt16LE(UTF8_NAMES, 8);
    central.writeUInt16LE(0, 10);
    central.writeUInt16LE(0, 12);
    central.writeUInt16LE(DOS_DATE_1980_01_01, 14);
    central.writeUInt32LE(crc, 16);
    central.writeUInt32LE(data.length, 20);
    central.writeUInt32LE(data.length, 24);
    central.writeUInt16LE(name.length, 28);
    central.writeUInt32LE(offset, 42);
    locals.push(local, name, data);
    centrals.push(central, name);
    offset += local.length + name.length + data.length;
    if (offset >= LIMIT) throw new Error("zip archive is too large for a ZIP without ZIP64");
  }
  const cd = Buffer.concat(centrals);
  const end = Buffer.alloc(22);
  end.writeUInt32LE(0x06054b50, 0);
  end.writeUInt16LE(entries.length, 8);
  end.writeUInt16LE(entries.length, 10);
  end.writeUInt32LE(cd.length, 12);
  end.writeUInt32LE(offset, 16);
  return new Uint8Array(Buffer.concat([...locals, cd, end]));
}

/** The entries of a ZIP written by zipStored (stored entries only): for tests and checks. */
export function unzipStored(zip: Uint8Array): ZipEntry[] {
  const buf = Buffer.from(zip.buffer, zip.byteOffset, zip.byteLength);
  const out: ZipEntry[] = [];
  let at = 0;
  while (at + 30 <= buf.length && buf.readUInt32LE(at) === 0x04034b50) {
    if (buf.readUInt16LE(at + 8) !== 0) throw new Error("compressed zip entries are not supported");
    const size = buf.readUInt32LE(at + 18);
    const nameLength = buf.readUInt16LE(at + 26);
    const extraLength = buf.readUInt16LE(at + 28);
    const name = buf.subarray(at + 30, at + 30 + nameLength).toString("utf8");
    const start = at + 30 + nameLength + extraLength;
    const data = new Uint8Array(buf.subarray(start, start + size));
    if (crc32(data) >>> 0 !== buf.readUInt32LE(at + 14)) throw new Error(`zip entry ${name} fails its CRC-32`);
    out.push({ name, data });
    at = start + size;
  }
  return out;
}
