"use client";
/**
 * The data each run trained and validated on (dataset, version sha256, split sha256), with a banner saying
 * whether the comparison is like for like (same dataset version and split) and, if not, why not.
 */
import type { Comparison as RunComparison } from "./comparison-type";
import { Hash } from "@/app/_components/hash";
import { runColor, runLabel } from "./run-colors";

export function DataPanel({ comparison }: { comparison: RunComparison }) {
  return (
    <section className="panel" aria-label="Data">
      <h2 style={{ marginTop: 0 }}>Data</h2>
      {comparison.likeForLike ? (
        <div className="banner ok" role="status">
          Like for like: every run used the same dataset version and split.
        </div>
      ) : (
        <div className="banner warn" role="alert" aria-label="Not like for like">
          <strong>Not like for like.</strong> These runs did not all train and validate on the same rows, so their metrics are not directly
          comparable:
          <ul style={{ margin: "4px 0 0" }}>
            {comparison.dataNotes.map((n) => (
              <li key={n}>{n}</li>
            ))}
          </ul>
        </div>
      )}
      <div className="table-scroll">
        <table aria-label="Dataset version and split per run">
          <thead>
            <tr>
              <th>Run</th>
              <th>Dataset</th>
              <th>Dataset version</th>
              <th>Split</th>
            </tr>
          </thead>
          <tbody>
            {comparison.runs.map((r, i) => (
              <tr key={r.id}>
                <td style={{ color: runColor(i) }}>{runLabel(r, comparison.runs)}</td>
                <td>{r.data.datasetName ?? <span className="muted">not recorded</span>}</td>
                <td>
                  {r.data.datasetVersionId ? (
                    <>
                      #{r.data.datasetVersionId} <Hash value={r.data.datasetVersionSha256} label="dataset version sha256" />
                    </>
                  ) : (
                    <span className="muted">not recorded</span>
                  )}
                </td>
                <td>
                  {r.data.splitId ? (
                    <>
                      #{r.data.splitId} <Hash value={r.data.splitSha256} label="split sha256" />
                    </>
                  ) : (
                    <span className="muted">not recorded</span>
                  )}
                </td>
              </tr>
            ))}
          </tbody>
        </table>
      </div>
    </section>
  );
}
