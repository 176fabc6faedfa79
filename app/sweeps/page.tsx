"use client";
/**
 * Sweeps (issue 17): the list, and for engineers a form to start one from a spec (JSON, contracts/sweep-spec.ts; the
 * server validates it and names the path at fault). Starting one opens its page. Laid out as the runs pages are: a
 * subtitle, panels, tables that scroll sideways in their box, stacked form fields and the shared empty/loading/error states.
 */
import Link from "next/link";
import { useState } from "react";
import { useRouter } from "next/navigation";
import { useMutation, useQuery } from "@tanstack/react-query";
import { useTRPC } from "@/app/_trpc/client";
import { Shell, type Me } from "@/app/_components/shell";
import { Empty, ErrorState, FormError, Loading } from "@/app/_components/states";
import { StatusBadge } from "@/app/_components/status-badge";
import { formatTime } from "@/app/_components/format";

const EXAMPLE_SPEC = {
  name: "iris-lr-width",
  base: {
    data: { dataset: { builtin: "iris" }, normalization: "standard" },
    model: { layers: [{ type: "dense", units: 16, activation: "relu" }] },
    training: { optimizer: { name: "adam" }, learningRate: 0.02, batchSize: 16, epochs: 8, seed: 7 },
  },
  space: {
    "training.learningRate": { type: "logUniform", min: 0.001, max: 0.1 },
    "model.layers.0.units": { type: "int", min: 4, max: 32, step: 4 },
  },
  method: "random",
  budget: { maxTrials: 4, maxParallel: 1 },
  metric: { name: "val_loss", direction: "minimize" },
  earlyTermination: { type: "asha", rungs: [3], eta: 3 },
  seed: 1,
};

function Sweeps({ me }: { me: Me }) {
  const trpc = useTRPC();
  const router = useRouter();
  const list = useQuery(trpc.sweeps.list.queryOptions({}));
  const projects = useQuery(trpc.projects.list.queryOptions());
  const experiments = (projects.data ?? []).flatMap((p) => p.experiments.map((e) => ({ id: e.id, label: `${p.name} / ${e.name}` })));
  const experimentLabel = (id: number) => experiments.find((e) => e.id === id)?.label ?? `experiment #${id}`;
  const [experimentId, setExperimentId] = useState<number | null>(null);
  const [specText, setSpecText] = useState(JSON.stringify(EXAMPLE_SPEC, null, 2));
  const [rationale, setRationale] = useState("");
  const [problem, setProblem] = useState<string | null>(null);
  const create = useMutation(trpc.sweeps.create.mutationOptions({ onSuccess: (s) => router.push(`/sweeps/${s.id}`) }));
  if (list.isLoading) return <Loading what="Loading sweeps" />;
  if (list.error) return <ErrorState error={list.error} title="Could not load the sweeps" />;
  const submit = () => {
    // Each press answers for the spec now in the box: the server's refusal of an earlier spec goes.
    setProblem(null);
    create.reset();
    let spec: unknown;
    try {
      spec = JSON.parse(specText);
    } catch (e) {
      return setProblem(`The spec is not valid JSON: ${(e as Error).message}`);
    }
    const exp = experimentId ?? experiments[0]?.id;
    if (exp === undefined) return setProblem("Create an experiment first.");
    if (!spec || typeof spec !== "object" || Array.isArray(spec)) return setProblem("The spec must be a JSON object ({ … }).");
    // The Rationale field, as on every other launch; a spec pasted with its own "rationale" keeps it when the field is empty.
    const own = (spec as { rationale?: unknown }).rationale;
    const why = rationale.trim() || (typeof own === "string" ? own.trim() : "");
    if (!why) return setProblem("A rationale is required: say why this search.");
    create.mutate({ experimentId: exp, spec: { ...spec, rationale: why } });
  };
  return (
    <>
      <h1>Sweeps</h1>
      <p className="subtitle">
        Hyperparameter searches: each trial is a run of its experiment, trained and recorded like any other; the engineer picks the winner
        with a rationale.
      </p>
      <section className="panel" aria-label="All sweeps">
        {list.data?.length === 0 ? (
          <Empty
            title="No sweeps yet"
            hint={
              me.role === "engineer"
                ? "Start one below: the example spec searches the learning rate and the first layer's width on Iris (say why in Rationale first)."
                : "Engineers start sweeps; each one and its trials then appear here."
            }
          />
        ) : (
          <div className="table-scroll">
            <table aria-label="Sweeps">
              <thead>
                <tr>
                  <th>Sweep</th>
                  <th>Experiment</th>
                  <th>Method</th>
                  <th>Status</th>
                  <th className="num">Budget</th>
                  <th>Winner</th>
                  <th>Created (UTC)</th>
                </tr>
              </thead>
              <tbody>
                {(list.data ?? []).map((s) => (
                  <tr key={s.id}>
                    <td>
                      <Link href={`/sweeps/${s.id}`}>
                        #{s.id} {s.name}
                      </Link>
                    </td>
                    <td>
                      <Link href={`/experiments/${s.experimentId}`}>{experimentLabel(s.experimentId)}</Link>
                    </td>
                    <td>{s.method}</td>
                    <td>
                      <StatusBadge status={s.status} />
                    </td>
                    <td className="num">{s.maxTrials} trials</td>
                    <td>{s.winnerRunId === null ? "–" : <Link href={`/runs/${s.winnerRunId}`}>run #{s.winnerRunId}</Link>}</td>
                    <td>{formatTime(s.createdAt)}</td>
                  </tr>
                ))}
              </tbody>
            </table>
          </div>
        )}
      </section>
      {me.role === "engineer" ? (
        <section aria-label="Start a sweep" className="panel">
          <h2 style={{ marginTop: 0 }}>Start a sweep</h2>
          <label className="field" style={{ marginBottom: 12, maxWidth: 480 }}>
            <span>Experiment</span>
            <select
              aria-label="Experiment"
              value={experimentId ?? experiments[0]?.id ?? ""}
              onChange={(e) => setExperimentId(Number(e.target.value))}
            >
              {experiments.map((e) => (
                <option key={e.id} value={e.id}>
                  {e.label}
                </option>
              ))}
            </select>
          </label>
          <label className="field" style={{ marginBottom: 12, maxWidth: 720 }}>
            <span>Rationale</span>
            <input
              aria-label="Rationale"
              value={rationale}
              onChange={(e) => setRationale(e.target.value)}
              placeholder="why this search (required)"
            />
          </label>
          <label className="field" style={{ marginBottom: 12 }}>
            <span>Spec (JSON: base config, search space, method, budget, metric, early termination, seed)</span>
            <textarea
              aria-label="Spec (JSON)"
              className="mono"
              rows={24}
              value={specText}
              onChange={(e) => setSpecText(e.target.value)}
              spellCheck={false}
            />
          </label>
          {problem ? (
            <p className="error-text" role="alert">
              {problem}
            </p>
          ) : null}
          <FormError error={create.error} />
          <button className="primary" type="button" onClick={submit} disabled={create.isPending}>
            {create.isPending ? "Starting…" : "Start sweep"}
          </button>
        </section>
      ) : null}
    </>
  );
}

export default function SweepsPage() {
  return <Shell>{(me) => <Sweeps me={me} />}</Shell>;
}
