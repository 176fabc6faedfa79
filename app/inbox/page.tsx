"use client";
/**
 * The reviewer's inbox: every pending promotion request the signed-in reviewer may decide (not their own work: the
 * server leaves out requests whose version's lineage includes them, and those they already signed), oldest first,
 * each linking to the request on its model's page where it is signed.
 */
import Link from "next/link";
import { Shell, type Me } from "@/app/_components/shell";
import { Empty, ErrorState, Loading } from "@/app/_components/states";
import { formatTime } from "@/app/_components/format";
import { useReviewerInbox } from "@/app/_components/inbox-link";

function requestHref(r: { modelName: string; id: number }) {
  return `/models/${encodeURIComponent(r.modelName)}#request-${r.id}`;
}

function Inbox({ me }: { me: Me }) {
  const inbox = useReviewerInbox(me.role === "reviewer");
  return (
    <>
      <h1>Review inbox</h1>
      <p className="subtitle">
        Promotion requests waiting for your signature. Requests about work you took part in (four eyes) and those you already signed are not
        listed.
      </p>
      {me.role !== "reviewer" ? (
        <Empty
          title="Only reviewers sign promotion requests"
          hint="Your role does not sign promotions. Open Models to follow a request's progress."
        >
          <Link href="/models">Open Models</Link>
        </Empty>
      ) : inbox.isPending ? (
        <Loading what="Loading your inbox" />
      ) : inbox.error ? (
        <ErrorState error={inbox.error} title="Could not load your inbox" />
      ) : inbox.data.count === 0 ? (
        <Empty
          title="Nothing waits for your review"
          hint="When an engineer requests production for a model version you may review, it appears here."
        />
      ) : (
        <div className="table-scroll">
          <table aria-label="Requests waiting for your review">
            <thead>
              <tr>
                <th>Request</th>
                <th>Requested by</th>
                <th>Requested (UTC)</th>
                <th className="num">Approvals</th>
                <th>Rationale</th>
              </tr>
            </thead>
            <tbody>
              {inbox.data.requests.map((r) => (
                <tr key={r.id}>
                  <td>
                    <Link href={requestHref(r)}>
                      #{r.id}: {r.modelName} v{r.version} → {r.alias}
                    </Link>
                  </td>
                  <td>{r.requestedBy}</td>
                  <td>{formatTime(r.createdAt)}</td>
                  <td className="num">
                    {r.approvals} of {r.approvalsRequired}
                  </td>
                  <td>{r.rationale}</td>
                </tr>
              ))}
            </tbody>
          </table>
        </div>
      )}
    </>
  );
}

export default function InboxPage() {
  return <Shell>{(me) => <Inbox me={me} />}</Shell>;
}
