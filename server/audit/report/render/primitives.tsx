/**
 * The small pieces every section of the auditor's report is built from: how times, numbers, percentages, hashes
 * and JSON values are printed, tables and fact lists, and the two labels each printed record carries (the ledger
 * events behind it, and what the content check found for it).
 *
 * Invariants: values are passed to React as text or attributes, never as markup, so React escapes all of them;
 * the formatting is deterministic (same facts → same bytes: `export --verify` re-renders and compares).
 */
import { Fragment, type ReactNode } from "react";
import type { ReportFacts } from "../collect-report";

/** ISO time without fractional seconds; "–" when absent. */
export const time = (iso: string | null | undefined): string => (iso ? iso.replace(/\.\d+Z$/, "Z") : "–");
/** Integers as they are, other numbers to 4 significant digits; "–" when absent. */
export const num = (v: unknown): string =>
  typeof v === "number" ? (Number.isInteger(v) ? String(v) : v.toPrecision(4)) : v === null || v === undefined ? "–" : String(v);
export const pct = (v: unknown): string => (typeof v === "number" ? `${(v * 100).toFixed(1)} %` : "–");

/** A hash or identifier in monospace; "–" when absent. */
export function Code({ value }: { value: string | null | undefined }) {
  return value ? <code>{value}</code> : "–";
}

/** A JSON value as compact text (recipes, parameters, old → new values). */
export function Json({ value }: { value: unknown }) {
  return <code className="json">{JSON.stringify(value)}</code>;
}

/** A captioned table; with no rows, a line saying none was recorded instead. */
export function Table({ caption, head, rows }: { caption: string; head: string[]; rows: ReactNode[][] }) {
  if (rows.length === 0) return <p className="muted">{caption}: none recorded.</p>;
  return (
    <table>
      <caption>{caption}</caption>
      <thead>
        <tr>
          {head.map((h, i) => (
            <th key={i} scope="col">
              {h}
            </th>
          ))}
        </tr>
      </thead>
      <tbody>
        {rows.map((r, i) => (
          <tr key={i}>
            {r.map((c, j) => (
              <td key={j}>{c}</td>
            ))}
          </tr>
        ))}
      </tbody>
    </table>
  );
}

/** A definition list of label → value pairs (class "facts": a two-column grid on screen). */
export function Facts({ items }: { items: [string, ReactNode][] }) {
  return (
    <dl className="facts">
      {items.map(([k, v]) => (
        <Fragment key={k}>
          <dt>{k}</dt>
          <dd>{v}</dd>
        </Fragment>
      ))}
    </dl>
  );
}

/** Section heading with the Annex IV points it answers. */
export function SectionHeading({ children, annex }: { children: ReactNode; annex: string }) {
  return (
    <h2>
      {children} <span className="annex">{annex}</span>
    </h2>
  );
}

/** A link to a cited ledger event in the integrity appendix. */
export function EventLink({ seq }: { seq: number }) {
  return <a href={`#ev-${seq}`}>#{seq}</a>;
}

type ReportContentFacts = ReportFacts["content"];

/** What the content check found for one printed record (preceded by a space): checked against the ledger, failed, or not covered. */
export function ContentLabel({ content, type, id }: { content: ReportContentFacts; type: string; id: number | string }) {
  const label = (cls: string, text: string) => (
    <>
      {" "}
      <span className={`content ${cls}`}>{text}</span>
    </>
  );
  if (!content) return label("nc", "content not checked");
  const e = content.entities[`${type}:${id}`];
  if (!e || e.status === "not covered") return label("nc", "not covered by the ledger");
  if (e.status === "failed") return label("bad", `content check FAILED: ${e.problems.join("; ")}`);
  return label("ok", `checked against the ledger${e.notCovered.length ? `; not covered by the ledger: ${e.notCovered.join(", ")}` : ""}`);
}

/** Builds the label printed after every record: its ledger events (linked to the appendix) and its content-check result. */
export type Refs = (type: string, id: number | string) => ReactNode;

export function makeRefs(f: ReportFacts): Refs {
  const bySeq = new Map<string, number[]>();
  for (const e of f.citedEvents) {
    const k = `${e.entityType}:${e.entityId}`;
    bySeq.set(k, [...(bySeq.get(k) ?? []), e.seq]);
  }
  return function refs(type, id) {
    const seqs = bySeq.get(`${type}:${id}`) ?? [];
    return (
      <>
        {seqs.length > 0 && (
          <span className="ref">
            ledger{" "}
            {seqs.map((s, i) => (
              <Fragment key={s}>
                {i > 0 && " "}
                <EventLink seq={s} />
              </Fragment>
            ))}
          </span>
        )}
        <ContentLabel content={f.content} type={type} id={id} />
      </>
    );
  };
}

/** Signatures of a record (printed name, time, meaning, comment), or `empty` when there are none. */
export function SignatureList({
  signatures,
  refs,
  empty,
}: {
  signatures: { id: number; text: string; comment: string }[];
  refs: Refs;
  empty: string;
}) {
  if (signatures.length === 0) return <p className="missing">{empty}</p>;
  return (
    <ul className="signatures">
      {signatures.map((g) => (
        <li key={g.id}>
          {g.text}
          {g.comment ? ` — “${g.comment}”` : ""} {refs("signature", g.id)}
        </li>
      ))}
    </ul>
  );
}
