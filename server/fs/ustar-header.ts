/**
 * One POSIX ustar header block, shared by the report bundle's in-memory tar (server/audit/report/tar.ts) and the
 * streaming backup archive (server/backup/tar-stream.ts).
 *
 * Invariants: the header depends only on (name, size, type, mtime): mode 0644 for files and 0755 for directories,
 * uid/gid 0, no user/group names, so the same inputs always give the same 512 bytes. Names longer than 100 bytes
 * are split into ustar's prefix/name at a "/"; a name that cannot be split is refused, never truncated. Sizes up to
 * 8^11 - 1 bytes are written in octal; larger ones in GNU base-256 (high bit set, big-endian).
 */

export const TAR_BLOCK = 512;
const MAX_OCTAL_SIZE = 8 ** 11 - 1;

function octal(value: number, width: number): string {
  return value.toString(8).padStart(width - 1, "0") + "\0";
}

/** The header block of a regular file ("0") or directory ("5") entry. */
export function ustarHeader(name: string, size: number, type: "0" | "5", mtime: number): Buffer {
  const h = Buffer.alloc(TAR_BLOCK, 0);
  let prefix = "";
  let base = name;
  if (Buffer.byteLength(name) > 100) {
    const cut = name.lastIndexOf("/", 155);
    prefix = cut > 0 ? name.slice(0, cut) : "";
    base = cut > 0 ? name.slice(cut + 1) : name;
    if (!prefix || Buffer.byteLength(base) > 100 || Buffer.byteLength(prefix) > 155)
      throw new Error(`tar: path too long for ustar: ${name}`);
  }
  h.write(base, 0, 100, "utf8");
  h.write(octal(type === "5" ? 0o755 : 0o644, 8), 100, "ascii");
  h.write(octal(0, 8), 108, "ascii");
  h.write(octal(0, 8), 116, "ascii");
  if (size <= MAX_OCTAL_SIZE) h.write(octal(size, 12), 124, "ascii");
  else {
    // GNU base-256: high bit set, big-endian value in the remaining bytes.
    h[124] = 0x80;
    let v = BigInt(size);
    for (let i = 135; i > 124; i--) {
      h[i] = Number(v & 0xffn);
      v >>= 8n;
    }
  }
  h.write(octal(mtime, 12), 136, "ascii");
  h.fill(0x20, 148, 156); // the checksum field counts as spaces while summing
  h.write(type, 156, "ascii");
  h.write("ustar\0", 257, "ascii");
  h.write("00", 263, "ascii");
  h.write(prefix, 345, 155, "utf8");
  let sum = 0;
  for (const b of h) sum += b;
  h.write(sum.toString(8).padStart(6, "0") + "\0 ", 148, "ascii");
  return h;
}
