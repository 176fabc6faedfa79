"use client";
/**
 * The model registry: every named model, how many versions it has, and where its aliases (production, staging…) point
 * now. Reviewers also see, per model, how many promotion requests wait for their signature (their inbox, by model).
 */
import Link from "next/link";
import { useQuery } from "@tanstack/react-query";
import { useTRPC } from "@/app/_trpc/client";
import { Shell, type Me } from "@/app/_components/shell";
import { useReviewerInbox } from "@/app/_components/inbox-link";
import { Empty, ErrorState, Loading } from "@/app/_components/states";
import { formatTime } from "@/app/_components/format";

function Models({ me }: { me: Me }) {
  const trpc = useTRPC();
  const models = useQuery(trpc.models.list.queryOptions());
  const reviewer = me.role === "reviewer";
  const inbox = useReviewerInbox(reviewer);
  const waiting = (model: string) => inbox.data?.requests.filter((r) => r.modelName === model).length ?? 0;
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
        <div className="table-scroll">
          <table aria-label="Models">
            <thead>
              <tr>
                <th>Model</th>
                <th className="num">Versions</th>
                <th>Aliases</th>
                <th className="num">Approvals required</th>
                <th>Created</th>
                {reviewer ? <th className="num">Waiting for you</th> : null}
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
                  {reviewer ? (
                    <td className="num">
                      {waiting(m.name) > 0 ? (
                        <Link href="/inbox" className="badge attention" aria-label={`${waiting(m.name)} waiting for your review`}>
                          {waiting(m.name)}
                        </Link>
                      ) : (
                        <span className="muted">{inbox.data ? "none" : "…"}</span>
                      )}
                    </td>
                  ) : null}
                </tr>
              ))}
            </tbody>
          </table>
        </div>
      )}
    </>
  );
}

export default function ModelsPage() {
  return <Shell>{(me) => <Models me={me} />}</Shell>;
}
