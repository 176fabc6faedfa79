"use client";
/** The human decisions that produced each run (initial config, changes, notes, corrections), oldest first. */
import type { Comparison as RunComparison } from "./comparison-type";
import { formatTime } from "@/app/_components/format";
import { originText } from "@/contracts/origin-words";
import { runColor, runLabel } from "./run-colors";

const show = (v: unknown) => (v === null || v === undefined ? "–" : typeof v === "string" ? v : JSON.stringify(v));

export function DecisionsPanel({ comparison }: { comparison: RunComparison }) {
  return (
    <section className="panel" aria-label="Decisions">
      <h2 style={{ marginTop: 0 }}>Decisions</h2>
      <div className="grid2">
        {comparison.runs.map((r, i) => {
          const list = comparison.decisions[i] ?? [];
          return (
            <div key={r.id} aria-label={`Decisions of ${r.name}`} role="group">
              <h3 style={{ color: runColor(i), marginTop: 0 }}>
                {runLabel(r, comparison.runs)} <span className="muted">· {originText(r.origin, r.parentRunId, null)}</span>
              </h3>
              {list.length === 0 ? (
                <p className="muted">No decisions recorded.</p>
              ) : (
                <ol style={{ margin: 0, paddingLeft: 18 }}>
                  {list.map((d) => (
                    <li key={d.id} style={{ marginBottom: 4 }}>
                      <strong>{d.kind}</strong>
                      {d.path ? (
                        <>
                          {" "}
                          <code className="mono">{d.path}</code>: {show(d.oldValue)} → {show(d.newValue)}
                        </>
                      ) : null}
                      {" — "}
                      {d.rationale}{" "}
                      <span className="muted">
                        ({d.author}, {formatTime(d.createdAt)})
                      </span>
                    </li>
                  ))}
                </ol>
              )}
            </div>
          );
        })}
      </div>
    </section>
  );
}
