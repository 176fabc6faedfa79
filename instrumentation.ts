/**
 * Next.js start-up hook (runs once per server process, before requests are handled). In the Node.js runtime it
 * installs the client-address hook (server/http/client-address.ts): the socket's address for every request, which
 * route handlers cannot otherwise see, and the check of RUNLEDGER_TRUST_PROXY (a bad value stops the start).
 */
export async function register(): Promise<void> {
  if (process.env.NEXT_RUNTIME !== "nodejs") return;
  const { installPeerAddressHook } = await import("./server/http/client-address");
  installPeerAddressHook();
}
