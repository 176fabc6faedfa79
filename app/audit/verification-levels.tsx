"use client";
/**
 * One verification's result per level, as recorded in its "audit.verify" event: the chain (events and signed
 * checkpoints), the content (tables and files re-derived and compared with the hashes the ledger recorded), the
 * anchor (a trusted checkpoint or witness cosignature outside the server) and, for the live database, the
 * protective triggers. Each level says plainly what was proved or what failed; nothing here fetches data.
 * Older verifications recorded no levels: they show their one-line result only.
 */
import type { ContentProblem } from "@/server/audit/content/types";
import type { VerifySummary, VerifySummaryLevels } from "@/server/audit/verify-summary";
import { Hash } from "@/app/_components/hash";
import { formatCount, formatCountOf } from "@/app/_components/format";

const LEVEL_NAME = { textTransform: "none", letterSpacing: 0, fontSize: 14, color: "var(--ink)" } as const;

export const NOT_ANCHORED_TEXT =
  "Not anchored: a holder of the signing key could have rewritten history; keep a trusted checkpoint or configure a witness.";

function State({ ok, okText, badText, warn }: { ok: boolean; okText: string; badText: string; warn?: boolean }) {
  return <span className={`badge ${ok ? "completed" : warn ? "cancelled" : "failed"}`}>{ok ? okText : badText}</span>;
}

/** A recorded or found value: hashes shortened with a copy button, anything else as code. */
function Value({ value, label }: { value: string | null; label: string }) {
  if (value === null) return <span className="muted">none</span>;
  return /^[0-9a-f]{64}$/.test(value) ? (
    <Hash value={value} label={label} />
  ) : (
    <code className="mono" style={{ wordBreak: "break-all" }}>
      {value}
    </code>
  );
}

function ContentProblems({ problems, total }: { problems: ContentProblem[]; total: number }) {
  return (
    <>
      <div className="table-scroll">
        <table aria-label="Content problems" style={{ marginTop: 8 }}>
          <thead>
            <tr>
              <th>Entity</th>
              <th>Field</th>
              <th>Recorded in the ledger</th>
              <th>Found now</th>
              <th className="num">Seq</th>
              <th>Problem</th>
            </tr>
          </thead>
          <tbody>
            {problems.map((p, i) => (
              <tr key={i}>
                <td>
                  {p.entityType} {p.entityId}
                </td>
                <td>
                  <code>{p.field}</code>
                </td>
                <td>
                  <Value value={p.recorded} label={`recorded ${p.field} of ${p.entityType} ${p.entityId}`} />
                </td>
                <td>
                  <Value value={p.found} label={`found ${p.field} of ${p.entityType} ${p.entityId}`} />
                </td>
                <td className="num">{p.seq ?? "–"}</td>
                <td>{p.message}</td>
              </tr>
            ))}
          </tbody>
        </table>
      </div>
      {total > problems.length ? (
        <p className="muted">
          and {formatCount(total - problems.length)} more (run <code>npm run cli -- audit verify</code> for the full list).
        </p>
      ) : null}
    </>
  );
}

function ChainRow({ chain, summary }: { chain: VerifySummaryLevels["chain"]; summary: VerifySummary }) {
  return (
    <tr aria-label="Chain">
      <th scope="row" style={LEVEL_NAME}>
        Chain
      </th>
      <td>
        <State ok={chain.ok} okText="Chain intact" badText="Chain FAILED" />
      </td>
      <td>
        {chain.ok ? (
          <>
            {formatCountOf(chain.events, "event")}: every event&apos;s hash and chain link recomputed;{" "}
            {formatCountOf(chain.checkpoints, "signed checkpoint")}: signature and Merkle root checked.
          </>
        ) : (
          <p style={{ margin: 0 }}>
            <strong>{chain.problem}</strong>
            {summary.firstBadSeq !== null ? <> (first bad event: seq {summary.firstBadSeq})</> : null}
          </p>
        )}
      </td>
    </tr>
  );
}

function ContentRow({ content }: { content: VerifySummaryLevels["content"] }) {
  const skipped = Boolean(content.skipped);
  return (
    <tr aria-label="Content">
      <th scope="row" style={LEVEL_NAME}>
        Content
      </th>
      <td>
        {skipped ? (
          <span className="badge">Content not checked</span>
        ) : (
          <State ok={content.ok} okText="Content intact" badText="Content FAILED" />
        )}
      </td>
      <td>
        {skipped ? (
          <span className="muted">{content.skipped}</span>
        ) : content.ok ? (
          <>
            {formatCountOf(content.checked, "recorded fact")} (configs, metric digests, checkpoint files, evaluations, decisions, documents,
            weights, alias moves, signatures) re-derived from the tables and files and compared with the ledger.
          </>
        ) : (
          <>
            <strong>{formatCountOf(content.problemsTotal, "problem")}</strong> among {formatCountOf(content.checked, "fact")} compared: the
            tables or files no longer match what the ledger recorded.
            <ContentProblems problems={content.problems} total={content.problemsTotal} />
          </>
        )}
        {content.notCovered.length > 0 ? (
          <details style={{ marginTop: 6 }}>
            <summary className="muted">Not covered by the ledger ({content.notCovered.length})</summary>
            <ul style={{ margin: "4px 0 0" }}>
              {content.notCovered.map((n, i) => (
                <li key={i}>{n}</li>
              ))}
            </ul>
          </details>
        ) : null}
      </td>
    </tr>
  );
}

/** One entry per anchor name (a witness cosigns many sizes): its largest tree size, largest first. */
function largestPerAnchor(by: VerifySummaryLevels["anchor"]["by"]) {
  const best = new Map<string, VerifySummaryLevels["anchor"]["by"][number]>();
  for (const b of by) if ((best.get(b.name)?.treeSize ?? -1) < b.treeSize) best.set(b.name, b);
  return [...best.values()].sort((x, y) => y.treeSize - x.treeSize);
}

function AnchorRow({ anchor }: { anchor: VerifySummaryLevels["anchor"] }) {
  return (
    <tr aria-label="Anchor">
      <th scope="row" style={LEVEL_NAME}>
        Anchor
      </th>
      <td>
        {anchor.problem ? (
          <span className="badge failed">Anchor FAILED</span>
        ) : (
          <State ok={anchor.anchored} okText={`Anchored up to ${formatCount(anchor.treeSize)}`} badText="Not anchored" warn />
        )}
      </td>
      <td>
        {anchor.problem ? (
          <p style={{ margin: "0 0 4px" }}>
            <strong>{anchor.problem}</strong>
          </p>
        ) : null}
        {anchor.anchored ? (
          <>
            Anchored up to tree size {formatCount(anchor.treeSize)} by{" "}
            {largestPerAnchor(anchor.by).map((b, i) => (
              <span key={b.name}>
                {i > 0 ? ", " : ""}
                {b.name.includes(b.kind) ? null : `${b.kind} `}
                <strong>{b.name}</strong> (tree size {formatCount(b.treeSize)})
              </span>
            ))}
            : history up to there cannot have been rewritten or truncated unseen.
          </>
        ) : (
          <>{NOT_ANCHORED_TEXT}</>
        )}
      </td>
    </tr>
  );
}

function TriggersRow({ triggers }: { triggers: NonNullable<VerifySummaryLevels["triggers"]> }) {
  return (
    <tr aria-label="Triggers">
      <th scope="row" style={LEVEL_NAME}>
        Triggers
      </th>
      <td>
        <State ok={triggers.ok} okText="Triggers intact" badText="Triggers FAILED" />
      </td>
      <td>
        {triggers.ok ? (
          <>The database&apos;s protective triggers (append-only ledger, immutable records) are all present and unaltered.</>
        ) : (
          <>
            {triggers.missing.length > 0 ? (
              <p style={{ margin: 0 }}>
                Missing:{" "}
                {triggers.missing.map((t) => (
                  <code key={t} style={{ marginRight: 6 }}>
                    {t}
                  </code>
                ))}
              </p>
            ) : null}
            {triggers.altered.length > 0 ? (
              <p style={{ margin: 0 }}>
                Altered:{" "}
                {triggers.altered.map((t) => (
                  <code key={t} style={{ marginRight: 6 }}>
                    {t}
                  </code>
                ))}
              </p>
            ) : null}
          </>
        )}
      </td>
    </tr>
  );
}

export function VerificationLevels({ summary }: { summary: VerifySummary }) {
  const levels = summary.levels;
  if (!levels) return <p className="muted">This verification was recorded before results were kept per level (chain, content, anchor).</p>;
  return (
    <div className="table-scroll">
      <table aria-label="Verification levels" style={{ marginTop: 8 }}>
        <thead>
          <tr>
            <th style={{ width: 90 }}>Level</th>
            <th style={{ width: 170 }}>Result</th>
            <th>What was proved</th>
          </tr>
        </thead>
        <tbody>
          <ChainRow chain={levels.chain} summary={summary} />
          <ContentRow content={levels.content} />
          <AnchorRow anchor={levels.anchor} />
          {levels.triggers ? <TriggersRow triggers={levels.triggers} /> : null}
        </tbody>
      </table>
    </div>
  );
}
