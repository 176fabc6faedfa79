/**
 * Next.js start-up hook (runs once per server process, before requests are handled). In the Node.js runtime it
 * installs the client-address hook (server/http/client-address.ts): the socket's address for every request, which
 * route handlers cannot otherwise see, and the check of RUNLEDGER_TRUST_PROXY (a bad value stops the start).
 * Then it starts the app's long-lived services (server/app-context/boot-services.ts: the checkpoint timer and the witness
 * pusher), so a server that receives no request still signs due checkpoints and pushes them to its witnesses.
 * Not during `next build` (NEXT_PHASE), and once per process (getAppServices keeps them on globalThis).
 */
export async function register(): Promise<void> {
  if (process.env.NEXT_RUNTIME !== "nodejs") return;
  const { installPeerAddressHook } = await import("./server/http/client-address");
  installPeerAddressHook();
  const { startServicesAtBoot } = await import("./server/app-context/boot-services");
  await startServicesAtBoot();
}
