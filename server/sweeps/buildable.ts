/**
 * A sweep whose trials would build a model that cannot be built for their data is refused at creation, before
 * anything is recorded, as runs.create refuses such a config (server/runs/trainer-tasks.ts refuseUnbuildableConfig,
 * the same message): the first trial's config is built, and so is each config that varies what the space sets under
 * model. or data. (every combination of their choices, or of a number range's ends; at most MAX_VARIANTS, beyond
 * that each such value on its own). Training settings (learning rate, epochs, …) build the same model: they keep the
 * first trial's values. Used by the web app's sweeps.create (launch.ts) and the CLI's sweep.
 */
import { canonicalJson } from "@/contracts/canonical";
import { parseSweepSpec, suggestTrial, trialConfig, type SweepParam, type SweepSpec } from "@/contracts/sweep-spec";
import type { TrainingConfig } from "@/contracts/training-config";
import { requireRole } from "@/server/app-context/service-context";
import type { StoreServiceContext } from "@/server/app-context/store-context";
import { refuseUnbuildableConfig, type EstimateDeps } from "@/server/runs/trainer-tasks";

const MAX_VARIANTS = 16;

const buildsTheModel = (path: string) => path.startsWith("model.") || path.startsWith("data.");
const valuesToBuild = (p: SweepParam): unknown[] => (p.type === "choice" ? p.values : [p.min, p.max]);

/** The distinct trial configs whose models a sweep's trials build (the first trial's first). */
export function modelVariants(spec: SweepSpec): TrainingConfig[] {
  const first = suggestTrial(spec, 0);
  const axes = Object.entries(spec.space)
    .filter(([path]) => buildsTheModel(path))
    .map(([path, p]) => ({ path, values: valuesToBuild(p) }));
  let overrides: Record<string, unknown>[] = [{}];
  for (const { path, values } of axes) overrides = overrides.flatMap((o) => values.map((v) => ({ ...o, [path]: v })));
  if (overrides.length > MAX_VARIANTS)
    overrides = axes.flatMap(({ path, values }) => values.map((v) => ({ [path]: v }))).slice(0, MAX_VARIANTS);
  const seen = new Set<string>();
  const out: TrainingConfig[] = [];
  for (const o of [{}, ...overrides]) {
    let config: TrainingConfig;
    try {
      config = trialConfig(spec, { ...first, ...o });
    } catch {
      continue; // not a valid config at all: parseSweepSpec's concern, not the builder's
    }
    const key = canonicalJson({ data: config.data, model: config.model });
    if (seen.has(key)) continue;
    seen.add(key);
    out.push(config);
  }
  return out;
}

/**
 * Refuses (invalid input, "cannot launch this configuration: …") a sweep one of whose model variants cannot be built.
 * A spec that does not parse is left to createSweep, which refuses it with the path at fault.
 */
export async function refuseUnbuildableSweep(ctx: StoreServiceContext & Omit<EstimateDeps, "db">, raw: { spec: unknown }): Promise<void> {
  requireRole(ctx.actor, ["engineer"], "start sweeps");
  const p = parseSweepSpec(raw.spec);
  if (!p.ok) return;
  for (const config of modelVariants(p.spec))
    await refuseUnbuildableConfig({ db: ctx.db, artifacts: ctx.artifacts, dataDir: ctx.dataDir }, config);
}
