"use client";
/**
 * The Audit page's verification panel: the last recorded verification with its result per level, and "Verify now",
 * which starts a background job on the server (or joins the one running), shows its progress by polling, and shows
 * the recorded outcome when it ends. States: loading, never verified, running, finished, failed to run.
 * It says which key "Verify now" trusts (the server's current one) and that an auditor's own check is the CLI or
 * the bundle's standalone verifier with keys they hold.
 */
import { useEffect } from "react";
import { useMutation, useQuery, useQueryClient } from "@tanstack/react-query";
import { useTRPC } from "@/app/_trpc/client";
import { ErrorState, FormError, Loading } from "@/app/_components/states";
import { formatCount, formatCountOf, formatTime } from "@/app/_components/format";
import type { VerifySummary } from "@/server/audit/verify-summary";
import { VerificationLevels } from "./verification-levels";

export type Shown = { summary: VerifySummary; at: string; by: string };

function Progress({ checked, total }: { checked: number; total: number }) {
  const pct = total > 0 ? Math.min(100, Math.round((checked / total) * 100)) : 0;
  return (
    <div style={{ margin: "8px 0" }}>
      <div
        className="progress"
        role="progressbar"
        aria-label="Verification progress"
        aria-valuemin={0}
        aria-valuemax={total}
        aria-valuenow={checked}
      >
        <div style={{ width: `${pct}%` }} />
      </div>
      <p className="muted" style={{ margin: "4px 0 0" }}>
        Verifying… {formatCount(checked)} of {formatCountOf(total, "event")} checked
      </p>
    </div>
  );
}

export function VerificationResult({ shown }: { shown: Shown | null }) {
  const s = shown?.summary;
  // The anchor row already says what "not anchored" means.
  const notes = (s?.notes ?? []).filter((n) => !n.startsWith("NOT anchored"));
  return (
    <div role="status" aria-label="Last verification result" data-ok={s ? String(s.ok) : "none"}>
      {shown && s ? (
        <>
          <p style={{ margin: "0 0 4px" }}>
            <strong className={s.ok ? "" : "error-text"}>{s.ok ? "Intact" : "DAMAGED"}</strong> — {formatCountOf(s.eventsChecked, "event")}{" "}
            and {formatCountOf(s.checkpointsChecked, "signed checkpoint")} checked in {formatCount(Math.round(s.durationMs))} ms,{" "}
            {formatTime(shown.at)} by {shown.by}.
            {!s.ok && !s.levels ? (
              <>
                {" "}
                First bad seq: {s.firstBadSeq ?? "–"}. {s.problem}
              </>
            ) : null}
          </p>
          {s.trustedKey ? (
            <p className="muted" style={{ margin: "0 0 4px" }}>
              Trusted: {s.trustedKey}.
            </p>
          ) : null}
          <VerificationLevels summary={s} />
          {!s.ok && (s.problems ?? []).length > 0 ? (
            <details style={{ marginTop: 6 }}>
              <summary>All problems ({formatCount(s.problemsTotal ?? s.problems!.length)})</summary>
              <ul style={{ margin: "4px 0 0" }}>
                {s.problems!.map((p, i) => (
                  <li key={i}>{p}</li>
                ))}
              </ul>
            </details>
          ) : null}
          {notes.length > 0 ? (
            <ul className="muted" style={{ margin: "6px 0 0" }}>
              {notes.map((n, i) => (
                <li key={i}>{n}</li>
              ))}
            </ul>
          ) : null}
        </>
      ) : (
        <p className="muted">Not verified yet.</p>
      )}
    </div>
  );
}

export function VerificationPanel() {
  const trpc = useTRPC();
  const qc = useQueryClient();
  const status = useQuery(trpc.audit.status.queryOptions());
  const job = useQuery({
    ...trpc.audit.verifyJob.queryOptions(),
    refetchInterval: (q) => (q.state.data?.status === "running" ? 400 : false),
  });
  const verify = useMutation(
    trpc.audit.verify.mutationOptions({ onSuccess: (r) => qc.setQueryData(trpc.audit.verifyJob.queryKey(), r.job) }),
  );
  const j = job.data ?? null;

  // When a job ends, the ledger has a new "audit.verify" event: refresh the status and the events list. Keyed on
  // the job's id and status (not the polled object, new on every refetch); qc and trpc are stable per provider.
  const jobId = j?.id;
  const jobStatus = j?.status;
  useEffect(() => {
    if (jobStatus !== undefined && jobStatus !== "running") void qc.invalidateQueries({ queryKey: trpc.audit.pathKey() });
  }, [jobId, jobStatus, qc, trpc]);

  if (status.isPending)
    return (
      <section className="panel" aria-label="Verification">
        <Loading what="Loading the last verification" />
      </section>
    );
  if (status.error)
    return (
      <section className="panel" aria-label="Verification">
        <ErrorState error={status.error} title="Could not load the last verification" />
      </section>
    );

  const last = status.data.lastVerification;
  const fromJob =
    j && j.status === "finished" && j.summary && j.seq !== null && (!last || j.seq > last.seq)
      ? { summary: j.summary, at: j.finishedAt ?? j.startedAt, by: j.startedBy }
      : null;
  const shown: Shown | null = fromJob ?? (last ? { summary: last.result, at: last.at, by: last.by } : null);
  const running = j?.status === "running";

  return (
    <section className="panel" aria-label="Verification">
      <h2 style={{ marginTop: 0 }}>Verification</h2>
      <p className="muted">
        Recomputes every event&apos;s hash and chain, every checkpoint&apos;s signature and Merkle root, and every hash the ledger recorded
        from today&apos;s tables and files; then says whether anything outside the server (a trusted checkpoint or a witness) anchors the
        log. &ldquo;Verify now&rdquo; trusts <strong>the server&apos;s current public key</strong> (
        <code className="mono">{status.data.fingerprint.slice(0, 19)}…</code>) and, as anchors, the cosignatures of the witnesses this
        server is configured with: it is the operator&apos;s own check. An auditor&apos;s independent check is{" "}
        <code>npm run cli -- audit verify</code>, or <code>node verify-bundle.mjs</code> in a downloaded bundle, with a key, trusted
        checkpoint or witness key of their own.
      </p>
      {running ? <Progress checked={j!.checked} total={j!.total} /> : null}
      {j?.status === "failed" ? <ErrorState error={j.error} title="The verification could not run" /> : null}
      <VerificationResult shown={shown} />
      <div className="row" style={{ marginTop: 12 }}>
        <button type="button" className="primary" disabled={running || verify.isPending} onClick={() => verify.mutate()}>
          {running ? "Verifying…" : "Verify now"}
        </button>
        {running ? (
          <span className="muted">
            started {formatTime(j!.startedAt)} by {j!.startedBy}; one verification runs at a time
          </span>
        ) : null}
      </div>
      <FormError error={verify.error} />
    </section>
  );
}
