/**
 * A count with its noun, singular for exactly one ("1 event", "4 events"), for messages the server and the CLI
 * compose (verification notes, refusals, worker logs); digits as JSON prints them, so counts and seqs read alike.
 * The app's formatCountOf groups thousands for people reading tables.
 */
export function countOf(n: number, singular: string, plural = `${singular}s`): string {
  return `${n} ${n === 1 ? singular : plural}`;
}
