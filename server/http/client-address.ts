/**
 * The client address of a request (per-address sign-in throttling, session lists), and whether to trust
 * `X-Forwarded-For` for it: RUNLEDGER_TRUST_PROXY (README, Deployment settings).
 *
 * Why a hook: Next.js route handlers get a Web `Request` with no socket. Next.js copies the socket's address into
 * `X-Forwarded-For` only when the request has none, so a client that sends its own header chooses the address the
 * app sees. `installPeerAddressHook` (called by instrumentation.ts when the server starts) subscribes to Node's
 * `http.server.request.start` diagnostics channel, which runs for every request before any handler, and writes the
 * socket's remote address into `x-runledger-peer`, overwriting anything the client sent under that name. The value
 * carries a random per-process token, so a client cannot forge it even if the hook were missing for a request.
 *
 * Rules (`clientAddress`):
 * - RUNLEDGER_TRUST_PROXY unset/0/off/false (default): the socket's address; `X-Forwarded-For` is ignored.
 * - 1/on/true: one trusted reverse proxy connects to the app: the right-most `X-Forwarded-For` entry (the address
 *   that proxy added). N (2–10): N proxies in a chain: the entry N places from the right, counting the socket as 0.
 *   When the chain is shorter (a request that did not pass the proxies), its left-most address.
 * - A process with no HTTP server hook (tests and scripts that build Requests themselves): no socket exists, and the
 *   right-most `X-Forwarded-For` entry stands for it (tests use it to play different clients).
 * - Under the Next.js server without the hook (instrumentation.ts missing): "unknown", with one error logged.
 */
import { randomBytes } from "node:crypto";
import dc from "node:diagnostics_channel";
import type { IncomingMessage } from "node:http";
import type { Socket } from "node:net";

export const TRUST_PROXY_SETTING = "RUNLEDGER_TRUST_PROXY";
export const PEER_HEADER = "x-runledger-peer";
const MAX_HOPS = 10;

/** Trusted proxy hops from RUNLEDGER_TRUST_PROXY; throws naming the setting when it is not one of the accepted values. */
export function trustProxyHops(env: Record<string, string | undefined> = process.env): number {
  const raw = (env[TRUST_PROXY_SETTING] ?? "").trim().toLowerCase();
  if (raw === "" || raw === "0" || raw === "off" || raw === "false" || raw === "no") return 0;
  if (raw === "on" || raw === "true" || raw === "yes") return 1;
  const n = Number(raw);
  if (/^\d+$/.test(raw) && n >= 1 && n <= MAX_HOPS) return n;
  throw new Error(
    `${TRUST_PROXY_SETTING}=${JSON.stringify(env[TRUST_PROXY_SETTING])} is not valid: use 0/off (default: the socket's address), 1/on (one reverse proxy), or the number of proxies in front (up to ${MAX_HOPS})`,
  );
}

type HookState = { token: string; channel: (message: unknown) => void };
const g = globalThis as unknown as { __runledgerPeerHook?: HookState; __runledgerPeerHookWarned?: boolean };

/** An IPv4 address in IPv6 form (::ffff:1.2.3.4) as plain IPv4; capped in length. */
function normaliseAddress(address: string): string {
  const a = address.trim();
  return (a.toLowerCase().startsWith("::ffff:") && a.includes(".") ? a.slice(7) : a).slice(0, 64);
}

/** Subscribes the socket-address hook once per process (idempotent). Validates RUNLEDGER_TRUST_PROXY first. */
export function installPeerAddressHook(): void {
  trustProxyHops(); // a bad setting stops the server at start, with a message naming it
  if (g.__runledgerPeerHook) return;
  const token = randomBytes(12).toString("hex");
  const channel = (message: unknown) => {
    const { request, socket } = message as { request: IncomingMessage; socket: Socket };
    request.headers[PEER_HEADER] = `${token} ${normaliseAddress(socket.remoteAddress ?? "unknown")}`;
  };
  dc.subscribe("http.server.request.start", channel);
  g.__runledgerPeerHook = { token, channel };
}

/** For tests: removes the hook. */
export function uninstallPeerAddressHook(): void {
  const hook = g.__runledgerPeerHook;
  if (!hook) return;
  dc.unsubscribe("http.server.request.start", hook.channel);
  delete g.__runledgerPeerHook;
}

/** The socket address the hook recorded for this request, or null (no hook, or no genuine header). */
function peerOf(headers: Headers, token: string): string | null {
  const value = headers.get(PEER_HEADER);
  if (!value) return null;
  const prefix = `${token} `;
  return value.startsWith(prefix) ? value.slice(prefix.length) : null;
}

/** The client address of a request, by the rules in the header comment. */
export function clientAddress(headers: Headers, hops = trustProxyHops()): string {
  const forwarded = (headers.get("x-forwarded-for") ?? "")
    .split(",")
    .map((s) => normaliseAddress(s))
    .filter(Boolean);
  const hook = g.__runledgerPeerHook;
  let chain: string[];
  if (hook) {
    const peer = peerOf(headers, hook.token);
    if (peer === null) return "unknown";
    // Next.js fills an absent X-Forwarded-For with the socket's address: then the header adds nothing.
    const added = forwarded.length === 1 && forwarded[0] === peer ? [] : forwarded;
    chain = [...added, peer];
  } else {
    if (process.env.NEXT_RUNTIME && !g.__runledgerPeerHookWarned) {
      g.__runledgerPeerHookWarned = true;
      console.error('[runledger] the client-address hook is not installed (instrumentation.ts): client addresses read as "unknown"');
    }
    if (process.env.NEXT_RUNTIME) return "unknown";
    chain = forwarded;
  }
  if (chain.length === 0) return "unknown";
  return chain[Math.max(0, chain.length - 1 - hops)]!;
}
