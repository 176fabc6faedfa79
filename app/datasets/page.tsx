"use client";
/** Datasets: the built-in catalogue, registered datasets with their hashes, and CSV upload (upload-form.tsx) with clear errors. */
import Link from "next/link";
import { useQuery } from "@tanstack/react-query";
import { useTRPC } from "@/app/_trpc/client";
import { Shell, type Me } from "@/app/_components/shell";
import { Empty, ErrorState, Loading } from "@/app/_components/states";
import { Hash } from "@/app/_components/hash";
import { formatBytes, formatCount, formatTime } from "@/app/_components/format";
import { UploadForm } from "./upload-form";

function Datasets({ me }: { me: Me }) {
  const trpc = useTRPC();
  const list = useQuery(trpc.datasets.list.queryOptions());
  const builtins = useQuery(trpc.datasets.builtins.queryOptions());
  return (
    <>
      <h1>Datasets</h1>
      <p className="subtitle">
        Raw data, hashed and kept as uploaded. Cleaning recipes and splits create versions, recorded when a run uses them.
      </p>
      {list.isPending ? (
        <Loading what="Loading datasets" />
      ) : list.error ? (
        <ErrorState error={list.error} />
      ) : list.data.length === 0 ? (
        <Empty
          title="No datasets registered yet"
          hint="Built-in datasets register the first time a run uses them; engineers can upload a CSV below."
        />
      ) : (
        <div className="panel">
          <div className="table-scroll">
            <table aria-label="Datasets">
              <thead>
                <tr>
                  <th>Name</th>
                  <th>Source</th>
                  <th>Kind</th>
                  <th className="num">Rows</th>
                  <th className="num">Columns</th>
                  <th>Label</th>
                  <th className="num">Size</th>
                  <th>SHA-256</th>
                  <th>Licence</th>
                  <th>Added (UTC)</th>
                </tr>
              </thead>
              <tbody>
                {list.data.map((d) => (
                  <tr key={d.id}>
                    <td>
                      <Link href={`/datasets/${d.id}`}>{d.name}</Link>
                    </td>
                    <td>{d.source}</td>
                    <td>{d.schema.kind}</td>
                    <td className="num">{formatCount(d.rowCount)}</td>
                    <td className="num">{d.schema.columns.length}</td>
                    <td className="mono">{d.schema.labelColumn}</td>
                    <td className="num">{formatBytes(d.byteSize)}</td>
                    <td>
                      <Hash value={d.sha256} label={`${d.name} sha256`} />
                    </td>
                    <td>{d.licence || <span className="muted">not stated</span>}</td>
                    <td>{formatTime(d.createdAt)}</td>
                  </tr>
                ))}
              </tbody>
            </table>
          </div>
        </div>
      )}
      <h2>Built-in datasets</h2>
      {builtins.data ? (
        <div className="panel">
          <div className="table-scroll">
            <table aria-label="Built-in datasets">
              <thead>
                <tr>
                  <th>Name</th>
                  <th>Description</th>
                  <th className="num">Rows</th>
                  <th>Source</th>
                  <th>Licence</th>
                </tr>
              </thead>
              <tbody>
                {builtins.data.map((b) => (
                  <tr key={b.name}>
                    <td>
                      {b.title} <span className="muted mono">{b.name}</span>
                    </td>
                    <td>{b.description}</td>
                    <td className="num">{formatCount(b.rowCount)}</td>
                    <td>{b.origin}</td>
                    <td>{b.licence}</td>
                  </tr>
                ))}
              </tbody>
            </table>
          </div>
        </div>
      ) : builtins.error ? (
        <ErrorState error={builtins.error} />
      ) : (
        <Loading />
      )}
      {me.role === "engineer" ? <UploadForm /> : null}
    </>
  );
}

export default function DatasetsPage() {
  return <Shell>{(me) => <Datasets me={me} />}</Shell>;
}
