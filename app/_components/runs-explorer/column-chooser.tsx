"use client";
/** Chooses the table's param and metric columns (metrics as last, min or max) from what the runs actually record. */
import type { ColumnInfo } from "@/server/runs/explore";

export function ColumnChooser({
  info,
  chosen,
  onChange,
}: {
  info: ColumnInfo | undefined;
  chosen: string[];
  onChange: (columns: string[]) => void;
}) {
  const toggle = (field: string, on: boolean) => onChange(on ? [...chosen, field] : chosen.filter((c) => c !== field));
  return (
    <details className="chooser">
      <summary>Columns ({chosen.length})</summary>
      <div className="chooser-body" role="group" aria-label="Choose columns">
        {!info ? (
          <p className="muted">Loading columns…</p>
        ) : (
          <>
            <h3>Hyperparameters</h3>
            {info.params.length === 0 ? <p className="muted">No runs yet.</p> : null}
            {info.params.map((p) => {
              const field = `params.${p.path}`;
              return (
                <label key={field} className="check">
                  <input
                    type="checkbox"
                    aria-label={field}
                    checked={chosen.includes(field)}
                    onChange={(e) => toggle(field, e.target.checked)}
                  />
                  <span className="mono">{p.path}</span>{" "}
                  <span className="muted">
                    {p.type} · {p.runs} runs
                  </span>
                </label>
              );
            })}
            <h3>Metrics</h3>
            {info.metrics.length === 0 ? <p className="muted">No metrics recorded yet.</p> : null}
            {info.metrics.map((m) => (
              <div key={m.key} className="check">
                <span className="mono" style={{ minWidth: 140 }}>
                  {m.key}
                </span>
                {(["last", "min", "max"] as const).map((stat) => {
                  const field = stat === "last" ? `metrics.${m.key}` : `metrics.${m.key}.${stat}`;
                  return (
                    <label key={stat} style={{ marginRight: 8 }}>
                      <input
                        type="checkbox"
                        aria-label={field}
                        checked={chosen.includes(field)}
                        onChange={(e) => toggle(field, e.target.checked)}
                      />{" "}
                      {stat}
                    </label>
                  );
                })}
              </div>
            ))}
          </>
        )}
      </div>
    </details>
  );
}
