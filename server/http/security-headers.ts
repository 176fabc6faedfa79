/**
 * The Content-Security-Policy of the app's pages, built per request with a fresh nonce (proxy.ts), and the one for
 * the auditor's report HTML (next.config.js repeats REPORT_CSP for /api/report: keep the two equal).
 *
 * Invariants:
 * - Scripts run only with this request's nonce ('strict-dynamic' lets those scripts load Next.js chunks); no
 *   'unsafe-inline' or 'unsafe-eval' for scripts in production.
 * - Styles may be inline: React writes style attributes, and CSP cannot nonce attributes (a nonce in style-src would
 *   also switch 'unsafe-inline' off).
 * - No page may be framed (frame-ancestors 'none', with X-Frame-Options DENY from next.config.js); the report HTML
 *   may be framed by this site only, renders with inline styles and inline SVG, and runs no script at all.
 * Pure: no Node imports (runs in the proxy).
 */
export function pageCsp(nonce: string, opts: { dev: boolean; https: boolean }): string {
  return [
    "default-src 'self'",
    `script-src 'self' 'nonce-${nonce}' 'strict-dynamic'${opts.dev ? " 'unsafe-eval'" : ""}`,
    "style-src 'self' 'unsafe-inline'",
    "img-src 'self' data: blob:",
    "font-src 'self'",
    "connect-src 'self'",
    "worker-src 'self' blob:",
    "frame-src 'self'",
    "object-src 'none'",
    "base-uri 'self'",
    "form-action 'self'",
    "frame-ancestors 'none'",
    ...(opts.https ? ["upgrade-insecure-requests"] : []),
  ].join("; ");
}

export const REPORT_CSP =
  "default-src 'none'; style-src 'unsafe-inline'; img-src data:; base-uri 'none'; form-action 'none'; frame-ancestors 'self'";

/** A nonce: 16 random bytes, base64. */
export function newNonce(): string {
  const bytes = new Uint8Array(16);
  crypto.getRandomValues(bytes);
  return btoa(String.fromCharCode(...bytes));
}
