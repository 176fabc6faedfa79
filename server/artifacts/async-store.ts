/**
 * The artifact store's interface for the PostgreSQL store (issue 16): the same verbs and guarantees as
 * `ArtifactStore` (store.ts), awaited, because a store in PostgreSQL answers over the network. Two implementations:
 * `asyncFileArtifactStore` (the file store, the default: content-addressed files under the data directory, or a
 * directory every machine of a cluster mounts) and `pgArtifactStore` (pg-store.ts: chunks in PostgreSQL itself,
 * so a cluster needs nothing but PostgreSQL). The services still take the synchronous `ArtifactStore`; they move to
 * this interface with the store port (ARCHITECTURE.md, "The PostgreSQL store").
 *
 * Invariants (both implementations): an artifact is named by the SHA-256 of its bytes; a write is all or nothing
 * (no reader sees a partial artifact); every `get` re-hashes the bytes and throws ArtifactIntegrityError when they
 * do not hash to the name; `readPrefix` (a bounded read for previews) is the one read that cannot be checked; `list`
 * gives every artifact once, in name order.
 */
import fs from "node:fs";
import path from "node:path";
import { artifactsRoot } from "@/contracts/artifact-layout";
import { fileArtifactStore, type ArtifactPrefix, type ArtifactStore } from "./store";

export type StoredArtifact = { sha256: string; bytes: number };

export interface AsyncArtifactStore {
  /** "file" (the data directory's files) or "postgres" (pg-store.ts). */
  readonly kind: "file" | "postgres";
  put(bytes: Uint8Array): Promise<StoredArtifact>;
  /** As ArtifactStore.putFile: moves the file in under `sha256` (the PostgreSQL store re-hashes it while copying). */
  putFile(file: string, sha256: string): Promise<StoredArtifact>;
  get(sha256: string): Promise<Uint8Array>;
  /** As ArtifactStore.readPrefix: at most `maxBytes` from the start, without reading the rest; not hash-checked. */
  readPrefix(sha256: string, maxBytes: number): Promise<ArtifactPrefix>;
  has(sha256: string): Promise<boolean>;
  /** Every artifact with its size, in sha256 order. */
  list(): AsyncIterable<StoredArtifact>;
}

/** The file store's artifacts (name and size), sorted by name; temp files and anything else are skipped. */
export function listFileArtifacts(dataDir: string): StoredArtifact[] {
  const root = artifactsRoot(dataDir);
  if (!fs.existsSync(root)) return [];
  const out: StoredArtifact[] = [];
  for (const shard of fs.readdirSync(root, { withFileTypes: true })) {
    if (!shard.isDirectory() || !/^[0-9a-f]{2}$/.test(shard.name)) continue;
    for (const f of fs.readdirSync(path.join(root, shard.name), { withFileTypes: true })) {
      if (f.isFile() && /^[0-9a-f]{64}$/.test(f.name) && f.name.startsWith(shard.name))
        out.push({ sha256: f.name, bytes: fs.statSync(path.join(root, shard.name, f.name)).size });
    }
  }
  return out.sort((a, b) => (a.sha256 < b.sha256 ? -1 : a.sha256 > b.sha256 ? 1 : 0));
}

/** The file store (store.ts) behind the awaited interface. */
export function asyncFileArtifactStore(dataDir: string): AsyncArtifactStore {
  const files = fileArtifactStore(dataDir);
  return {
    kind: "file",
    put: async (bytes) => files.put(bytes),
    putFile: async (file, sha256) => files.putFile(file, sha256),
    get: async (sha256) => files.get(sha256),
    readPrefix: async (sha256, maxBytes) => files.readPrefix(sha256, maxBytes),
    has: async (sha256) => files.has(sha256),
    async *list() {
      yield* listFileArtifacts(dataDir);
    },
  };
}

/**
 * Either artifact store, for code that runs on both stores (issue 16): SQLite's callers still pass the synchronous
 * file store, PostgreSQL's an AsyncArtifactStore. `awaitedArtifacts` gives the awaited verbs of either.
 */
export type AnyArtifactStore = ArtifactStore | AsyncArtifactStore;
export type AwaitedArtifacts = Pick<AsyncArtifactStore, "put" | "putFile" | "get" | "readPrefix" | "has">;

export function awaitedArtifacts(store: AnyArtifactStore): AwaitedArtifacts {
  if ("kind" in store) return store;
  return {
    put: async (bytes) => store.put(bytes),
    putFile: async (file, sha256) => store.putFile(file, sha256),
    get: async (sha256) => store.get(sha256),
    readPrefix: async (sha256, maxBytes) => store.readPrefix(sha256, maxBytes),
    has: async (sha256) => store.has(sha256),
  };
}
