/**
 * Request body limit for JSON API routes (tRPC). Uploads have their own limits and stream (server/datasets/upload/).
 *
 * Invariants:
 * - A declared Content-Length over the limit is refused before a byte of the body is read.
 * - A body without a length (chunked) is read only up to the limit; one byte more and reading stops.
 * - The refusal is HTTP 413 with a tRPC-shaped JSON error, so the browser's tRPC client shows the message.
 */
export const DEFAULT_JSON_BODY_LIMIT = Number(process.env.RUNLEDGER_MAX_JSON_BODY_BYTES) || 1024 * 1024;

function tooLarge(limit: number, batch: boolean): Response {
  const message = `the request body is over the ${Math.round(limit / 1024)} KiB limit for API calls`;
  const error = { error: { message, code: -32413, data: { code: "PAYLOAD_TOO_LARGE", httpStatus: 413 } } };
  return new Response(JSON.stringify(batch ? [error] : error), {
    status: 413,
    headers: { "content-type": "application/json; charset=utf-8", "cache-control": "no-store", connection: "close" },
  });
}

/** The request with its body read into memory (at most `limit` bytes), or a 413 response. */
export async function limitRequestBody(req: Request, limit = DEFAULT_JSON_BODY_LIMIT): Promise<Request | Response> {
  if (req.method === "GET" || req.method === "HEAD" || !req.body) return req;
  const batch = new URL(req.url).searchParams.get("batch") === "1";
  const declared = Number(req.headers.get("content-length") ?? NaN);
  if (Number.isFinite(declared) && declared > limit) {
    await req.body.cancel().catch(() => undefined);
    return tooLarge(limit, batch);
  }
  const reader = req.body.getReader();
  const chunks: Uint8Array[] = [];
  let total = 0;
  for (;;) {
    const { done, value } = await reader.read();
    if (done) break;
    total += value.byteLength;
    if (total > limit) {
      await reader.cancel().catch(() => undefined);
      return tooLarge(limit, batch);
    }
    chunks.push(value);
  }
  return new Request(req.url, { method: req.method, headers: req.headers, body: Buffer.concat(chunks), signal: req.signal });
}
