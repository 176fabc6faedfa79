/**
 * A hyperparameter sweep's spec (issue 17): a base training config, a search space over config paths, the method
 * (grid, random, TPE), the budget, the metric and its direction, early termination (ASHA), the seed and the
 * rationale. One zod schema shared by the tRPC input, the CLI file and the sweep page.
 *
 * Invariants:
 * - A spec is accepted only when every value its space can produce gives a config the run config schema accepts
 *   (rangeValuesToCheck: every choice; a grid's every point a trial can reach; a random or TPE range's whole domain:
 *   each step of an int range, a float range's ends as drawn and a value between them that is not a whole number):
 *   an invalid space is refused with a message naming the path and the value ("space.model.layers.0.units: the
 *   uniform range draws values between its ends such as 26.9…, which give an invalid config (… whole number)"),
 *   before anything is written.
 * - Trial configs are a pure function of (spec, trial index) for grid and random, and of (spec, trial index, the
 *   results of earlier trials, in trial order) for TPE: same spec + same seed → same trial configs. Randomness
 *   comes only from the seeded mulberry32 generator below, never from Math.random.
 * This module holds only zod schemas and pure helpers (browser code may import it).
 */
import { z } from "zod";
import { canonicalJson, sha256Canonical } from "./canonical";
import { describeConfigIssues, trainingConfigSchema, type TrainingConfig } from "./training-config";
import { validateSchedule } from "./pilot-config";

export const SWEEP_METHODS = ["grid", "random", "tpe"] as const;

const finite = (what: string) => z.number({ error: `${what} must be a number` }).finite(`${what} must be finite`);

export const sweepParamSchema = z.discriminatedUnion(
  "type",
  [
    z
      .object({
        type: z.literal("uniform"),
        min: finite("min"),
        max: finite("max"),
        gridPoints: z.number().int().min(2).max(50).optional(),
      })
      .strict(),
    z
      .object({
        type: z.literal("logUniform"),
        min: finite("min"),
        max: finite("max"),
        gridPoints: z.number().int().min(2).max(50).optional(),
      })
      .strict(),
    z
      .object({
        type: z.literal("int"),
        min: z.number().int("min must be a whole number"),
        max: z.number().int("max must be a whole number"),
        step: z.number().int().positive("step must be ≥ 1").default(1),
      })
      .strict(),
    z
      .object({
        type: z.literal("choice"),
        values: z.array(z.unknown()).min(1, "choice needs at least one value").max(100, "at most 100 choices"),
      })
      .strict(),
  ],
  { error: "each search-space entry needs type uniform, logUniform, int or choice" },
);
export type SweepParam = z.output<typeof sweepParamSchema>;

export const sweepSpecSchema = z
  .object({
    name: z.string().trim().max(120).optional(),
    /** The config every trial starts from; each space path is set on it. */
    base: z.unknown(),
    /** Config path (dotted, arrays by index: "model.layers.0.units") → its range or choices. */
    space: z.record(z.string(), sweepParamSchema).refine((s) => Object.keys(s).length > 0, "the search space names at least one path"),
    method: z.enum(SWEEP_METHODS, { error: `method must be one of ${SWEEP_METHODS.join(", ")}` }),
    budget: z
      .object({
        maxTrials: z.number().int().min(1, "maxTrials must be at least 1").max(1000, "maxTrials must be ≤ 1000"),
        maxParallel: z.number().int().min(1, "maxParallel must be at least 1").max(32, "maxParallel must be ≤ 32").default(1),
      })
      .strict(),
    /** An epoch metric the trainer reports ("val_accuracy", "val_loss", …); a trial's value is its best epoch value. */
    metric: z.object({ name: z.string().trim().min(1, "metric.name is required"), direction: z.enum(["minimize", "maximize"]) }).strict(),
    /**
     * ASHA: at each rung (an epoch count), a trial whose metric at that epoch is not in the top 1/eta of the trials
     * that reached the rung is stopped (a recorded machine decision, sweep.stopTrial).
     */
    earlyTermination: z
      .object({
        type: z.literal("asha"),
        rungs: z.array(z.number().int().positive("a rung is an epoch ≥ 1")).min(1, "name at least one rung (epoch)").max(20),
        eta: z.number().int().min(2, "eta must be ≥ 2").max(10).default(3),
      })
      .strict()
      .nullable()
      .default(null),
    tpe: z
      .object({
        startupTrials: z.number().int().min(1).max(100).default(4),
        gamma: z.number().gt(0).lt(1).default(0.25),
        candidates: z.number().int().min(1).max(1000).default(24),
      })
      .strict()
      .default({ startupTrials: 4, gamma: 0.25, candidates: 24 }),
    seed: z
      .number()
      .int("seed must be a whole number")
      .min(0)
      .max(2 ** 31 - 1),
    rationale: z.string().trim().min(1, "a rationale is required: say why this search").max(4000),
  })
  .strict();
export type SweepSpecInput = z.input<typeof sweepSpecSchema>;
export type SweepSpec = z.output<typeof sweepSpecSchema> & { base: TrainingConfig };

/** Arrays by index, objects by key: the value at a dotted path, or undefined. */
export function getPath(value: unknown, path: string): unknown {
  let v = value;
  for (const k of path.split(".")) {
    if (v === null || typeof v !== "object") return undefined;
    v = Array.isArray(v) ? v[Number(k)] : (v as Record<string, unknown>)[k];
  }
  return v;
}

/** A copy with `v` at `path`; arrays stay arrays (an index past the end is refused by the caller's validation). */
export function setPath<T>(value: T, path: string, v: unknown): T {
  const [head, ...rest] = path.split(".") as [string, ...string[]];
  const next = (cur: unknown) => (rest.length === 0 ? v : setPath(cur ?? {}, rest.join("."), v));
  if (Array.isArray(value)) {
    const i = Number(head);
    const copy = [...(value as unknown[])];
    copy[i] = next(copy[i]);
    return copy as T;
  }
  const obj = (value ?? {}) as Record<string, unknown>;
  return { ...obj, [head]: next(obj[head]) } as T;
}

function configOrMessage(config: unknown): { ok: true; config: TrainingConfig } | { ok: false; message: string } {
  const r = trainingConfigSchema.safeParse(config);
  if (!r.success) return { ok: false, message: describeConfigIssues(r.error) };
  const s = validateSchedule(r.data);
  if (!s.ok) return { ok: false, message: s.message };
  return { ok: true, config: r.data };
}

/** Grid points of one parameter (floats need gridPoints). */
export function gridValues(p: SweepParam): unknown[] {
  switch (p.type) {
    case "choice":
      return p.values;
    case "int": {
      const out: number[] = [];
      for (let x = p.min; x <= p.max; x += p.step) out.push(x);
      return out;
    }
    case "uniform":
    case "logUniform": {
      const n = p.gridPoints ?? 0;
      const lo = p.type === "logUniform" ? Math.log(p.min) : p.min;
      const hi = p.type === "logUniform" ? Math.log(p.max) : p.max;
      return Array.from({ length: n }, (_, i) => {
        const t = lo + ((hi - lo) * i) / (n - 1);
        return p.type === "logUniform" ? Math.exp(t) : t;
      });
    }
  }
}

/** How many grid points a parameter has, without listing them (an int range may be long). */
function gridLength(p: SweepParam): number {
  switch (p.type) {
    case "choice":
      return p.values.length;
    case "int":
      return p.max < p.min ? 0 : Math.floor((p.max - p.min) / p.step) + 1;
    case "uniform":
    case "logUniform":
      return p.gridPoints ?? 0;
  }
}

/** The most trials a sweep ever has (budget.maxTrials, also after addTrials): grid points past it are never reached. */
const MAX_TRIALS = 1000;
/** Beyond this many steps, an int range of a random or TPE search is checked at its first, last and a few steps. */
const MAX_INT_STEPS_CHECKED = 1000;
/** The largest value mulberry32 returns, (2^32 − 1) / 2^32: the top of what a random draw reaches. */
const TOP_DRAW = 1 - 2 ** -32;

/** A value a range draws between its ends that is not a whole number (when it draws one): where the draws start. */
function nonWholeDraw(p: SweepParam & { type: "uniform" | "logUniform" }): number | null {
  for (const u of [0.381966011250105, 0.618033988749895, 0.5, 0.25, 0.125]) {
    const v = sampleParam(p, u) as number;
    if (!Number.isInteger(v)) return v;
  }
  return null;
}

type ValueToCheck = { value: unknown; what: "value" | "between" };

/**
 * The values one space entry puts at its path, for parseSweepSpec to try against the config schema. Choices: each.
 * Grid: each of its grid values that one of the first MAX_TRIALS grid points uses (`stride`: the number of points
 * between two of its values, the product of the grid lengths of the paths after it in sorted order). Random and TPE:
 * the whole domain: an int range's every step (its first and last and a few between when it has more than
 * MAX_INT_STEPS_CHECKED) and, for TPE, its max (TPE clamps to it); a float range's ends (TPE clamps to them), its
 * lowest and highest random draws (a log scale's exp(log(min)) may differ from min) and a draw between the ends that
 * is not a whole number (a path taking whole numbers only refuses it). The schema's number rules are ranges and
 * whole-number checks, so these values stand for all the others.
 */
function rangeValuesToCheck(p: SweepParam, method: (typeof SWEEP_METHODS)[number], stride: number): ValueToCheck[] {
  const each = (values: unknown[]) => values.map((value): ValueToCheck => ({ value, what: "value" }));
  if (p.type === "choice") return each(p.values);
  if (method === "grid") {
    const reached = Math.min(gridLength(p), Math.floor((MAX_TRIALS - 1) / stride) + 1);
    if (p.type === "int") return each(Array.from({ length: reached }, (_, i) => p.min + i * p.step));
    return each(gridValues(p).slice(0, reached));
  }
  if (p.type === "int") {
    const n = gridLength(p);
    const steps =
      n <= MAX_INT_STEPS_CHECKED
        ? Array.from({ length: n }, (_, i) => i)
        : [0, 1, Math.floor(n / 4), Math.floor(n / 2), Math.floor((3 * n) / 4), n - 2, n - 1];
    return each([...steps.map((i) => p.min + i * p.step), ...(method === "tpe" ? [p.max] : [])]);
  }
  const between = nonWholeDraw(p);
  const drawnEnds = [sampleParam(p, 0), sampleParam(p, TOP_DRAW)].filter((v) => v !== p.min && v !== p.max);
  return [
    ...each([p.min, p.max]),
    ...(between === null ? [] : [{ value: between, what: "between" as const }]),
    ...each([...new Set(drawnEnds)]),
  ];
}

export type ParsedSweepSpec = { ok: true; spec: SweepSpec; specSha256: string; gridSize: number | null } | { ok: false; message: string };

/**
 * Validates a spec: its shape, each range, each path against the base config, and every value the space can produce
 * against the run config schema. Messages name the path at fault; several are joined with "; ".
 */
export function parseSweepSpec(input: unknown): ParsedSweepSpec {
  const r = sweepSpecSchema.safeParse(input);
  if (!r.success) return { ok: false, message: describeConfigIssues(r.error) };
  const raw = r.data;
  const base = configOrMessage(raw.base);
  if (!base.ok) return { ok: false, message: `base: ${base.message}` };
  const problems: string[] = [];
  for (const [path, p] of Object.entries(raw.space)) {
    const at = `space.${path}`;
    if (!/^[A-Za-z0-9_]+(\.[A-Za-z0-9_]+)*$/.test(path)) {
      problems.push(`${at}: not a config path (dotted names, array items by index: model.layers.0.units)`);
      continue;
    }
    // Walk the base config: every step but the last must exist (an array index within its length).
    const keys = path.split(".");
    let cur: unknown = base.config;
    let walkProblem: string | null = null;
    for (let i = 0; i < keys.length; i++) {
      const here = keys.slice(0, i).join(".") || "the config";
      if (Array.isArray(cur)) {
        const k = Number(keys[i]);
        if (!Number.isInteger(k) || k >= cur.length) {
          walkProblem = `index ${keys[i]} is past the end of ${here} (${cur.length} items)`;
          break;
        }
        cur = cur[k];
      } else if (cur !== null && typeof cur === "object") {
        cur = (cur as Record<string, unknown>)[keys[i]!];
      } else {
        walkProblem = `the base config has no object at ${here} to set ${keys.slice(i).join(".")} in`;
        break;
      }
    }
    if (walkProblem) {
      problems.push(`${at}: ${walkProblem}`);
      continue;
    }
    if (p.type === "uniform" || p.type === "logUniform" || p.type === "int") {
      if (!(p.min < p.max) && !(p.type === "int" && p.min === p.max)) {
        problems.push(`${at}: min must be < max`);
        continue;
      }
      if (p.type === "logUniform" && p.min <= 0) {
        problems.push(`${at}: min must be > 0 for log scale`);
        continue;
      }
      if (raw.method === "grid" && p.type !== "int" && p.gridPoints === undefined) {
        problems.push(`${at}: a ${p.type} range needs gridPoints for a grid search`);
        continue;
      }
    }
    const stride = Object.keys(raw.space)
      .sort()
      .filter((other) => other > path)
      .reduce((n, other) => n * Math.max(1, gridLength(raw.space[other]!)), 1);
    for (const { value, what } of rangeValuesToCheck(p, raw.method, stride)) {
      const c = configOrMessage(setPath(base.config, path, value));
      if (!c.ok) {
        const shown = canonicalJson(value);
        problems.push(
          what === "between"
            ? `${at}: the ${p.type} range draws values between its ends such as ${shown}, which give an invalid config (${c.message})` +
                (/whole number/.test(c.message) ? `; use type "int" for whole numbers` : "")
            : `${at}: the value ${shown} gives an invalid config (${c.message})`,
        );
        break;
      }
    }
  }
  if (raw.earlyTermination) {
    const rungs = raw.earlyTermination.rungs;
    if (rungs.some((x, i) => i > 0 && x <= rungs[i - 1]!))
      problems.push("earlyTermination.rungs: rungs must be strictly increasing epochs");
  }
  const gridSize =
    raw.method === "grid" && problems.length === 0 ? Object.values(raw.space).reduce((n, p) => n * gridValues(p).length, 1) : null;
  if (gridSize !== null && raw.budget.maxTrials > gridSize)
    problems.push(`budget.maxTrials: the grid has ${gridSize} point(s), so at most ${gridSize} trials (got ${raw.budget.maxTrials})`);
  if (problems.length) return { ok: false, message: problems.join("; ") };
  const spec = { ...raw, base: base.config } as SweepSpec;
  return { ok: true, spec, specSha256: sha256Canonical(spec), gridSize };
}

/**
 * mulberry32 (Tommy Ettinger's 32-bit generator, public domain): a small, well-known seeded PRNG, uniform in [0, 1).
 * Not cryptographic; used so that the same seed gives the same trials on every machine.
 */
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

/** A generator for one (seed, trial, purpose): independent of how many numbers earlier trials drew. */
function rngFor(seed: number, trial: number, salt: number): () => number {
  const r = mulberry32((seed ^ Math.imul(trial + 1, 0x9e3779b1) ^ Math.imul(salt + 1, 0x85ebca6b)) >>> 0);
  r(); // discard the first draw (weakly mixed for nearby seeds)
  return r;
}

function sampleParam(p: SweepParam, u: number): unknown {
  switch (p.type) {
    case "uniform":
      return p.min + u * (p.max - p.min);
    case "logUniform":
      return Math.exp(Math.log(p.min) + u * (Math.log(p.max) - Math.log(p.min)));
    case "int": {
      const n = Math.floor((p.max - p.min) / p.step) + 1;
      return p.min + Math.min(n - 1, Math.floor(u * n)) * p.step;
    }
    case "choice":
      return p.values[Math.min(p.values.length - 1, Math.floor(u * p.values.length))];
  }
}

/** An earlier trial as TPE sees it: its parameter values and its objective (best epoch value), when it has one. */
export type TrialObservation = { params: Record<string, unknown>; value: number };

// ---- TPE (Bergstra et al. 2011, independent per parameter, as Optuna's default TPESampler) ----

function erf(x: number): number {
  // Abramowitz & Stegun 7.1.26 (|error| < 1.5e-7).
  const s = Math.sign(x);
  const t = 1 / (1 + 0.3275911 * Math.abs(x));
  const y = 1 - ((((1.061405429 * t - 1.453152027) * t + 1.421413741) * t - 0.284496736) * t + 0.254829592) * t * Math.exp(-x * x);
  return s * y;
}
const normCdf = (x: number) => 0.5 * (1 + erf(x / Math.SQRT2));

/** A Parzen estimator over [lo, hi]: a truncated Gaussian per observation plus a uniform prior component. */
type Parzen = { mus: number[]; sigma: number; lo: number; hi: number };
function parzen(xs: number[], lo: number, hi: number): Parzen {
  const range = hi - lo || 1;
  // Scott-like bandwidth that shrinks with more observations, bounded below so the density never collapses.
  const sigma = Math.max(range / Math.min(100, 1 + xs.length), range * Math.pow(xs.length + 1, -1 / 5) * 0.5);
  return { mus: xs, sigma, lo, hi };
}
function parzenPdf(e: Parzen, x: number): number {
  const w = 1 / (e.mus.length + 1);
  let p = w / (e.hi - e.lo || 1); // prior: uniform
  for (const mu of e.mus) {
    const z = (x - mu) / e.sigma;
    const mass = normCdf((e.hi - mu) / e.sigma) - normCdf((e.lo - mu) / e.sigma) || 1e-12;
    p += (w * Math.exp(-0.5 * z * z)) / (e.sigma * Math.sqrt(2 * Math.PI) * mass);
  }
  return p;
}
function parzenSample(e: Parzen, rand: () => number): number {
  const k = Math.floor(rand() * (e.mus.length + 1));
  if (k >= e.mus.length) return e.lo + rand() * (e.hi - e.lo);
  for (let i = 0; i < 32; i++) {
    // Box–Muller, rejected until inside [lo, hi] (truncation).
    const u1 = Math.max(rand(), 1e-12);
    const x = e.mus[k]! + e.sigma * Math.sqrt(-2 * Math.log(u1)) * Math.cos(2 * Math.PI * rand());
    if (x >= e.lo && x <= e.hi) return x;
  }
  return Math.min(e.hi, Math.max(e.lo, e.mus[k]!));
}

/** One parameter's TPE suggestion: candidates drawn from l(x) (the good trials' density), the one with the largest l/g wins. */
function tpeParam(p: SweepParam, good: unknown[], bad: unknown[], candidates: number, rand: () => number): unknown {
  if (p.type === "choice") {
    const k = p.values.length;
    const key = (v: unknown) => canonicalJson(v);
    const idx = new Map(p.values.map((v, i) => [key(v), i]));
    const weights = (obs: unknown[]) => {
      const w = Array.from({ length: k }, () => 1 / k); // prior: one pseudo-observation spread evenly
      for (const o of obs) {
        const i = idx.get(key(o));
        if (i !== undefined) w[i]! += 1;
      }
      const total = w.reduce((a, b) => a + b, 0);
      return w.map((x) => x / total);
    };
    const l = weights(good);
    const g = weights(bad);
    let best = 0;
    let bestScore = -Infinity;
    for (let c = 0; c < candidates; c++) {
      let u = rand();
      let i = 0;
      while (i < k - 1 && u >= l[i]!) u -= l[i++]!;
      const score = Math.log(l[i]!) - Math.log(g[i]!);
      if (score > bestScore) [best, bestScore] = [i, score];
    }
    return p.values[best];
  }
  const log = p.type === "logUniform";
  const to = (v: number) => (log ? Math.log(v) : v);
  const from = (x: number) => (log ? Math.exp(x) : x);
  const lo = to(p.min) - (p.type === "int" ? 0.5 * p.step : 0);
  const hi = to(p.max) + (p.type === "int" ? 0.5 * p.step : 0);
  const l = parzen(
    good.map((v) => to(v as number)),
    lo,
    hi,
  );
  const g = parzen(
    bad.map((v) => to(v as number)),
    lo,
    hi,
  );
  let best = l.mus[0] ?? lo;
  let bestScore = -Infinity;
  for (let c = 0; c < candidates; c++) {
    const x = parzenSample(l, rand);
    const score = Math.log(parzenPdf(l, x)) - Math.log(parzenPdf(g, x));
    if (score > bestScore) [best, bestScore] = [x, score];
  }
  if (p.type === "int") {
    const n = Math.round((best - p.min) / p.step);
    return Math.min(p.max, Math.max(p.min, p.min + n * p.step));
  }
  return Math.min(p.max, Math.max(p.min, from(best)));
}

/**
 * The parameter values of trial `index` (0-based). Grid: the index-th point of the grid (paths in sorted order, the
 * last varying fastest). Random: independent draws of a generator seeded by (seed, index). TPE: random for the
 * first `startupTrials`; then, per parameter, the observations split at the gamma quantile into good and bad
 * (by the metric's direction), Parzen estimators l and g, and the candidate from l with the largest l(x)/g(x).
 */
export function suggestTrial(spec: SweepSpec, index: number, history: readonly TrialObservation[] = []): Record<string, unknown> {
  const paths = Object.keys(spec.space).sort();
  if (spec.method === "grid") {
    const out: Record<string, unknown> = {};
    let rest = index;
    for (const path of [...paths].reverse()) {
      const values = gridValues(spec.space[path]!);
      out[path] = values[rest % values.length];
      rest = Math.floor(rest / values.length);
    }
    return Object.fromEntries(paths.map((p) => [p, out[p]]));
  }
  const rand = rngFor(spec.seed, index, 0);
  if (spec.method === "random" || history.length < spec.tpe.startupTrials) {
    return Object.fromEntries(paths.map((path) => [path, sampleParam(spec.space[path]!, rand())]));
  }
  const sorted = [...history].sort((a, b) => (spec.metric.direction === "minimize" ? a.value - b.value : b.value - a.value));
  const nGood = Math.max(1, Math.ceil(spec.tpe.gamma * sorted.length));
  const good = sorted.slice(0, nGood);
  const bad = sorted.slice(nGood);
  const out: Record<string, unknown> = {};
  paths.forEach((path, i) => {
    const r = rngFor(spec.seed, index, i + 1);
    out[path] = tpeParam(
      spec.space[path]!,
      good.map((o) => o.params[path]),
      bad.map((o) => o.params[path]),
      spec.tpe.candidates,
      r,
    );
  });
  return out;
}

/** The trial's training config: the base with each suggested value set, parsed (defaults filled in). */
export function trialConfig(spec: SweepSpec, params: Record<string, unknown>, name?: string): TrainingConfig {
  let config: unknown = spec.base;
  for (const [path, v] of Object.entries(params)) config = setPath(config, path, v);
  if (name) config = { ...(config as object), name };
  const c = configOrMessage(config);
  if (!c.ok) throw new Error(`trial config is invalid: ${c.message}`);
  return c.config;
}

/**
 * ASHA's rule at one rung (as Optuna's SuccessiveHalvingPruner): among the values of the trials that reached the
 * rung (this one included), a trial continues when it is within the top floor(n/eta) (at least the best one while
 * fewer than eta trials have reached the rung). Returns whether it continues and the threshold it had to meet.
 */
export function ashaContinues(
  value: number,
  atRung: readonly number[],
  eta: number,
  direction: "minimize" | "maximize",
): { continues: boolean; threshold: number } {
  const sorted = [...atRung].sort((a, b) => (direction === "minimize" ? a - b : b - a));
  const k = Math.max(1, Math.floor(sorted.length / eta));
  const threshold = sorted[k - 1]!;
  return { continues: direction === "minimize" ? value <= threshold : value >= threshold, threshold };
}

/**
 * How much of the metric's spread each parameter accounts for, over the trials with a value: the trials grouped by
 * the parameter (choices by value; numbers by rank into three equal bins), the share of the metric's variance lying
 * between the groups (η², 0…1). A first look, not fANOVA: parameters are judged one at a time. null with < 3 trials.
 */
export function paramImportance(
  trials: readonly TrialObservation[],
  paths: readonly string[],
): { path: string; importance: number }[] | null {
  if (trials.length < 3) return null;
  const values = trials.map((t) => t.value);
  const mean = values.reduce((a, b) => a + b, 0) / values.length;
  const total = values.reduce((a, v) => a + (v - mean) ** 2, 0);
  return paths
    .map((path) => {
      if (total === 0) return { path, importance: 0 };
      const numeric = trials.every((t) => typeof t.params[path] === "number");
      const groups = new Map<string, number[]>();
      if (numeric) {
        const order = [...trials].sort((a, b) => (a.params[path] as number) - (b.params[path] as number));
        order.forEach((t, i) => {
          const k = String(Math.floor((i * 3) / order.length));
          groups.set(k, [...(groups.get(k) ?? []), t.value]);
        });
      } else
        for (const t of trials) {
          const k = canonicalJson(t.params[path] ?? null);
          groups.set(k, [...(groups.get(k) ?? []), t.value]);
        }
      let between = 0;
      for (const g of groups.values()) {
        const m = g.reduce((a, b) => a + b, 0) / g.length;
        between += g.length * (m - mean) ** 2;
      }
      return { path, importance: Math.min(1, between / total) };
    })
    .sort((a, b) => b.importance - a.importance);
}
