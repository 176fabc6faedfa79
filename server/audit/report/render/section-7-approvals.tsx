/**
 * Report section 7 (Annex IV 2(e), 2(g)): the promotion requests of this version with their signatures and the
 * self-approvals the four-eyes rule refused, and every alias move to this version.
 */
import { Fragment } from "react";
import type { ReportFacts } from "../collect-report";
import { Code, ContentLabel, EventLink, SectionHeading, SignatureList, Table, time, type Refs } from "./primitives";

type PromotionRequest = ReportFacts["approvals"]["requests"][number];

function RequestArticle({ p, refs }: { p: PromotionRequest; refs: Refs }) {
  return (
    <article className="request">
      <h3>
        Promotion request #{p.id}: {p.alias} — {p.status} {refs("promotionRequest", p.id)}
      </h3>
      <p className="meta">
        Requested by {p.requestedBy.name} on {time(p.createdAt)}
        {p.decidedAt ? `, decided ${time(p.decidedAt)}` : ""} · record sha256 <Code value={p.recordSha256} /> · cites evaluation #
        {p.evaluationId}
      </p>
      <p>Rationale: {p.rationale}</p>
      {p.approvalsRequiredAtRequest !== undefined && (
        <p>
          Approvals required: {p.approvalsRequired} (rule at request time: {p.approvalsRequiredAtRequest}
          {p.approvalsRequired !== p.approvalsRequiredAtRequest ? "; the model's rule was raised while the request was pending" : ""})
        </p>
      )}
      <RequestDocumentation p={p} />
      <SignatureList signatures={p.signatures} refs={refs} empty="No signatures." />
      {p.refusedSelfApprovals.length > 0 && (
        <p>
          <strong>Refused self-approvals</strong> (four eyes):{" "}
          {p.refusedSelfApprovals.map((r, i) => (
            <Fragment key={r.seq}>
              {i > 0 && "; "}
              {r.who} at {time(r.at)} ({r.reasons.join("; ")}) <EventLink seq={r.seq} />
            </Fragment>
          ))}
        </p>
      )}
    </article>
  );
}

/**
 * The documentation the request was made with (from its promotion.request event). Absent from report.json files
 * written before it was recorded, and from requests made before the check existed: nothing is printed for them.
 */
function RequestDocumentation({ p }: { p: PromotionRequest }) {
  const d = p.documentation;
  if (!d) return null;
  if (d.missing.length === 0) return <p>Documentation when requested: all {d.total} model-card and datasheet sections written.</p>;
  return (
    <p className="missing">
      Requested with {d.missing.length} of {d.total} documentation sections missing
      {d.acknowledgedMissing ? " (acknowledged by the requester)" : ""}:{" "}
      {d.missing.map((m) => `${m.document} of ${m.subjectName}: ${m.title}`).join("; ")}.
    </p>
  );
}

export function ApprovalsSection({ f, refs }: { f: ReportFacts; refs: Refs }) {
  const a = f.approvals;
  // report.json files written before requests carried their own rule must re-render to the same bytes
  // (export --verify compares), so their wording is kept as it was.
  const perRequestRule = a.requests.some((p) => p.approvalsRequiredAtRequest !== undefined);
  return (
    <section id="approvals">
      <SectionHeading annex="Annex IV 2(e), 2(g)">7. Approvals and signatures</SectionHeading>
      <p className="muted">
        Signatures record the printed name, time and meaning, are bound to the sha256 of the record signed, and were given after re-entering
        the password. People in the version&apos;s lineage cannot approve it.{" "}
        {perRequestRule ? (
          <>
            Each request is judged by the rule in force when it was made (a rule raised while it is pending applies to it too); this
            model&apos;s current rule is {a.approvalsRequired} approval(s) for production.
          </>
        ) : (
          <>This model needs {a.approvalsRequired} approval(s) for production.</>
        )}
      </p>
      {a.requests.length ? (
        a.requests.map((p) => <RequestArticle key={p.id} p={p} refs={refs} />)
      ) : (
        <p className="missing">No promotion request was made for this version.</p>
      )}
      <Table
        caption="Alias moves to this version"
        head={["Alias", "Moved by", "Time", "Promotion request", "Content"]}
        rows={a.aliasMoves.map((m) => [
          m.alias,
          m.movedBy,
          time(m.at),
          m.promotionRequestId !== null ? `#${m.promotionRequestId}` : "direct move",
          <ContentLabel content={f.content} type="aliasMove" id={m.id} />,
        ])}
      />
    </section>
  );
}
