/**
 * What a person should know about a split's class balance before trusting a model trained on it: a class with no
 * rows in a partition. A random split of a small or unbalanced dataset can leave a class out of train (the model
 * never learns it), validation (validation metrics and early stopping say nothing about it) or test (nor do the test
 * metrics); a stratified split gives every partition each class, or refuses. Shown beside the split on the dataset
 * and run pages. Pure: reads the split's manifest only.
 */
export type PartitionBalance = { count: number; classBalance?: Record<string, number> | null };

const CONSEQUENCE: Record<string, string> = {
  train: "a model trained on this split never learns it",
  validation: "validation metrics, and early stopping on them, say nothing about it",
  test: "test metrics say nothing about it",
};

/** One sentence per partition that has rows but lacks a class; [] for a regression split (no class balance). */
export function splitClassWarnings(partitions: Record<string, PartitionBalance> | undefined): string[] {
  const out: string[] = [];
  for (const name of ["train", "validation", "test"]) {
    const p = partitions?.[name];
    if (!p || p.count === 0 || !p.classBalance) continue;
    const missing = Object.entries(p.classBalance)
      .filter(([, n]) => n === 0)
      .map(([c]) => `'${c}'`);
    if (missing.length === 0) continue;
    const which = missing.length === 1 ? `class ${missing[0]} has` : `classes ${missing.join(", ")} have`;
    out.push(`${which[0]!.toUpperCase()}${which.slice(1)} no rows in ${name}: ${CONSEQUENCE[name]}.`);
  }
  return out;
}
