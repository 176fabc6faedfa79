/**
 * The session cookie: how it is written, cleared and read.
 *
 * Invariants:
 * - The cookie is HttpOnly, SameSite=Lax, Path=/, and `Secure` whenever RUNLEDGER_PUBLIC_URL (the address people
 *   use to reach the app, documented in the README) is https (RUNLEDGER_SECURE_COOKIES=1 also forces it).
 * - Reading never throws: a cookie that is not a token we could have issued (bad percent-encoding, wrong length or
 *   alphabet) is "malformed", and the caller answers 401, never 500.
 */
export const SESSION_COOKIE = "runledger_session";

/** Tokens are 32 random bytes in base64url: 43 characters of [A-Za-z0-9_-]. */
const TOKEN_SHAPE = /^[A-Za-z0-9_-]{43}$/;

/** The public URL when set; throws a clear error when it is set to something that is not an absolute http(s) URL. */
export function publicUrl(): URL | null {
  const raw = process.env.RUNLEDGER_PUBLIC_URL?.trim();
  if (!raw) return null;
  let url: URL;
  try {
    url = new URL(raw);
  } catch {
    throw new Error(`RUNLEDGER_PUBLIC_URL must be an absolute URL such as https://runledger.example.org (got "${raw.slice(0, 100)}")`);
  }
  if (url.protocol !== "https:" && url.protocol !== "http:")
    throw new Error(`RUNLEDGER_PUBLIC_URL must start with https:// or http:// (got "${url.protocol}")`);
  return url;
}

export function secureCookies(): boolean {
  return publicUrl()?.protocol === "https:" || process.env.RUNLEDGER_SECURE_COOKIES === "1";
}

export function sessionCookie(token: string, maxAgeSeconds: number): string {
  return `${SESSION_COOKIE}=${token}; Path=/; HttpOnly; SameSite=Lax; Max-Age=${Math.max(0, Math.floor(maxAgeSeconds))}${secureCookies() ? "; Secure" : ""}`;
}

export function clearSessionCookie(): string {
  return `${SESSION_COOKIE}=; Path=/; HttpOnly; SameSite=Lax; Max-Age=0${secureCookies() ? "; Secure" : ""}`;
}

export type CookieToken = { kind: "none" } | { kind: "malformed" } | { kind: "token"; token: string };

/** The value of one cookie, or undefined; a value with bad percent-encoding is returned raw (callers validate it). */
export function readCookie(header: string | null | undefined, name: string): string | undefined {
  for (const part of (header ?? "").split(";")) {
    const eq = part.indexOf("=");
    if (eq < 0) continue;
    if (part.slice(0, eq).trim() !== name) continue;
    const raw = part.slice(eq + 1).trim();
    try {
      return decodeURIComponent(raw);
    } catch {
      return raw;
    }
  }
  return undefined;
}

/** The session token in a Cookie header, classified. */
export function readSessionToken(header: string | null | undefined): CookieToken {
  const value = readCookie(header, SESSION_COOKIE);
  if (value === undefined || value === "") return { kind: "none" };
  return TOKEN_SHAPE.test(value) ? { kind: "token", token: value } : { kind: "malformed" };
}
