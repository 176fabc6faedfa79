"use client";
/**
 * Compress a checkpoint (issue 17; engineers): float16 or int8 quantization, magnitude pruning to a sparsity with
 * optional fine-tune epochs, or distillation into a student (its hidden layers as JSON, temperature, alpha). The server
 * validates everything (runs.compress: a bad parameter is an error that creates nothing), creates a run of origin
 * "compress" and works it in a trainer worker; the result links to that run, whose checkpoint shows size and accuracy
 * against this one.
 */
import Link from "next/link";
import { useState } from "react";
import { useMutation } from "@tanstack/react-query";
import { useTRPC } from "@/app/_trpc/client";
import { FormError } from "@/app/_components/states";

const METHODS = [
  ["int8", "int8 quantization (¼ size, per-channel scales)"],
  ["float16", "float16 quantization (½ size)"],
  ["prune", "magnitude pruning"],
  ["distill", "distillation into a smaller student"],
] as const;
type Method = (typeof METHODS)[number][0];

const DEFAULT_STUDENT = '[{ "type": "dense", "units": 4, "activation": "relu" }]';

export function CompressPanel({
  runId,
  checkpoint,
  onClose,
}: {
  runId: number;
  checkpoint: { id: number; epoch: number };
  onClose: () => void;
}) {
  const trpc = useTRPC();
  const [method, setMethod] = useState<Method>("int8");
  const [sparsity, setSparsity] = useState("0.5");
  const [fineTuneEpochs, setFineTuneEpochs] = useState("0");
  const [student, setStudent] = useState(DEFAULT_STUDENT);
  const [temperature, setTemperature] = useState("4");
  const [alpha, setAlpha] = useState("0.7");
  const [rationale, setRationale] = useState("");
  const [problem, setProblem] = useState<string | null>(null);
  const compress = useMutation(trpc.runs.compress.mutationOptions());

  const submit = () => {
    setProblem(null);
    if (rationale.trim() === "") return setProblem("A rationale is required: say why you compress this model.");
    const num = (label: string, v: string) => {
      const n = Number(v);
      if (v.trim() === "" || !Number.isFinite(n)) throw new Error(`${label} must be a number`);
      return n;
    };
    try {
      const params =
        method === "prune"
          ? { sparsity: num("Sparsity", sparsity), fineTuneEpochs: num("Fine-tune epochs", fineTuneEpochs) }
          : method === "distill"
            ? {
                student: { model: { layers: parseLayers(student) } },
                temperature: num("Temperature", temperature),
                alpha: num("Alpha", alpha),
              }
            : {};
      compress.mutate({ runId, checkpoint: { checkpointId: checkpoint.id }, method, rationale, ...params });
    } catch (e) {
      setProblem((e as Error).message);
    }
  };

  const done = compress.data;
  return (
    <section className="panel" aria-label={`Compress epoch ${checkpoint.epoch}`}>
      <h3 style={{ marginTop: 0 }}>Compress the checkpoint of epoch {checkpoint.epoch}</h3>
      <p className="muted">
        A new run derives a smaller model from this checkpoint and evaluates it on the same test partition; its checkpoint shows its size,
        non-zero parameters and accuracy against this one.
      </p>
      <form
        aria-label="Compress a checkpoint"
        onSubmit={(e) => {
          e.preventDefault();
          submit();
        }}
      >
        <div className="form-grid">
          <label className="field">
            <span>Method</span>
            <select aria-label="Compression method" value={method} onChange={(e) => setMethod(e.target.value as Method)}>
              {METHODS.map(([value, label]) => (
                <option key={value} value={value}>
                  {label}
                </option>
              ))}
            </select>
          </label>
          {method === "prune" ? (
            <>
              <label className="field">
                <span>Sparsity</span>
                <input aria-label="Sparsity" inputMode="decimal" value={sparsity} onChange={(e) => setSparsity(e.target.value)} />
                <small className="muted">fraction of kernel weights set to zero, between 0 and 1</small>
              </label>
              <label className="field">
                <span>Fine-tune epochs</span>
                <input
                  aria-label="Fine-tune epochs"
                  inputMode="numeric"
                  value={fineTuneEpochs}
                  onChange={(e) => setFineTuneEpochs(e.target.value)}
                />
              </label>
            </>
          ) : null}
          {method === "distill" ? (
            <>
              <label className="field">
                <span>Temperature</span>
                <input aria-label="Temperature" inputMode="decimal" value={temperature} onChange={(e) => setTemperature(e.target.value)} />
              </label>
              <label className="field">
                <span>Alpha (weight of the teacher&apos;s soft targets)</span>
                <input aria-label="Alpha" inputMode="decimal" value={alpha} onChange={(e) => setAlpha(e.target.value)} />
              </label>
            </>
          ) : null}
        </div>
        {method === "distill" ? (
          <label className="field">
            <span>Student hidden layers (JSON)</span>
            <textarea aria-label="Student layers" value={student} onChange={(e) => setStudent(e.target.value)} />
          </label>
        ) : null}
        <label className="field">
          <span>Rationale (required)</span>
          <textarea
            aria-label="Compression rationale"
            value={rationale}
            onChange={(e) => setRationale(e.target.value)}
            placeholder="e.g. the device has 64 KB for the model"
          />
        </label>
        {problem ? (
          <p className="error-text" role="alert">
            {problem}
          </p>
        ) : null}
        <button type="submit" disabled={compress.isPending}>
          Compress
        </button>{" "}
        <button type="button" onClick={onClose}>
          Close
        </button>
      </form>
      <FormError error={compress.error} />
      {done ? (
        <p role="status">
          <Link href={`/runs/${done.id}`}>
            Compression run {done.id} ({done.method}) created
          </Link>
        </p>
      ) : null}
    </section>
  );
}

function parseLayers(text: string): unknown[] {
  let v: unknown;
  try {
    v = JSON.parse(text);
  } catch {
    throw new Error("Student layers must be JSON: a list of layers such as " + DEFAULT_STUDENT);
  }
  if (!Array.isArray(v)) throw new Error("Student layers must be a JSON list of layers");
  return v;
}
