/**
 * Next.js proxy (formerly middleware) for page requests: a fresh CSP nonce per request, passed to the renderer in
 * the request's Content-Security-Policy header (Next.js reads the nonce from it and puts it on its scripts) and sent
 * to the browser in the response's. API routes and static files are not matched: they get their headers from
 * next.config.js, and a matched request would have its body buffered (and cut at 10 MB) for the proxy.
 */
import { NextResponse, type NextRequest } from "next/server";
import { newNonce, pageCsp } from "@/server/http/security-headers";

export function proxy(request: NextRequest) {
  const nonce = newNonce();
  const https = (process.env.RUNLEDGER_PUBLIC_URL ?? "").trim().toLowerCase().startsWith("https://");
  const csp = pageCsp(nonce, { dev: process.env.NODE_ENV === "development", https });
  const requestHeaders = new Headers(request.headers);
  requestHeaders.set("x-nonce", nonce);
  requestHeaders.set("Content-Security-Policy", csp);
  const response = NextResponse.next({ request: { headers: requestHeaders } });
  response.headers.set("Content-Security-Policy", csp);
  return response;
}

export const config = {
  matcher: [
    {
      source: "/((?!api|_next/static|_next/image|favicon.ico).*)",
      missing: [
        { type: "header", key: "next-router-prefetch" },
        { type: "header", key: "purpose", value: "prefetch" },
      ],
    },
  ],
};
