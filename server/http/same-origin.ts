/**
 * CSRF protection for state-changing requests that a session cookie authenticates (report exports, uploads).
 * The rule is Go's net/http CrossOriginProtection (Go 1.25), based on what browsers send on every request:
 * - GET, HEAD and OPTIONS pass (they must have no side effects: this check is why).
 * - `Sec-Fetch-Site` present (all current browsers): only "same-origin" or "none" (typed URL, bookmark) pass.
 * - Otherwise `Origin` present: its host must be the request's Host.
 * - Neither header: not a browser request (curl, scripts), which cannot ride a victim's cookie; it passes.
 * Together with the SameSite session cookie this refuses cross-site form posts and fetches.
 */

/** Why the request is refused as cross-origin, or null when it may proceed. */
export function crossOriginRefusal(req: Request): string | null {
  const method = req.method.toUpperCase();
  if (method === "GET" || method === "HEAD" || method === "OPTIONS") return null;
  const site = req.headers.get("sec-fetch-site");
  if (site !== null)
    return site === "same-origin" || site === "none" ? null : `cross-origin request refused (Sec-Fetch-Site: ${site.slice(0, 40)})`;
  const origin = req.headers.get("origin");
  if (origin === null) return null;
  let originHost: string | null = null;
  try {
    originHost = origin === "null" ? null : new URL(origin).host;
  } catch {
    originHost = null;
  }
  const host = req.headers.get("host");
  if (originHost !== null && host !== null && originHost === host) return null;
  return `cross-origin request refused (Origin ${origin.slice(0, 200)} is not this server)`;
}

export function refusedResponse(message: string, status: number, extraHeaders: Record<string, string> = {}): Response {
  return new Response(JSON.stringify({ error: { message } }), {
    status,
    headers: { "content-type": "application/json; charset=utf-8", "cache-control": "no-store", ...extraHeaders },
  });
}
