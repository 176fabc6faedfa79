"use client";
/**
 * One model version: its lineage graph from raw data to alias moves and signatures, and the PROV-JSON export. An engineer
 * requests production from here too (the same form as the model's versions table, with the model card and datasheet
 * checklist); a pending request of this version links to it on the model page.
 */
import Link from "next/link";
import { use, useState } from "react";
import { useMutation, useQuery } from "@tanstack/react-query";
import { useTRPC } from "@/app/_trpc/client";
import { Shell, type Me } from "@/app/_components/shell";
import { ErrorState, FormError, Loading } from "@/app/_components/states";
import { Hash } from "@/app/_components/hash";
import { WeightsDownload, weightsHref } from "@/app/_components/weights-download";
import { LineageGraphView } from "@/app/lineage/lineage-graph";
import { downloadText } from "@/app/_components/download";
import { RequestPromotionForm } from "@/app/models/_components/versions-table";

function downloadJson(fileName: string, value: unknown) {
  downloadText(fileName, JSON.stringify(value, null, 2));
}

/**
 * This version's promotion: a pending request's status (the server refuses a second one), else, for an engineer and a
 * version with a test evaluation not already in production, "Request production" among the page's actions, which
 * opens the request form below them. Returns what goes in the actions row (`button`) and what goes under it
 * (`below`: the status or the form).
 */
function usePromotion(name: string, version: number, me: Me) {
  const trpc = useTRPC();
  const model = useQuery(trpc.models.get.queryOptions({ name }));
  const [requesting, setRequesting] = useState(false);
  const v = model.data?.versions.find((x) => x.version === version);
  if (!model.data || !v) return { button: null, below: null };
  const pending = model.data.promotionRequests.filter((r) => r.version === version && r.status === "pending");
  if (pending.length)
    return {
      button: null,
      below: (
        <p role="status">
          {pending.map((r) => (
            <span key={r.id}>
              Promotion request <Link href={`/models/${encodeURIComponent(name)}#request-${r.id}`}>#{r.id}</Link> to {r.alias} is pending (
              {r.approvals} of {r.approvalsRequired} approvals).{" "}
            </span>
          ))}
        </p>
      ),
    };
  if (me.role !== "engineer" || !v.testEvaluation || v.aliases.includes("production")) return { button: null, below: null };
  return {
    button: requesting ? null : (
      <button type="button" onClick={() => setRequesting(true)}>
        Request production
      </button>
    ),
    below: requesting ? (
      <section className="panel">
        <RequestPromotionForm model={model.data} version={v} me={me} onDone={() => setRequesting(false)} />
      </section>
    ) : null,
  };
}

function Version({ name, version, me }: { name: string; version: number; me: Me }) {
  const trpc = useTRPC();
  const lineage = useQuery(trpc.models.lineage.queryOptions({ modelName: name, version }));
  const exportProv = useMutation(trpc.models.exportProv.mutationOptions({ onSuccess: (r) => downloadJson(r.fileName, r.document) }));
  const promotion = usePromotion(name, version, me);
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
        {promotion.button}
        <Link className="button" href={`/report/${l.modelVersionId}`}>
          Export auditor&apos;s report
        </Link>
        <button type="button" onClick={() => exportProv.mutate({ modelName: name, version })} disabled={exportProv.isPending}>
          Export PROV-JSON
        </button>
      </div>
      <FormError error={exportProv.error} />
      {promotion.below}
      {exportProv.data ? (
        <p role="status" className="muted">
          Exported {exportProv.data.fileName} · sha256 <Hash value={exportProv.data.sha256} label="PROV-JSON sha256" />
        </p>
      ) : null}
      <p>
        Weights:{" "}
        <WeightsDownload href={weightsHref({ modelVersionId: l.modelVersionId })} sha256={l.weightsSha256} what={`${name} v${version}`} />
      </p>
      <p className="subtitle">
        Read top to bottom: the data, the people&apos;s decisions and the training that produced these weights, then their evaluation,
        approval and release. Select a box to see its details and to focus on its lineage.
      </p>
      <LineageGraphView graph={l.graph} />
    </>
  );
}

export default function VersionPage({ params }: { params: Promise<{ name: string; version: string }> }) {
  const { name, version } = use(params);
  return <Shell>{(me) => <Version name={decodeURIComponent(name)} version={Number(version)} me={me} />}</Shell>;
}
