/**
 * Independent reads of one explorer call, sent the way each store is fastest (issue 16, compare_20_runs_ms_pg).
 *
 * Invariants:
 * - Results come back in the order of the reads, whatever order they finish in.
 * - On PostgreSQL all reads are started before one await: the pool spreads them over its connections, and
 *   downsample.ts's series statements started together go out as one batched statement (series-batch-pg.ts). A read
 *   that fails rejects the whole call (the others still run to their end).
 * - On SQLite they run one after another, each awaited in turn, exactly as the code read before: its calls are
 *   in-process and synchronous, so concurrency gains nothing there.
 * - The reads must not depend on each other's results.
 */
import type { ExploreStore } from "./store";

export async function together<T extends unknown[]>(store: ExploreStore, ...reads: { [K in keyof T]: () => Promise<T[K]> }): Promise<T> {
  if (store.dialect === "pg") return (await Promise.all(reads.map((read) => read()))) as T;
  const out: unknown[] = [];
  for (const read of reads) out.push(await read());
  return out as T;
}

/** `together` over a list: `read(item)` for each item, results in the items' order. */
export function eachTogether<I, R>(store: ExploreStore, items: readonly I[], read: (item: I) => Promise<R>): Promise<R[]> {
  return together<R[]>(store, ...items.map((item) => () => read(item)));
}
