"use client";
/**
 * One dataset's datasheet: source, licence, schema, hashes, a preview of its first rows, and each version (cleaning recipe + report) with its
 * splits (manifest: partitions, normalisation statistics, label encoding, vocabulary).
 */
import { SplitWarnings } from "@/app/_components/split-warnings-note";
import { use } from "react";
import Link from "next/link";
import { useQuery } from "@tanstack/react-query";
import { useTRPC } from "@/app/_trpc/client";
import { Shell } from "@/app/_components/shell";
import { ErrorState, Loading } from "@/app/_components/states";
import { Hash } from "@/app/_components/hash";
import { formatBytes, formatCount, formatTime } from "@/app/_components/format";
import { SplitPreprocessingDetails, type SplitPreprocessing } from "./split-preprocessing";
import { RowsPreview } from "./rows-preview";

type Report = {
  rowsIn: number;
  rowsOut: number;
  steps: {
    op: string;
    params: Record<string, unknown>;
    rowsBefore: number;
    rowsAfter: number;
    rowsDropped: number;
    valuesImputed: Record<string, number>;
    outliersRemoved: number;
  }[];
};
type Manifest = SplitPreprocessing & {
  strategy: string;
  seed: number;
  ratios: Record<string, number>;
  partitions: Record<string, { count: number; classBalance: Record<string, number> | null; indicesSha256: string }>;
};

function Dataset({ id }: { id: number }) {
  const trpc = useTRPC();
  const d = useQuery(trpc.datasets.get.queryOptions({ id }));
  if (d.isPending) return <Loading what="Loading dataset" />;
  if (d.error) return <ErrorState error={d.error} />;
  const ds = d.data;
  return (
    <>
      <p className="muted">
        <Link href="/datasets">Datasets</Link> / {ds.name}
      </p>
      <h1>{ds.name}</h1>
      <div className="panel" aria-label="Datasheet">
        <dl className="kv">
          <dt>Source</dt>
          <dd>{ds.origin || <span className="muted">not stated</span>}</dd>
          <dt>Licence</dt>
          <dd>{ds.licence || <span className="muted">not stated</span>}</dd>
          <dt>Raw bytes</dt>
          <dd>
            <Hash value={ds.sha256} label="raw data sha256" /> · {formatBytes(ds.byteSize)}
          </dd>
          <dt>Rows</dt>
          <dd>{formatCount(ds.rowCount)}</dd>
          <dt>Kind</dt>
          <dd>
            {ds.schema.kind}
            {ds.schema.imageShape ? ` ${ds.schema.imageShape.join("×")}` : ""}
          </dd>
          <dt>Label column</dt>
          <dd className="mono">{ds.schema.labelColumn}</dd>
          <dt>Columns</dt>
          <dd className="mono">
            {ds.schema.columns.length > 12
              ? `${ds.schema.columns
                  .slice(0, 12)
                  .map((c) => `${c.name}:${c.type}`)
                  .join(", ")} … (${ds.schema.columns.length})`
              : ds.schema.columns.map((c) => `${c.name}:${c.type}`).join(", ")}
          </dd>
          <dt>Registered</dt>
          <dd>{formatTime(ds.createdAt)}</dd>
        </dl>
      </div>
      <RowsPreview id={ds.id} />
      <h2>Versions (cleaning recipes)</h2>
      {ds.versions.length === 0 ? (
        <p className="muted">No version yet: a version is recorded when a run cleans and splits this dataset.</p>
      ) : (
        ds.versions.map((v) => {
          const report = v.report as Report;
          return (
            <section className="panel" key={v.id} aria-label={`Version ${v.id}`}>
              <h3 style={{ marginTop: 0 }}>
                Version #{v.id} · <Hash value={v.sha256} label="version sha256" /> · {formatCount(v.rowCount)} rows
              </h3>
              {report.steps.length === 0 ? (
                <p className="muted">No cleaning: the raw rows as they are.</p>
              ) : (
                <div className="table-scroll">
                  <table aria-label="Cleaning report">
                    <thead>
                      <tr>
                        <th>Step</th>
                        <th>Parameters</th>
                        <th className="num">Rows before</th>
                        <th className="num">Rows after</th>
                        <th>Values imputed</th>
                        <th className="num">Outliers removed</th>
                      </tr>
                    </thead>
                    <tbody>
                      {report.steps.map((s, i) => (
                        <tr key={i}>
                          <td>{s.op}</td>
                          <td className="mono">{JSON.stringify(s.params)}</td>
                          <td className="num">{s.rowsBefore}</td>
                          <td className="num">{s.rowsAfter}</td>
                          <td className="mono">
                            {Object.entries(s.valuesImputed ?? {})
                              .map(([k, n]) => `${k}: ${n}`)
                              .join(", ") || "–"}
                          </td>
                          <td className="num">{s.outliersRemoved}</td>
                        </tr>
                      ))}
                    </tbody>
                  </table>
                </div>
              )}
              {v.splits.map((s) => {
                const m = s.manifest as Manifest;
                return (
                  <div key={s.id} style={{ marginTop: 12 }}>
                    <strong>Split #{s.id}</strong> {m.strategy}, seed {m.seed} · <Hash value={s.sha256} label="split sha256" /> ·
                    normalisation {m.normalization.method}
                    <div className="table-scroll">
                      <table aria-label={`Split ${s.id} partitions`}>
                        <thead>
                          <tr>
                            <th>Partition</th>
                            <th className="num">Rows</th>
                            <th>Class balance</th>
                            <th>Row-index SHA-256</th>
                          </tr>
                        </thead>
                        <tbody>
                          {Object.entries(m.partitions).map(([name, p]) => (
                            <tr key={name}>
                              <td>{name}</td>
                              <td className="num">{p.count}</td>
                              <td className="mono">
                                {p.classBalance
                                  ? Object.entries(p.classBalance)
                                      .map(([c, n]) => `${c}: ${n}`)
                                      .join(", ")
                                  : "–"}
                              </td>
                              <td>
                                <Hash value={p.indicesSha256} label={`${name} indices sha256`} />
                              </td>
                            </tr>
                          ))}
                        </tbody>
                      </table>
                    </div>
                    <SplitWarnings partitions={m.partitions} label={`Split ${s.id} warnings`} />
                    <SplitPreprocessingDetails splitId={s.id} m={m} columnOrder={ds.schema.columns.map((c) => c.name)} />
                  </div>
                );
              })}
            </section>
          );
        })
      )}
    </>
  );
}

export default function DatasetPage({ params }: { params: Promise<{ id: string }> }) {
  const { id } = use(params);
  return <Shell>{() => <Dataset id={Number(id)} />}</Shell>;
}
