/**
 * Seeded randomness for the data pipeline: mulberry32 and a Fisher-Yates shuffle.
 *
 * Invariant: the same seed always yields the same sequence on every platform (32-bit integer arithmetic
 * only via Math.imul and >>> 0). Nothing in trainer/data may use Math.random.
 */

/** A generator of floats in [0, 1) from a 32-bit seed (mulberry32, public domain, by Tommy Ettinger). */
export function mulberry32(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

/** Shuffles `items` in place with Fisher-Yates driven by `random`, and returns it. */
export function shuffleInPlace<T>(items: T[], random: () => number): T[] {
  for (let i = items.length - 1; i > 0; i--) {
    const j = Math.floor(random() * (i + 1));
    const tmp = items[i]!;
    items[i] = items[j]!;
    items[j] = tmp;
  }
  return items;
}
