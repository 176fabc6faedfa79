"use client";
/**
 * Promotion requests of a model with their signatures in human-readable form, refused self-approval attempts (from the
 * audit ledger), the approvals against the rule the request is judged by (the rule at request time), and, for a
 * reviewer outside the lineage who has not signed it yet, the signing form: the reviewer re-enters their password and
 * signs an approval or a rejection of the record whose sha256 is shown; a rejection needs a reason in its comment
 * (Reject stays disabled until there is one; the server refuses a blank one too). A reviewer who already signed sees their
 * signature instead of the form. Each request says which model-card and datasheet sections were missing when it was made.
 */
import { useEffect, useRef, useState } from "react";
import { useMutation } from "@tanstack/react-query";
import { useTRPC } from "@/app/_trpc/client";
import type { Me } from "@/app/_components/shell";
import { Hash } from "@/app/_components/hash";
import { FormError } from "@/app/_components/states";
import { formatTime } from "@/app/_components/format";
import type { ModelDetail } from "@/server/registry/queries";
import { SignatureLine } from "@/app/_components/signature-line";
import { useInvalidateRegistry } from "./use-model-invalidate";

type Request = ModelDetail["promotionRequests"][number];

export function PromotionRequests({ model, me }: { model: ModelDetail; me: Me }) {
  return (
    <section className="panel" aria-label="Promotion requests">
      <h2 style={{ marginTop: 0 }}>Promotion requests</h2>
      {model.promotionRequests.length === 0 ? (
        <p className="muted">No promotion requested yet.</p>
      ) : (
        model.promotionRequests.map((r) => <RequestCard key={r.id} r={r} me={me} />)
      )}
    </section>
  );
}

function RequestCard({ r, me }: { r: Request; me: Me }) {
  // The inbox links to #request-<id>; the card exists only once the model has loaded, after the browser tried to scroll.
  const ref = useRef<HTMLElement>(null);
  useEffect(() => {
    if (window.location.hash === `#request-${r.id}`) ref.current?.scrollIntoView({ block: "start" });
  }, [r.id]);
  return (
    <article
      ref={ref}
      id={`request-${r.id}`}
      aria-label={`Promotion request #${r.id}`}
      data-status={r.status}
      style={{ borderTop: "1px solid var(--line)", paddingTop: 10, marginTop: 10 }}
    >
      <div className="row">
        <strong>
          #{r.id}: v{r.version} → {r.alias}
        </strong>
        <span className={`badge ${r.status === "approved" ? "completed" : r.status === "rejected" ? "failed" : ""}`}>{r.status}</span>
        <ApprovalRule r={r} />
      </div>
      <p style={{ margin: "6px 0" }}>
        “{r.rationale}” — {r.requestedBy}, {formatTime(r.createdAt)}
      </p>
      <p className="muted" style={{ margin: "6px 0" }}>
        Record signed: model version v{r.version} with evaluation #{r.evaluationId}, sha256{" "}
        <Hash value={r.recordSha256} label="promotion record sha256" />
      </p>
      <RequestDocumentation r={r} />
      {r.signatures.length ? (
        <ul aria-label="Signatures" style={{ paddingLeft: 18 }}>
          {r.signatures.map((s) => (
            <SignatureLine key={s.id} s={s} />
          ))}
        </ul>
      ) : (
        <p className="muted">No signature yet.</p>
      )}
      {r.refusedSelfApprovals.length ? (
        <div role="note" aria-label="Refused self-approvals" className="muted">
          <strong>Refused self-approval attempts (recorded in the audit ledger):</strong>
          <ul style={{ paddingLeft: 18, margin: "4px 0" }}>
            {r.refusedSelfApprovals.map((a) => (
              <li key={a.seq}>
                {a.who} at {formatTime(a.at)} — {a.reasons} (audit #{a.seq})
              </li>
            ))}
          </ul>
        </div>
      ) : null}
      {r.status === "pending" && me.role === "reviewer" ? (
        r.viewerSignature ? (
          <p role="note" aria-label="Your signature">
            You already signed this request: {r.viewerSignature.meaning === "rejection" ? "Rejected" : "Approved"} by{" "}
            {r.viewerSignature.printedName} on {r.viewerSignature.createdAt.replace(/\.\d+Z$/, "Z")}.{" "}
            {r.approvals < r.approvalsRequired
              ? `It waits for ${r.approvalsRequired - r.approvals} more approval${r.approvalsRequired - r.approvals > 1 ? "s" : ""} from another reviewer.`
              : null}
          </p>
        ) : r.viewerConflicts.length ? (
          <p className="error-text">You cannot sign this request: you {r.viewerConflicts.join("; ")}. Another reviewer must sign.</p>
        ) : (
          <SignForm r={r} me={me} />
        )
      ) : null}
      {r.status === "pending" && me.role === "engineer" ? <WithdrawButton r={r} /> : null}
    </article>
  );
}

/**
 * The model card and datasheet sections when the request was made (recorded in its promotion.request event): complete,
 * or which were missing and that the requester acknowledged it. Requests made before the check existed show nothing.
 */
function RequestDocumentation({ r }: { r: Request }) {
  const d = r.documentation;
  if (!d) return null;
  if (d.missing.length === 0)
    return (
      <p className="muted" style={{ margin: "6px 0" }}>
        Documentation when requested: all {d.total} model-card and datasheet sections written.
      </p>
    );
  return (
    <div role="note" aria-label="Missing documentation" style={{ margin: "6px 0" }}>
      <strong className="error-text">
        Requested with {d.missing.length} of {d.total} documentation sections missing
      </strong>
      {d.acknowledgedMissing ? " (acknowledged by the requester)" : ""}:
      <ul style={{ paddingLeft: 18, margin: "4px 0" }}>
        {d.missing.map((m) => (
          <li key={`${m.document}-${m.subjectName}-${m.section}`}>
            {m.document} of {m.subjectName}: {m.title}
          </li>
        ))}
      </ul>
    </div>
  );
}

const approvalsText = (n: number) => `${n} approval${n === 1 ? "" : "s"}`;

/**
 * How far a request is, against the rule it is judged by: "1 of 2 approvals" while pending (noting a rule raised since
 * the request), and for a decided request the rule in force when it was made, which the model's rule today may differ from.
 */
function ApprovalRule({ r }: { r: Request }) {
  if (r.status === "pending")
    return (
      <span className="muted" aria-label="Approvals">
        {r.approvals} of {approvalsText(r.approvalsRequired)}
        {r.approvalsRequired !== r.approvalsRequiredAtRequest
          ? ` · rule raised since the request (was ${approvalsText(r.approvalsRequiredAtRequest)})`
          : ""}
      </span>
    );
  return (
    <span className="muted" aria-label="Approvals">
      {approvalsText(r.approvals)} · rule at request time: {approvalsText(r.approvalsRequiredAtRequest)}
      {r.approvalsRequired !== r.approvalsRequiredAtRequest ? `, raised to ${approvalsText(r.approvalsRequired)} while pending` : ""}
    </span>
  );
}

function SignForm({ r, me }: { r: Request; me: Me }) {
  const trpc = useTRPC();
  const invalidate = useInvalidateRegistry();
  const [password, setPassword] = useState("");
  const [comment, setComment] = useState("");
  const sign = useMutation(
    trpc.models.sign.mutationOptions({
      onSuccess: () => {
        setPassword("");
        void invalidate();
      },
    }),
  );
  const submit = (meaning: "approval" | "rejection") => sign.mutate({ requestId: r.id, meaning, password, comment });
  // A rejection closes the request, so it must say why (the server refuses a blank one); an approval may go without.
  const noReason = comment.trim() === "";
  const hintId = `sign-${r.id}-reason-hint`;
  return (
    <form
      aria-label={`Sign promotion request #${r.id}`}
      onSubmit={(e) => {
        e.preventDefault();
        submit("approval");
      }}
      style={{ marginTop: 8 }}
    >
      <p style={{ margin: "0 0 6px" }}>
        Signing as <strong>{me.name}</strong>. Your signature binds to the record sha256 above.
      </p>
      <div className="form-grid">
        <label className="field">
          <span>Comment (optional to approve, required to reject)</span>
          <input
            aria-label="Signature comment"
            aria-describedby={hintId}
            value={comment}
            maxLength={4000}
            onChange={(e) => setComment(e.target.value)}
          />
        </label>
        <label className="field">
          <span>Re-enter your password to sign</span>
          <input
            aria-label="Password to sign"
            type="password"
            autoComplete="current-password"
            value={password}
            onChange={(e) => setPassword(e.target.value)}
          />
        </label>
      </div>
      <FormError error={sign.error} />
      <div className="row" style={{ marginTop: 8 }}>
        <button className="primary" type="submit" disabled={sign.isPending || password === ""}>
          Approve
        </button>
        <button
          className="danger"
          type="button"
          aria-describedby={hintId}
          disabled={sign.isPending || password === "" || noReason}
          onClick={() => submit("rejection")}
        >
          Reject
        </button>
        <span id={hintId} className="muted">
          {noReason
            ? "To reject, write in the comment what must change: a rejection needs a reason."
            : "The comment is recorded with your signature."}
        </span>
      </div>
    </form>
  );
}

function WithdrawButton({ r }: { r: Request }) {
  const trpc = useTRPC();
  const invalidate = useInvalidateRegistry();
  const withdraw = useMutation(trpc.models.withdrawPromotion.mutationOptions({ onSuccess: () => void invalidate() }));
  return (
    <div className="row" style={{ marginTop: 6 }}>
      <button
        type="button"
        disabled={withdraw.isPending}
        onClick={() => withdraw.mutate({ requestId: r.id, reason: "withdrawn by the requester" })}
      >
        Withdraw request
      </button>
      <FormError error={withdraw.error} />
    </div>
  );
}
