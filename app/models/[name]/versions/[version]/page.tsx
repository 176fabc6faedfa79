"use client";
/** One model version: its lineage graph from raw data to alias moves and signatures, and the PROV-JSON export. */
import Link from "next/link";
import { use } from "react";
import { useMutation, useQuery } from "@tanstack/react-query";
import { useTRPC } from "@/app/_trpc/client";
import { Shell } from "@/app/_components/shell";
import { ErrorState, FormError, Loading } from "@/app/_components/states";
import { Hash } from "@/app/_components/hash";
import { LineageGraphView } from "@/app/lineage/lineage-graph";
import { downloadText } from "@/app/_components/download";

function downloadJson(fileName: string, value: unknown) {
  downloadText(fileName, JSON.stringify(value, null, 2));
}

function Version({ name, version }: { name: string; version: number }) {
  const trpc = useTRPC();
  const lineage = useQuery(trpc.models.lineage.queryOptions({ modelName: name, version }));
  const exportProv = useMutation(trpc.models.exportProv.mutationOptions({ onSuccess: (r) => downloadJson(r.fileName, r.document) }));
  if (lineage.isPending) return <Loading what="Loading lineage" />;
  if (lineage.error) return <ErrorState error={lineage.error} title="Could not load this version's lineage" />;
  const l = lineage.data;
  return (
    <>
      <p className="muted">
        <Link href="/models">Models</Link> / <Link href={`/models/${encodeURIComponent(name)}`}>{name}</Link> / v{version}
      </p>
      <div className="row">
        <h1>
          {name} v{version}: lineage
        </h1>
        <span className="spacer" />
        <Link className="button" href={`/report/${l.modelVersionId}`}>
          Export auditor&apos;s report
        </Link>
        <button type="button" onClick={() => exportProv.mutate({ modelName: name, version })} disabled={exportProv.isPending}>
          Export PROV-JSON
        </button>
      </div>
      <FormError error={exportProv.error} />
      {exportProv.data ? (
        <p role="status" className="muted">
          Exported {exportProv.data.fileName} · sha256 <Hash value={exportProv.data.sha256} label="PROV-JSON sha256" />
        </p>
      ) : null}
      <p className="subtitle">
        Weights <Hash value={l.weightsSha256} label="model weights sha256" /> · read left to right: the data, the people&apos;s decisions
        and the training that produced these weights, then their evaluation, approval and release. Select a box to see its details.
      </p>
      <LineageGraphView graph={l.graph} />
    </>
  );
}

export default function VersionPage({ params }: { params: Promise<{ name: string; version: string }> }) {
  const { name, version } = use(params);
  return <Shell>{() => <Version name={decodeURIComponent(name)} version={Number(version)} />}</Shell>;
}
