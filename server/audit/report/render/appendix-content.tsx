/**
 * Appendix: content verification. What the content check run at export found across the whole ledger: intact, or
 * the problems (capped; the count is exact) with links to the events concerned, and what the ledger does not cover.
 * Also the one-line summary printed on the cover.
 */
import type { ReportFacts } from "../collect-report";
import { EventLink } from "./primitives";

type ReportContentFacts = ReportFacts["content"];

export function ContentSummary({ content }: { content: ReportContentFacts }) {
  if (!content) return "content not checked";
  if (content.skipped) return `content not checked (${content.skipped})`;
  return content.ok ? (
    `content check: intact (${content.checked} facts)`
  ) : (
    <strong>content check FAILED ({content.problemCount} problem(s))</strong>
  );
}

function Findings({ content }: { content: NonNullable<ReportContentFacts> }) {
  const problems = content.problems.length ? (
    <>
      <p className="missing">
        <strong>Content check FAILED: {content.problemCount} problem(s).</strong> The values printed for these records are NOT what the
        ledger recorded.
      </p>
      <ul>
        {content.problems.map((p, i) => (
          <li key={i}>
            {p.message}
            {p.seq !== null && (
              <>
                {" "}
                <EventLink seq={p.seq} />
              </>
            )}
          </li>
        ))}
      </ul>
      {content.problemCount > content.problems.length && (
        <p className="muted">… and {content.problemCount - content.problems.length} more.</p>
      )}
    </>
  ) : (
    <p>Content intact: {content.checked} facts compared, no difference.</p>
  );
  return (
    <>
      {problems}
      {content.notCovered.length > 0 && (
        <>
          <h3>Not covered by the ledger</h3>
          <ul>
            {content.notCovered.map((n, i) => (
              <li key={i}>{n}</li>
            ))}
          </ul>
        </>
      )}
    </>
  );
}

export function ContentAppendix({ content }: { content: ReportContentFacts }) {
  return (
    <section id="content-check" className="appendix">
      <h2>Appendix: content verification</h2>
      <p>
        At export, every table row and artifact file the ledger records was re-derived and compared with the hashes and values its events
        recorded (the whole ledger, not only this version). Each record above is labelled with the result:{" "}
        <span className="content ok">checked against the ledger</span>, <span className="content bad">content check FAILED</span>, or{" "}
        <span className="content nc">not covered by the ledger</span>. The bundle&apos;s facts.json lets <code>export --verify</code> and
        verify-bundle.mjs repeat the check offline.
      </p>
      {content ? (
        <Findings content={content} />
      ) : (
        <p className="missing">The content check was not run for this report: no fact above is verified against the ledger.</p>
      )}
    </section>
  );
}
