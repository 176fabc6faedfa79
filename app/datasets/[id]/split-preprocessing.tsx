/**
 * What a split fitted and fixed besides its partitions: the normalisation statistics (fitted on the train partition
 * only; a value becomes (v − a) / b), the label encoding (output index → class) and, for text, the vocabulary.
 * All three come from the split manifest the trainer recorded, so they are exactly what the model saw.
 */
import { Hash } from "@/app/_components/hash";
import { formatMetric } from "@/app/_components/format";

export type SplitPreprocessing = {
  normalization: { method: string; stats: Record<string, { a: number; b: number }> };
  labelEncoding?: string[] | null;
  vocabulary?: { size: number; sequenceLength: number; sha256: string };
};

const STAT_NAMES: Record<string, [string, string]> = { standard: ["Mean", "Standard deviation"], minmax: ["Minimum", "Range (max − min)"] };

/** `columnOrder`: the dataset's columns, so statistics read in file order (the manifest's keys are sorted by name). */
export function SplitPreprocessingDetails({ splitId, m, columnOrder }: { splitId: number; m: SplitPreprocessing; columnOrder: string[] }) {
  const position = (column: string) => (columnOrder.includes(column) ? columnOrder.indexOf(column) : columnOrder.length);
  const stats = Object.entries(m.normalization.stats).sort(([a], [b]) => position(a) - position(b));
  const [aName, bName] = STAT_NAMES[m.normalization.method] ?? ["a", "b"];
  return (
    <div className="muted" style={{ marginTop: 6 }}>
      {m.labelEncoding ? (
        <p aria-label={`Split ${splitId} label encoding`}>
          Label encoding (output index → class): <span className="mono">{m.labelEncoding.map((c, i) => `${i} → ${c}`).join(", ")}</span>
        </p>
      ) : null}
      {m.vocabulary ? (
        <p>
          Vocabulary: {m.vocabulary.size} tokens, sequences of {m.vocabulary.sequenceLength} tokens ·{" "}
          <Hash value={m.vocabulary.sha256} label="vocabulary sha256" />
        </p>
      ) : null}
      {stats.length > 0 ? (
        <details>
          <summary>Normalisation statistics fitted on the train partition ({stats.length} columns)</summary>
          <div className="table-scroll">
            <table aria-label={`Split ${splitId} normalisation statistics`} style={{ width: "auto" }}>
              <thead>
                <tr>
                  <th>Column</th>
                  <th className="num">{aName}</th>
                  <th className="num">{bName}</th>
                </tr>
              </thead>
              <tbody>
                {stats.map(([column, s]) => (
                  <tr key={column}>
                    <td className="mono">{column}</td>
                    <td className="num">{formatMetric(s.a)}</td>
                    <td className="num">{formatMetric(s.b)}</td>
                  </tr>
                ))}
              </tbody>
            </table>
          </div>
        </details>
      ) : (
        <p>No normalisation: features are used as they are{m.vocabulary ? " (token indices)" : ""}.</p>
      )}
    </div>
  );
}
