"use client";
/** An experiment's runs: status, key hyperparameters and final metrics; refreshes while runs are active. */
import Link from "next/link";
import { use } from "react";
import { useQuery } from "@tanstack/react-query";
import { useTRPC } from "@/app/_trpc/client";
import { Shell, type Me } from "@/app/_components/shell";
import { Empty, ErrorState, Loading } from "@/app/_components/states";
import { formatDuration, formatMetric, formatTime } from "@/app/_components/format";
import { StatusBadge } from "@/app/_components/status-badge";

function Runs({ experimentId, me }: { experimentId: number; me: Me }) {
  const trpc = useTRPC();
  const experiment = useQuery(trpc.projects.experiment.queryOptions({ id: experimentId }));
  const runs = useQuery({
    ...trpc.runs.list.queryOptions({ experimentId }),
    refetchInterval: (q) => (q.state.data?.some((r) => r.status === "running" || r.status === "queued") ? 1000 : false),
  });
  if (experiment.error) return <ErrorState error={experiment.error} />;
  return (
    <>
      <p className="muted">{experiment.data ? <Link href="/">{experiment.data.projectName}</Link> : "…"} / experiment</p>
      <div className="row">
        <h1>{experiment.data?.name ?? "Experiment"}</h1>
        <span className="spacer" />
        {me.role === "engineer" ? <Link className="button primary" href={`/experiments/${experimentId}/new-run`}>New run</Link> : null}
      </div>
      <p className="subtitle">{experiment.data?.description}</p>
      {runs.isPending ? <Loading what="Loading runs" /> : runs.error ? <ErrorState error={runs.error} /> : runs.data.length === 0 ? (
        <Empty title="No runs yet" hint={me.role === "engineer" ? "Open “New run”, pick a dataset and hyperparameters, and launch." : "Engineers launch runs; nothing has been trained here yet."} />
      ) : (
        <div className="panel" style={{ overflowX: "auto" }}>
          <table aria-label="Runs">
            <thead>
              <tr><th>Run</th><th>Status</th><th>Author</th><th>Dataset</th><th>Layers</th><th>Optimizer</th><th className="num">Learning rate</th><th className="num">Batch</th><th className="num">Epochs</th><th className="num">val accuracy</th><th className="num">val loss</th><th className="num">Duration</th><th>Created (UTC)</th></tr>
            </thead>
            <tbody>
              {runs.data.map((r) => (
                <tr key={r.id}>
                  <td><Link href={`/runs/${r.id}`}>{r.name}</Link> <span className="muted">#{r.id}</span></td>
                  <td><StatusBadge status={r.status} progress={r.progress} /></td>
                  <td>{r.author}</td>
                  <td>{r.params.dataset}</td>
                  <td className="mono">{r.params.layers || "(head only)"}</td>
                  <td>{r.params.optimizer}</td>
                  <td className="num">{r.params.learningRate}</td>
                  <td className="num">{r.params.batchSize}</td>
                  <td className="num">{r.params.epochs}</td>
                  <td className="num">{formatMetric(r.metrics.val_accuracy, "val_accuracy")}</td>
                  <td className="num">{formatMetric(r.metrics.val_loss)}</td>
                  <td className="num">{formatDuration(r.durationMs)}</td>
                  <td>{formatTime(r.createdAt)}</td>
                </tr>
              ))}
            </tbody>
          </table>
        </div>
      )}
    </>
  );
}

export default function ExperimentPage({ params }: { params: Promise<{ id: string }> }) {
  const { id } = use(params);
  return <Shell>{(me) => <Runs experimentId={Number(id)} me={me} />}</Shell>;
}
