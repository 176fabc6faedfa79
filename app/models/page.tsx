"use client";
/** The model registry: every named model, how many versions it has, and where its aliases (production, staging…) point now. */
import Link from "next/link";
import { useQuery } from "@tanstack/react-query";
import { useTRPC } from "@/app/_trpc/client";
import { Shell } from "@/app/_components/shell";
import { Empty, ErrorState, Loading } from "@/app/_components/states";
import { formatTime } from "@/app/_components/format";

function Models() {
  const trpc = useTRPC();
  const models = useQuery(trpc.models.list.queryOptions());
  if (models.isPending) return <Loading what="Loading models" />;
  if (models.error) return <ErrorState error={models.error} title="Could not load the models" />;
  return (
    <>
      <h1>Models</h1>
      <p className="subtitle">
        Registered model versions and their aliases. Moving <strong>production</strong> needs a promotion request and independent approval.
      </p>
      {models.data.length === 0 ? (
        <Empty title="No model registered yet" hint="Open a completed run and use “Register as model version” on one of its checkpoints." />
      ) : (
        <table aria-label="Models">
          <thead>
            <tr>
              <th>Model</th>
              <th className="num">Versions</th>
              <th>Aliases</th>
              <th className="num">Approvals required</th>
              <th>Created</th>
            </tr>
          </thead>
          <tbody>
            {models.data.map((m) => (
              <tr key={m.id}>
                <td>
                  <Link href={`/models/${encodeURIComponent(m.name)}`}>{m.name}</Link>
                </td>
                <td className="num">{m.versionCount}</td>
                <td>
                  {Object.keys(m.aliases).length === 0 ? (
                    <span className="muted">none</span>
                  ) : (
                    Object.entries(m.aliases).map(([a, v]) => (
                      <span key={a} className="badge" style={{ marginRight: 4 }}>
                        {a} → v{v}
                      </span>
                    ))
                  )}
                </td>
                <td className="num">{m.approvalsRequired}</td>
                <td>
                  {formatTime(m.createdAt)} by {m.createdBy}
                </td>
              </tr>
            ))}
          </tbody>
        </table>
      )}
    </>
  );
}

export default function ModelsPage() {
  return <Shell>{() => <Models />}</Shell>;
}
