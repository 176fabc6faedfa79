/**
 * Streams a request body into a file while hashing it (SHA-256) and counting its bytes, refusing it as soon as it
 * passes the byte limit. Memory stays bounded by the stream's chunks: the body is never held whole.
 * Invariants: on any failure the partial file is removed (it exists from the call on, so the removal always finds
 * it); on success the file holds exactly the bytes hashed.
 */
import fs from "node:fs";
import { createHash } from "node:crypto";
import { once } from "node:events";

export class BodyTooLargeError extends Error {}

export async function receiveBodyToFile(
  body: ReadableStream<Uint8Array>,
  file: string,
  opts: { maxBytes: number; onBytes?: (bytes: number) => void },
): Promise<{ bytes: number; sha256: string }> {
  const hash = createHash("sha256");
  // Opened here, synchronously: a stream given the path opens it later, so a body refused before that (past the
  // limit in its first chunks) had its file created after the cleanup below removed nothing, and left it behind.
  const out = fs.createWriteStream(file, { fd: fs.openSync(file, "wx", 0o600) });
  const reader = body.getReader();
  let bytes = 0;
  try {
    for (;;) {
      const { done, value } = await reader.read();
      if (done) break;
      bytes += value.byteLength;
      if (bytes > opts.maxBytes) throw new BodyTooLargeError(`the body is larger than the limit of ${opts.maxBytes} bytes`);
      hash.update(value);
      if (!out.write(value)) await once(out, "drain");
      opts.onBytes?.(bytes);
    }
    out.end();
    await once(out, "finish");
    return { bytes, sha256: hash.digest("hex") };
  } catch (e) {
    void reader.cancel().catch(() => {});
    out.destroy();
    fs.rmSync(file, { force: true });
    throw e;
  }
}
