"use client";
/** One model: its versions with their test evaluation, alias moves (direct, or by promotion with four eyes), promotion requests and signatures, and the production timeline. */
import Link from "next/link";
import { use } from "react";
import { useQuery } from "@tanstack/react-query";
import { useTRPC } from "@/app/_trpc/client";
import { Shell, type Me } from "@/app/_components/shell";
import { ErrorState, Loading } from "@/app/_components/states";
import { VersionsTable } from "@/app/models/_components/versions-table";
import { PromotionRequests } from "@/app/models/_components/promotion-requests";
import { AliasTimeline } from "@/app/models/_components/alias-timeline";
import { MoveAliasForm } from "@/app/models/_components/move-alias-form";
import { ApprovalsSetting } from "@/app/models/_components/approvals-setting";

function Model({ name, me }: { name: string; me: Me }) {
  const trpc = useTRPC();
  const model = useQuery(trpc.models.get.queryOptions({ name }));
  if (model.isPending) return <Loading what="Loading model" />;
  if (model.error) return <ErrorState error={model.error} title="Could not load this model" />;
  const m = model.data;
  return (
    <>
      <p className="muted">
        <Link href="/models">Models</Link> / {m.name}
      </p>
      <h1>{m.name}</h1>
      <p className="subtitle">
        {Object.keys(m.aliases).length
          ? Object.entries(m.aliases).map(([a, v]) => (
              <span key={a} className="badge" style={{ marginRight: 6 }}>
                {a} → v{v}
              </span>
            ))
          : "No alias set yet."}{" "}
        · production moves need {m.approvalsRequired} independent approval{m.approvalsRequired > 1 ? "s" : ""}
      </p>
      <VersionsTable model={m} me={me} />
      <PromotionRequests model={m} me={me} />
      <AliasTimeline model={m} />
      {me.role === "engineer" ? <MoveAliasForm model={m} /> : null}
      {me.role === "admin" ? <ApprovalsSetting model={m} /> : null}
    </>
  );
}

export default function ModelPage({ params }: { params: Promise<{ name: string }> }) {
  const { name } = use(params);
  return <Shell>{(me) => <Model name={decodeURIComponent(name)} me={me} />}</Shell>;
}
