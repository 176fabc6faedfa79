/**
 * Where to go after signing in: only a path on this site. `safeNextPath` returns the path to navigate to, or "/"
 * when `next` is missing or could lead anywhere else.
 *
 * Refused: absolute URLs and schemes (`https:`, `javascript:`), protocol-relative `//host`, backslash forms that
 * browsers read as slashes (`/\host`, `\\host`), control characters (browsers drop tabs and newlines, turning
 * `/\t/host` into `//host`), and all of these again after percent-decoding (`/%2F%2Fhost`, `/%5Chost`). The final
 * check resolves the path with the WHATWG URL parser, as the browser will, and requires the same origin and a
 * path that does not start with two slashes. Pure: no Node imports, used by the sign-in page in the browser.
 */
const BASE = "http://same-origin.invalid";
const MAX_NEXT_LENGTH = 2048;

function looksDangerous(s: string): boolean {
  return (
    !s.startsWith("/") || s.startsWith("//") || s.includes("\\") || /[\u0000-\u001f\u007f]/.test(s) || /^\/*[a-z][a-z0-9+.-]*:/i.test(s)
  );
}

/** Decodes percent-escapes until the string stops changing (at most 3 rounds); null if it is not valid encoding. */
function fullyDecoded(s: string): string | null {
  let current = s;
  for (let i = 0; i < 3; i++) {
    let next: string;
    try {
      next = decodeURIComponent(current);
    } catch {
      return null;
    }
    if (next === current) return current;
    current = next;
  }
  return current;
}

export function safeNextPath(next: string | null | undefined): string {
  if (!next || next.length > MAX_NEXT_LENGTH) return "/";
  if (looksDangerous(next)) return "/";
  const decoded = fullyDecoded(next);
  if (decoded === null || looksDangerous(decoded)) return "/";
  let url: URL;
  try {
    url = new URL(next, BASE);
  } catch {
    return "/";
  }
  if (url.origin !== BASE || url.pathname.startsWith("//")) return "/";
  const path = url.pathname + url.search + url.hash;
  return path.startsWith("/signin") ? "/" : path;
}
