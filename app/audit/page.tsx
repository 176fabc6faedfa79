"use client";
/**
 * The audit page: the server's public key and fingerprint (downloadable; a warning when the server lacks the key the
 * ledger names and so cannot sign), the latest signed checkpoint (downloadable as a trusted checkpoint, with the public
 * key that signed it), the last verification result per level and "Verify now" (verification-panel.tsx), the auditor's report for each model
 * version (production first), and the ledger's events with filters (actor, action, entity, time): each event reads as a
 * sentence (app/_components/audit/event-sentence.ts), its payload expands in full under its row, and its inclusion
 * proof opens right under its row too (not at the end of the list).
 * Every role can use it; nothing here changes project data (verify and export are recorded in the ledger).
 */
import Link from "next/link";
import { useEffect, useRef, useState } from "react";
import { useQuery } from "@tanstack/react-query";
import { useTRPC } from "@/app/_trpc/client";
import { Shell } from "@/app/_components/shell";
import { Empty, ErrorState, Loading } from "@/app/_components/states";
import { Hash } from "@/app/_components/hash";
import { downloadText as download } from "@/app/_components/download";
import { formatCount, formatTime } from "@/app/_components/format";
import { eventSentence } from "@/app/_components/audit/event-sentence";
import { VerificationPanel } from "./verification-panel";
import { WitnessesPanel } from "./witnesses-panel";

function KeyAndVerification() {
  const trpc = useTRPC();
  const status = useQuery(trpc.audit.status.queryOptions());
  const trusted = useQuery(trpc.audit.trustedCheckpoint.queryOptions());
  if (status.isPending) return <Loading what="Loading the ledger's status" />;
  if (status.error) return <ErrorState error={status.error} title="Could not load the ledger's status" />;
  const s = status.data;
  return (
    <div className="form-grid" style={{ gridTemplateColumns: "repeat(auto-fit, minmax(320px, 1fr))" }}>
      <section className="panel" aria-label="Server key">
        <h2 style={{ marginTop: 0 }}>Server signing key</h2>
        <p className="muted">Ed25519. Checkpoints are signed with it; compare its fingerprint with the one you were given.</p>
        {s.signingKeyProblem ? (
          <div className="state error" role="alert" data-testid="signing-key-problem">
            <strong>This server cannot sign checkpoints</strong>
            <p style={{ margin: "4px 0 0" }}>{s.signingKeyProblem}</p>
            {s.keyInForce ? (
              <p style={{ margin: "4px 0 0" }}>
                The ledger&apos;s key in force is <code className="mono">{s.keyInForce.fingerprint}</code>, introduced by a rotation this
                server&apos;s key signed; the newest checkpoints verify with it.{" "}
                <button
                  type="button"
                  onClick={() => download("runledger-audit-public-key-in-force.pem", s.keyInForce!.publicKeyPem, "application/x-pem-file")}
                >
                  Download the key in force
                </button>
              </p>
            ) : null}
          </div>
        ) : null}
        <p>
          Fingerprint:{" "}
          <code className="mono" data-testid="key-fingerprint" style={{ wordBreak: "break-all" }}>
            {s.fingerprint}
          </code>
        </p>
        <div className="row">
          <button type="button" onClick={() => download("runledger-audit-public-key.pem", s.publicKeyPem, "application/x-pem-file")}>
            {s.keyInForce ? "Download this server's key" : "Download public key"}
          </button>
          {trusted.data ? (
            <button
              type="button"
              title={
                trusted.data.publicKeyPem
                  ? "The latest checkpoint with the public key that signed it"
                  : "The latest checkpoint, without a public key: it is not signed by the key in force at its tree size"
              }
              onClick={() =>
                download(
                  `runledger-checkpoint-${trusted.data!.checkpointId ?? "latest"}.json`,
                  JSON.stringify(trusted.data, null, 2) + "\n",
                )
              }
            >
              Download latest checkpoint
            </button>
          ) : null}
        </div>
        <dl className="kv" style={{ marginTop: 12 }}>
          <dt>Events</dt>
          <dd>{formatCount(s.events)}</dd>
          <dt>Latest checkpoint</dt>
          <dd>
            {s.latestCheckpoint ? (
              <>
                #{s.latestCheckpoint.id} · tree size {formatCount(s.latestCheckpoint.treeSize)} · {formatTime(s.latestCheckpoint.at)} ·{" "}
                {s.latestCheckpoint.reason} · root <Hash value={s.latestCheckpoint.rootHash} label="checkpoint root hash" /> ·{" "}
                {s.latestCheckpoint.signatureValid ? "signature valid" : <strong className="error-text">signature NOT valid</strong>}
              </>
            ) : (
              "none yet"
            )}
          </dd>
        </dl>
      </section>
    </div>
  );
}

function Reports() {
  const trpc = useTRPC();
  const targets = useQuery(trpc.audit.reportTargets.queryOptions());
  if (targets.isPending) return <Loading what="Loading model versions" />;
  if (targets.error) return <ErrorState error={targets.error} />;
  return (
    <section className="panel" aria-label="Auditor's reports">
      <h2 style={{ marginTop: 0 }}>Auditor&apos;s reports</h2>
      {targets.data.length === 0 ? (
        <Empty title="No model versions yet" hint="Register a model version to produce its report." />
      ) : (
        <div className="table-scroll">
          <table aria-label="Report targets">
            <thead>
              <tr>
                <th>Model</th>
                <th>Version</th>
                <th>Aliases</th>
                <th>Weights</th>
                <th>Report</th>
              </tr>
            </thead>
            <tbody>
              {targets.data.map((t) => (
                <tr key={t.modelVersionId}>
                  <td>{t.model}</td>
                  <td>v{t.version}</td>
                  <td>{t.aliases.join(", ") || "–"}</td>
                  <td>
                    <Hash value={t.weightsSha256} label={`weights of ${t.model} v${t.version}`} />
                  </td>
                  <td className="row">
                    <Link href={`/report/${t.modelVersionId}`}>
                      Open report of {t.model} v{t.version}
                    </Link>
                    <form method="post" action={`/api/report/${t.modelVersionId}?format=tar`} style={{ display: "inline" }}>
                      <button type="submit">Download bundle</button>
                    </form>
                  </td>
                </tr>
              ))}
            </tbody>
          </table>
        </div>
      )}
    </section>
  );
}

type Filters = { actor: string; action: string; entityType: string; entityId: string; from: string; to: string };
const EMPTY: Filters = { actor: "", action: "", entityType: "", entityId: "", from: "", to: "" };

function Events() {
  const trpc = useTRPC();
  const [draft, setDraft] = useState<Filters>(EMPTY);
  const [filters, setFilters] = useState<Filters>(EMPTY);
  // The proof opens inline under its event's row (one at a time); payloads expand in full, any number at once.
  const [proofSeq, setProofSeq] = useState<number | null>(null);
  const [openPayloads, setOpenPayloads] = useState<ReadonlySet<number>>(new Set());
  const togglePayload = (seq: number) =>
    setOpenPayloads((prev) => {
      const next = new Set(prev);
      if (next.has(seq)) next.delete(seq);
      else next.add(seq);
      return next;
    });
  const actions = useQuery(trpc.audit.actions.queryOptions());
  const input = Object.fromEntries(Object.entries(filters).filter(([, v]) => v !== "")) as Partial<Filters>;
  const [limit, setLimit] = useState(50);
  const events = useQuery({ ...trpc.audit.events.queryOptions({ ...input, limit }), placeholderData: (prev) => prev });
  const rows = events.data?.events ?? [];
  const field = (k: keyof Filters, label: string, placeholder = "") => (
    <label className="field">
      <span>{label}</span>
      <input
        aria-label={`Filter by ${label.toLowerCase()}`}
        value={draft[k]}
        placeholder={placeholder}
        onChange={(e) => setDraft({ ...draft, [k]: e.target.value })}
      />
    </label>
  );
  return (
    <section className="panel" aria-label="Audit events">
      <h2 style={{ marginTop: 0 }}>Events</h2>
      <form
        aria-label="Event filters"
        onSubmit={(e) => {
          e.preventDefault();
          setFilters(draft);
          setLimit(50);
        }}
      >
        <div className="form-grid">
          {field("actor", "Actor", "name or user id")}
          <label className="field">
            <span>Action</span>
            <select aria-label="Filter by action" value={draft.action} onChange={(e) => setDraft({ ...draft, action: e.target.value })}>
              <option value="">any</option>
              {[...new Set((actions.data ?? []).map((a) => a.split(".")[0]!))].map((g) => (
                <option key={g} value={g}>
                  {g}.*
                </option>
              ))}
              {(actions.data ?? []).map((a) => (
                <option key={a} value={a}>
                  {a}
                </option>
              ))}
            </select>
          </label>
          {field("entityType", "Entity type", "e.g. modelVersion")}
          {field("entityId", "Entity id")}
          {field("from", "From", "2026-01-31T00:00:00Z")}
          {field("to", "To", "ISO-8601 time")}
        </div>
        <div className="row" style={{ marginTop: 8 }}>
          <button type="submit" className="primary">
            Apply filters
          </button>
          <button
            type="button"
            onClick={() => {
              setDraft(EMPTY);
              setFilters(EMPTY);
            }}
          >
            Clear
          </button>
        </div>
      </form>
      {events.error ? (
        <ErrorState error={events.error} title="Could not load events" />
      ) : events.isPending ? (
        <Loading what="Loading events" />
      ) : rows.length === 0 ? (
        <Empty title="No events match" hint="Loosen the filters." />
      ) : (
        <div className="table-scroll">
          <table aria-label="Audit events" style={{ marginTop: 12 }}>
            <thead>
              <tr>
                <th>Seq</th>
                <th>Time (UTC)</th>
                <th>Event</th>
                <th>Entity</th>
                <th>Leaf</th>
                <th></th>
              </tr>
            </thead>
            {/* One tbody per event: its row, then (when opened) its proof right under it, then its payload. */}
            {rows.map((e) => {
              const open = openPayloads.has(e.seq);
              return (
                <tbody key={e.seq}>
                  <tr data-seq={e.seq}>
                    <td>{e.seq}</td>
                    <td>{formatTime(e.at)}</td>
                    <td>
                      <span>{eventSentence(e)}</span>{" "}
                      <span className="muted" style={{ fontSize: 11 }}>
                        <span className="badge">{e.role}</span> <code>{e.action}</code>
                      </span>
                    </td>
                    <td>
                      {e.entityType} {e.entityId}
                    </td>
                    <td>
                      <Hash value={e.leafHash} label={`leaf hash of event ${e.seq}`} />
                    </td>
                    <td className="row" style={{ flexWrap: "nowrap" }}>
                      <button
                        type="button"
                        aria-expanded={open}
                        aria-label={`Payload of event ${e.seq}`}
                        onClick={() => togglePayload(e.seq)}
                      >
                        Payload
                      </button>
                      <button
                        type="button"
                        aria-expanded={proofSeq === e.seq}
                        onClick={() => setProofSeq(proofSeq === e.seq ? null : e.seq)}
                      >
                        Proof
                      </button>
                    </td>
                  </tr>
                  {proofSeq === e.seq ? (
                    <tr>
                      <td colSpan={6}>
                        <Proof seq={e.seq} onClose={() => setProofSeq(null)} />
                      </td>
                    </tr>
                  ) : null}
                  {open ? (
                    <tr>
                      <td colSpan={6}>
                        <pre
                          role="region"
                          aria-label={`Full payload of event ${e.seq}`}
                          className="mono"
                          style={{
                            whiteSpace: "pre-wrap",
                            wordBreak: "break-all",
                            fontSize: 11,
                            margin: 0,
                            maxHeight: 480,
                            overflow: "auto",
                          }}
                        >
                          {JSON.stringify(e.payload, null, 2)}
                        </pre>
                      </td>
                    </tr>
                  ) : null}
                </tbody>
              );
            })}
          </table>
        </div>
      )}
      {events.data?.nextBeforeSeq && limit < 500 ? (
        <button type="button" onClick={() => setLimit(limit + 50)} disabled={events.isFetching}>
          Load older events
        </button>
      ) : null}
    </section>
  );
}

function Proof({ seq, onClose }: { seq: number; onClose: () => void }) {
  const trpc = useTRPC();
  const proof = useQuery(trpc.audit.inclusionProof.queryOptions({ seq }));
  // Opened under its row: scroll only as far as needed to show it (a row near the bottom of the window would hide it).
  const ref = useRef<HTMLElement>(null);
  useEffect(() => {
    ref.current?.scrollIntoView({ block: "nearest" });
  }, [proof.isPending]);
  return (
    <aside ref={ref} aria-label={`Inclusion proof of event ${seq}`} className="panel" style={{ margin: 0 }}>
      <div className="row">
        <strong>Inclusion proof of event #{seq}</strong>
        <span className="spacer" />
        <button type="button" onClick={onClose}>
          Close
        </button>
      </div>
      {proof.isPending ? (
        <Loading what="Computing the proof" />
      ) : proof.error ? (
        <ErrorState error={proof.error} />
      ) : (
        <>
          <p>
            {proof.data.verified ? "Verified" : "NOT verified"}: leaf {proof.data.leafIndex} of a tree of {proof.data.treeSize} events, root{" "}
            <Hash value={proof.data.rootHash} label="root hash" /> —{" "}
            {proof.data.signedRoot
              ? `the root signed in checkpoint #${proof.data.checkpoint!.id}`
              : "no signed checkpoint at this size yet"}
            .
          </p>
          <ol className="mono">
            {proof.data.proof.map((h, i) => (
              <li key={i}>{h}</li>
            ))}
          </ol>
        </>
      )}
    </aside>
  );
}

export default function AuditPage() {
  return (
    <Shell>
      {() => (
        <>
          <h1>Audit ledger</h1>
          <p className="subtitle">
            Every change in Runledger, sign-ins included, is an event in an append-only, hash-chained ledger; signed Merkle checkpoints make
            tampering evident to anyone with the public key.
          </p>
          <KeyAndVerification />
          <VerificationPanel />
          <WitnessesPanel />
          <Reports />
          <Events />
        </>
      )}
    </Shell>
  );
}
