import { splitClassWarnings, type PartitionBalance } from "./split-warnings";

/** A split's class-balance warnings (split-warnings.ts) as a note beside it; nothing when there is none. */
export function SplitWarnings({ partitions, label }: { partitions: Record<string, PartitionBalance> | undefined; label: string }) {
  const warnings = splitClassWarnings(partitions);
  if (warnings.length === 0) return null;
  return (
    <div role="note" aria-label={label} className="warn-note">
      {warnings.map((w) => (
        <p key={w}>{w}</p>
      ))}
    </div>
  );
}
