/**
 * The witness over HTTP (node:http), for `npm run cli -- witness serve`.
 *   POST /add-checkpoint            c2sp.org/tlog-witness (see witness.ts for the answers)
 *   GET  /checkpoint/<origin>       the latest checkpoint this witness cosigned for that log, with its cosignature,
 *                                   so an auditor can ask the witness directly instead of trusting the log's copy
 *   GET  /witness-key               this witness's verifier key (vkey)
 * Invariants: request bodies over MAX_BODY_BYTES are refused with 413 before they are buffered whole; bodies must
 * be valid UTF-8; requests are handled one at a time per process by construction (the decision is synchronous).
 */
import http from "node:http";
import type { AddressInfo } from "node:net";
import type { Witness, WitnessResponse } from "./witness";

export const MAX_BODY_BYTES = 64 * 1024;

function send(res: http.ServerResponse, r: WitnessResponse): void {
  res.writeHead(r.status, { "content-type": r.contentType, "cache-control": "no-store" });
  res.end(r.body);
}

function readBody(req: http.IncomingMessage, limit: number): Promise<Buffer | "too large"> {
  return new Promise((resolve, reject) => {
    const declared = Number(req.headers["content-length"] ?? "0");
    if (declared > limit) {
      resolve("too large");
      req.resume();
      return;
    }
    const chunks: Buffer[] = [];
    let size = 0;
    let over = false;
    req.on("data", (c: Buffer) => {
      size += c.length;
      if (size > limit) over = true;
      else if (!over) chunks.push(c);
    });
    req.on("end", () => resolve(over ? "too large" : Buffer.concat(chunks)));
    req.on("error", reject);
  });
}

export function createWitnessServer(witness: Witness, opts: { maxBodyBytes?: number; log?: (line: string) => void } = {}): http.Server {
  const limit = opts.maxBodyBytes ?? MAX_BODY_BYTES;
  const log = opts.log ?? (() => undefined);
  const server = http.createServer((req, res) => {
    void (async () => {
      const url = new URL(req.url ?? "/", "http://witness");
      try {
        if (url.pathname === "/add-checkpoint") {
          if (req.method !== "POST") return send(res, { status: 405, contentType: "text/plain", body: "use POST\n" });
          const body = await readBody(req, limit);
          if (body === "too large")
            return send(res, { status: 413, contentType: "text/plain", body: `request body larger than ${limit} bytes\n` });
          let textBody: string;
          try {
            textBody = new TextDecoder("utf-8", { fatal: true }).decode(body);
          } catch {
            return send(res, { status: 400, contentType: "text/plain", body: "request body is not valid UTF-8\n" });
          }
          const r = witness.addCheckpoint(textBody);
          log(`add-checkpoint ${r.status}${r.status === 200 ? "" : `: ${r.body.trim()}`}`);
          return send(res, r);
        }
        if (req.method !== "GET") return send(res, { status: 405, contentType: "text/plain", body: "use GET\n" });
        if (url.pathname.startsWith("/checkpoint/"))
          return send(res, witness.latestCheckpoint(decodeURIComponent(url.pathname.slice("/checkpoint/".length))));
        if (url.pathname === "/witness-key")
          return send(res, { status: 200, contentType: "text/plain", body: `${witness.identity.verifierKey.vkey}\n` });
        return send(res, {
          status: 404,
          contentType: "text/plain",
          body: "endpoints: POST /add-checkpoint, GET /checkpoint/<origin>, GET /witness-key\n",
        });
      } catch (err) {
        log(`error: ${(err as Error).message}`);
        if (!res.headersSent) send(res, { status: 500, contentType: "text/plain", body: "internal error\n" });
        else res.end();
      }
    })();
  });
  server.headersTimeout = 10_000; // slow clients cannot hold connections open for long
  server.requestTimeout = 30_000;
  return server;
}

export async function listen(server: http.Server, port: number, host: string): Promise<{ url: string; port: number }> {
  await new Promise<void>((resolve, reject) => {
    server.once("error", reject);
    server.listen(port, host, () => resolve());
  });
  const addr = server.address() as AddressInfo;
  const shownHost = addr.family === "IPv6" ? `[${addr.address}]` : addr.address;
  return { url: `http://${shownHost}:${addr.port}`, port: addr.port };
}
