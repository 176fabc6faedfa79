/**
 * The fields the runs query language knows, shared by the filter parser, sorting, grouping and the
 * column chooser. Field names map to fixed SQL in filter-sql.ts / runs-search.ts (a whitelist);
 * param paths and metric keys are data, always bound as values, never spliced into SQL.
 *
 * Fields:
 *   params.<path>           a flattened config path, e.g. params.training.learningRate, params.model.layers.0.units
 *   metrics.<key>           the metric's last value; metrics.<key>.min / .max / .last for its summary
 *   name, status, author (user name or email), tag (alias tags), experiment (name, or id when compared
 *   with a number), created, finished (ISO dates), id
 *
 * Parameter aliases (usable as params.<alias> or bare, case-insensitive):
 *   optimizer → training.optimizer.name      learningRate, lr → training.learningRate
 *   batchSize → training.batchSize           epochs → training.epochs
 *   seed → training.seed                     dataset → data.dataset.builtin
 */

export const PARAM_ALIASES: Readonly<Record<string, string>> = {
  optimizer: "training.optimizer.name",
  learningrate: "training.learningRate",
  lr: "training.learningRate",
  batchsize: "training.batchSize",
  epochs: "training.epochs",
  seed: "training.seed",
  dataset: "data.dataset.builtin",
};

/** Aliases as users write them (for documentation and suggestions). */
export const PARAM_ALIAS_NAMES = ["optimizer", "learningRate", "lr", "batchSize", "epochs", "seed", "dataset"] as const;

export const PLAIN_FIELDS = ["name", "status", "author", "tag", "experiment", "created", "finished", "id"] as const;
export type PlainField = (typeof PLAIN_FIELDS)[number];

export const METRIC_STATS = ["last", "min", "max"] as const;
export type MetricStat = (typeof METRIC_STATS)[number];

export type FieldRef = { kind: "param"; path: string } | { kind: "metric"; key: string; stat: MetricStat } | { kind: PlainField };

/** The canonical spelling of a field: "params.training.learningRate", "metrics.loss.min", "status". */
export function fieldLabel(f: FieldRef): string {
  if (f.kind === "param") return `params.${f.path}`;
  if (f.kind === "metric") return f.stat === "last" ? `metrics.${f.key}` : `metrics.${f.key}.${f.stat}`;
  return f.kind;
}

/** On failure, `message` is the main clause ("unknown field 'x'") and `hint` the advice that follows it. */
export type FieldResolution = { ok: true; field: FieldRef } | { ok: false; message: string; hint?: string };

/** Resolves a field name as written (aliases, case-insensitive prefixes) or explains what is wrong with it. */
export function resolveFieldName(text: string): FieldResolution {
  const lower = text.toLowerCase();
  if (lower.startsWith("params.") || lower === "params") {
    const rest = text.slice("params.".length);
    if (!rest) return { ok: false, message: "expected a config path after 'params.'", hint: "e.g. params.training.learningRate" };
    return { ok: true, field: { kind: "param", path: PARAM_ALIASES[rest.toLowerCase()] ?? rest } };
  }
  if (lower.startsWith("metrics.") || lower === "metrics") {
    const rest = text.slice("metrics.".length);
    if (!rest) return { ok: false, message: "expected a metric key after 'metrics.'", hint: "e.g. metrics.val_accuracy" };
    const dot = rest.lastIndexOf(".");
    const stat = dot > 0 ? rest.slice(dot + 1).toLowerCase() : "";
    if ((METRIC_STATS as readonly string[]).includes(stat))
      return { ok: true, field: { kind: "metric", key: rest.slice(0, dot), stat: stat as MetricStat } };
    return { ok: true, field: { kind: "metric", key: rest, stat: "last" } };
  }
  if (lower === "tags") return { ok: true, field: { kind: "tag" } };
  if ((PLAIN_FIELDS as readonly string[]).includes(lower)) return { ok: true, field: { kind: lower as PlainField } };
  const aliased = PARAM_ALIASES[lower];
  if (aliased) return { ok: true, field: { kind: "param", path: aliased } };
  const suggestion = suggestField(text);
  return {
    ok: false,
    message: `unknown field '${text}'`,
    hint: suggestion ? `did you mean '${suggestion}'?` : `fields are params.<path>, metrics.<key>[.min|.max], ${PLAIN_FIELDS.join(", ")}`,
  };
}

/** The closest known field to a misspelt one, or null when nothing is close. */
function suggestField(text: string): string | null {
  const dot = text.indexOf(".");
  if (dot > 0) {
    // "metric.acc", "param.lr": the prefix is misspelt, the rest is data we cannot check.
    const head = text.slice(0, dot).toLowerCase();
    const best = closest(head, ["params", "metrics"]);
    if (best) return `${best}${text.slice(dot)}`;
  }
  return closest(text.toLowerCase(), [...PLAIN_FIELDS, "tags", ...PARAM_ALIAS_NAMES.map((a) => a.toLowerCase())], (c) => {
    const alias = PARAM_ALIAS_NAMES.find((a) => a.toLowerCase() === c);
    return alias ? `params.${alias}` : c;
  });
}

function closest(word: string, candidates: readonly string[], present: (c: string) => string = (c) => c): string | null {
  let best: string | null = null;
  let bestDistance = Infinity;
  for (const c of candidates) {
    const d = editDistance(word, c);
    if (d < bestDistance) [best, bestDistance] = [c, d];
  }
  const tolerance = word.length <= 4 ? 1 : 2;
  return best !== null && bestDistance <= tolerance ? present(best) : null;
}

/** Levenshtein distance (small inputs: field names). */
function editDistance(a: string, b: string): number {
  let prev = Array.from({ length: b.length + 1 }, (_, j) => j);
  for (let i = 1; i <= a.length; i++) {
    const row = [i];
    for (let j = 1; j <= b.length; j++) {
      row[j] = Math.min((prev[j] ?? 0) + 1, (row[j - 1] ?? 0) + 1, (prev[j - 1] ?? 0) + (a[i - 1] === b[j - 1] ? 0 : 1));
    }
    prev = row;
  }
  return prev[b.length] ?? 0;
}
