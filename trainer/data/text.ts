/**
 * Text encoding for the text datasets: word tokenisation, a vocabulary built from the train partition,
 * and fixed-length integer sequences.
 *
 * Invariants:
 * - Token ids: 0 = padding, 1 = out-of-vocabulary, 2.. = vocabulary words ordered by train frequency
 *   (descending), then alphabetically (code-point order), so the same train texts always give the same ids.
 * - The vocabulary and the sequence length come from train texts only.
 * - Sequences are truncated at the end and padded at the end with 0, to exactly `sequenceLength` ids.
 */
import { sha256Canonical } from "@/contracts/canonical";

export const PAD_ID = 0;
export const OOV_ID = 1;
export const MAX_SEQUENCE_LENGTH = 32;
export const MAX_VOCABULARY_WORDS = 20_000;

export type Vocabulary = { words: string[]; ids: Map<string, number>; size: number; sha256: string };

/** Lowercase words: runs of letters/digits, keeping inner apostrophes ("don't"). */
export function tokenize(text: string): string[] {
  return text.toLowerCase().match(/[\p{L}\p{N}]+(?:['’][\p{L}\p{N}]+)*/gu) ?? [];
}

export function buildVocabulary(trainTokens: readonly (readonly string[])[], maxWords = MAX_VOCABULARY_WORDS): Vocabulary {
  const counts = new Map<string, number>();
  for (const tokens of trainTokens) for (const t of tokens) counts.set(t, (counts.get(t) ?? 0) + 1);
  const words = [...counts.entries()]
    .sort((a, b) => b[1] - a[1] || (a[0] < b[0] ? -1 : a[0] > b[0] ? 1 : 0))
    .slice(0, maxWords)
    .map(([w]) => w);
  const ids = new Map(words.map((w, i) => [w, i + 2]));
  return { words, ids, size: words.length + 2, sha256: sha256Canonical(words) };
}

/** 95th percentile (nearest rank) of the train lengths, at least 1 and at most MAX_SEQUENCE_LENGTH. */
export function chooseSequenceLength(trainTokens: readonly (readonly string[])[], cap = MAX_SEQUENCE_LENGTH): number {
  if (trainTokens.length === 0) return 1;
  const lengths = trainTokens.map((t) => t.length).sort((a, b) => a - b);
  const p95 = lengths[Math.ceil(0.95 * lengths.length) - 1]!;
  return Math.min(cap, Math.max(1, p95));
}

export function encodeTokens(tokens: readonly string[], vocabulary: Pick<Vocabulary, "ids">, sequenceLength: number): number[] {
  const out = new Array<number>(sequenceLength).fill(PAD_ID);
  for (let i = 0; i < Math.min(tokens.length, sequenceLength); i++) out[i] = vocabulary.ids.get(tokens[i]!) ?? OOV_ID;
  return out;
}
