/**
 * Progress of CSV uploads being received and checked, for the upload form to poll (datasets.uploadProgress).
 * Kept in memory on globalThis (one per server process: Next.js may load this module once per route bundle),
 * keyed by the uploader's user id and an id the browser chose, so nobody reads another user's progress.
 * Invariants: at most MAX_ENTRIES entries (oldest dropped first); finished entries expire after KEEP_MS.
 */
export type UploadPhase = "receiving" | "checking" | "registering" | "done" | "failed";
export type UploadProgress = {
  phase: UploadPhase;
  receivedBytes: number;
  totalBytes: number | null;
  checkedBytes: number;
  rows: number;
  message: string | null;
  updatedAt: number;
};

const MAX_ENTRIES = 200;
const KEEP_MS = 5 * 60 * 1000;

const g = globalThis as unknown as { __runledgerUploadProgress?: Map<string, UploadProgress> };
const entries = (g.__runledgerUploadProgress ??= new Map());

const keyOf = (userId: number, uploadId: string) => `${userId}:${uploadId}`;

export function reportUploadProgress(userId: number, uploadId: string | null, patch: Partial<Omit<UploadProgress, "updatedAt">>): void {
  if (!uploadId) return;
  const key = keyOf(userId, uploadId);
  const previous = entries.get(key) ?? {
    phase: "receiving",
    receivedBytes: 0,
    totalBytes: null,
    checkedBytes: 0,
    rows: 0,
    message: null,
    updatedAt: 0,
  };
  entries.delete(key); // re-insert: Map order is then oldest-updated first
  entries.set(key, { ...previous, ...patch, updatedAt: Date.now() });
  const cutoff = Date.now() - KEEP_MS;
  for (const [k, v] of entries) {
    if (entries.size <= MAX_ENTRIES && v.updatedAt >= cutoff) break;
    entries.delete(k);
  }
}

export function readUploadProgress(userId: number, uploadId: string): UploadProgress | null {
  return entries.get(keyOf(userId, uploadId)) ?? null;
}
