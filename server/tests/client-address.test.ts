/**
 * The client address behind per-address sign-in throttling comes from the socket, not from a header the client
 * chose; X-Forwarded-For counts only as far as RUNLEDGER_TRUST_PROXY trusts proxies. A real HTTP server with the
 * start-up hook (server/http/client-address.ts) turns each Node request into a Web Request as Next.js does
 * (including Next's "fill X-Forwarded-For when absent") and runs the real sign-in procedure on a real database.
 */
import http from "node:http";
import type { AddressInfo } from "node:net";
import { afterAll, afterEach, beforeAll, describe, expect, it } from "vitest";
import { createCaller } from "@/server/trpc/root";
import { clientOf, createContextFromRequest } from "@/server/trpc/init";
import { ADDRESS_POLICY } from "@/server/auth/throttle";
import {
  installPeerAddressHook,
  PEER_HEADER,
  TRUST_PROXY_SETTING,
  trustProxyHops,
  uninstallPeerAddressHook,
} from "@/server/http/client-address";
import { createTestApp, type TestApp } from "./test-app";

let app: TestApp;
let server: http.Server;
let base: string;

/** Next.js-like: Node request → Web Request (headers from req.headers); X-Forwarded-For filled when absent. */
function webRequest(req: http.IncomingMessage): Request {
  req.headers["x-forwarded-for"] ??= req.socket.remoteAddress;
  const headers = new Headers();
  for (const [k, v] of Object.entries(req.headers)) if (v !== undefined) headers.set(k, Array.isArray(v) ? v.join(", ") : v);
  return new Request(`http://127.0.0.1${req.url}`, { headers });
}

beforeAll(async () => {
  app = createTestApp();
  installPeerAddressHook();
  server = http.createServer((req, res) => {
    void (async () => {
      const request = webRequest(req);
      if (req.url === "/address") return res.end(clientOf(request).address);
      const email = new URL(request.url).searchParams.get("email")!;
      const caller = createCaller(() => createContextFromRequest(app, request, new Headers()));
      try {
        await caller.auth.signIn({ email, password: "wrong-password" });
        res.end("200");
      } catch (err) {
        res.end((err as { code?: string }).code ?? "500");
      }
    })();
  });
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  base = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
});
afterAll(async () => {
  uninstallPeerAddressHook();
  await new Promise((resolve) => server.close(resolve));
  app.close();
});
afterEach(() => {
  delete process.env[TRUST_PROXY_SETTING];
});

const addressSeen = async (headers: Record<string, string> = {}) => (await fetch(`${base}/address`, { headers })).text();

describe("[client address] RUNLEDGER_TRUST_PROXY", () => {
  it("reads the setting: off by default, on/1 one proxy, N proxies; anything else is refused naming the setting", () => {
    for (const v of [undefined, "", "0", "off", "false", "no"]) expect(trustProxyHops({ [TRUST_PROXY_SETTING]: v })).toBe(0);
    for (const v of ["1", "on", "true", "yes"]) expect(trustProxyHops({ [TRUST_PROXY_SETTING]: v })).toBe(1);
    expect(trustProxyHops({ [TRUST_PROXY_SETTING]: "3" })).toBe(3);
    for (const v of ["-1", "11", "1.5", "nginx"])
      expect(() => trustProxyHops({ [TRUST_PROXY_SETTING]: v })).toThrow(/RUNLEDGER_TRUST_PROXY=.* is not valid/);
  });

  it("by default the socket's address: a client-sent X-Forwarded-For or a forged peer header changes nothing", async () => {
    expect(await addressSeen()).toBe("127.0.0.1");
    expect(await addressSeen({ "x-forwarded-for": "203.0.113.7" })).toBe("127.0.0.1");
    expect(await addressSeen({ "x-forwarded-for": "203.0.113.7, 203.0.113.8" })).toBe("127.0.0.1");
    expect(await addressSeen({ [PEER_HEADER]: "0123456789abcdef01234567 203.0.113.9" })).toBe("127.0.0.1");
  });

  it("behind trusted proxies: the address the nearest trusted proxy added (right-most entry), or N hops in", async () => {
    process.env[TRUST_PROXY_SETTING] = "1";
    expect(await addressSeen({ "x-forwarded-for": "203.0.113.7" })).toBe("203.0.113.7");
    expect(await addressSeen({ "x-forwarded-for": "6.6.6.6, 203.0.113.7" })).toBe("203.0.113.7"); // the client forged 6.6.6.6; the proxy appended the real one
    expect(await addressSeen()).toBe("127.0.0.1"); // no proxy in between: the socket
    process.env[TRUST_PROXY_SETTING] = "2";
    expect(await addressSeen({ "x-forwarded-for": "6.6.6.6, 203.0.113.7, 10.0.0.2" })).toBe("203.0.113.7");
    expect(await addressSeen({ "x-forwarded-for": "10.0.0.2" })).toBe("10.0.0.2"); // a shorter chain: its left-most address
  });

  it("so a client cannot dodge the per-address sign-in limit by rotating X-Forwarded-For", async () => {
    const stamp = Date.now();
    const outcomes: string[] = [];
    for (let i = 0; i <= ADDRESS_POLICY.freeFailures; i++) {
      const res = await fetch(`${base}/signin?email=${encodeURIComponent(`rotate-${stamp}-${i}@example.org`)}`, {
        headers: { "x-forwarded-for": `203.0.113.${i + 1}` },
      });
      outcomes.push(await res.text());
    }
    expect(outcomes.slice(0, ADDRESS_POLICY.freeFailures)).toEqual(Array(ADDRESS_POLICY.freeFailures).fill("UNAUTHORIZED"));
    expect(outcomes.at(-1)).toBe("TOO_MANY_REQUESTS");
  });
});
