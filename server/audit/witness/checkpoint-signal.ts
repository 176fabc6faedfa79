/**
 * "A checkpoint was just signed": a tiny in-process signal from createAuditCheckpoint (checkpoints.ts) to the
 * witness pusher, so the push starts right away instead of on the next timer tick.
 * Invariants: listeners run synchronously inside the signing call and must only schedule work (setImmediate);
 * a listener's exception never reaches the signer. Checkpoints signed by another process are picked up by the
 * pusher's timer instead. One listener set per process (globalThis), whichever bundle copy of this module runs.
 */
type Listener = () => void;
// On globalThis: Next.js bundles this module once per route and once for instrumentation.ts (which starts the
// pusher), so a module-level set would not hear checkpoints signed by the routes' copies.
const g = globalThis as unknown as { __runledgerCheckpointListeners?: Set<Listener> };
const listeners: Set<Listener> = (g.__runledgerCheckpointListeners ??= new Set<Listener>());

export function onAuditCheckpointSigned(listener: Listener): () => void {
  listeners.add(listener);
  return () => listeners.delete(listener);
}

export function announceAuditCheckpointSigned(): void {
  for (const l of listeners) {
    try {
      l();
    } catch (err) {
      console.error(`checkpoint listener failed: ${(err as Error).message}`);
    }
  }
}
