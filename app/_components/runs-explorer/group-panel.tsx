"use client";
/** Runs grouped by a hyperparameter (or status/author/experiment): count and mean/min/max of one metric per group. */
import { useQuery } from "@tanstack/react-query";
import { useTRPC } from "@/app/_trpc/client";
import { ErrorState, Loading } from "@/app/_components/states";
import { formatCount, formatMetric } from "@/app/_components/format";
import type { ColumnInfo, ParamValue } from "@/server/runs/explore";
import { formatParam } from "./column-fields";

/** A filter clause selecting one group's runs (added to the current filter when a group is clicked). */
function groupClause(field: string, value: ParamValue): string | null {
  if (value === null) return null;
  return `${field} = ${typeof value === "string" ? JSON.stringify(value) : String(value)}`;
}

export function GroupPanel({
  experimentId,
  filter,
  info,
  group,
  metric,
  onChange,
  onPickGroup,
}: {
  experimentId?: number;
  filter: string;
  info: ColumnInfo | undefined;
  group: string;
  metric: string;
  onChange: (group: string, metric: string) => void;
  onPickGroup: (clause: string) => void;
}) {
  const trpc = useTRPC();
  const metricField =
    metric ||
    (info?.metrics.find((m) => m.key === "val_accuracy")
      ? "metrics.val_accuracy"
      : info?.metrics[0]
        ? `metrics.${info.metrics[0].key}`
        : "");
  const groups = useQuery({
    ...trpc.explore.group.queryOptions({ by: group, metric: metricField, filter: filter || undefined, experimentId }),
    enabled: !!group && !!metricField,
  });
  const metricKey = metricField.replace(/^metrics\./, "");
  return (
    <section className="panel" aria-label="Group runs">
      <div className="row">
        <label className="field" style={{ flexDirection: "row", alignItems: "center" }}>
          <span>Group by</span>
          <select aria-label="Group by" value={group} onChange={(e) => onChange(e.target.value, metric)}>
            <option value="">(no grouping)</option>
            <option value="status">status</option>
            <option value="author">author</option>
            {experimentId === undefined ? <option value="experiment">experiment</option> : null}
            {(info?.params ?? []).map((p) => (
              <option key={p.path} value={`params.${p.path}`}>
                {p.path}
              </option>
            ))}
          </select>
        </label>
        {group ? (
          <label className="field" style={{ flexDirection: "row", alignItems: "center" }}>
            <span>Summarise</span>
            <select aria-label="Group metric" value={metricField} onChange={(e) => onChange(group, e.target.value)}>
              {(info?.metrics ?? [])
                .flatMap((m) => [`metrics.${m.key}`, `metrics.${m.key}.min`, `metrics.${m.key}.max`])
                .map((f) => (
                  <option key={f} value={f}>
                    {f.replace(/^metrics\./, "")}
                  </option>
                ))}
            </select>
          </label>
        ) : null}
      </div>
      {!group ? null : !metricField ? (
        <p className="muted">No metrics recorded yet: nothing to summarise.</p>
      ) : groups.isPending ? (
        <Loading what="Grouping runs" />
      ) : groups.error ? (
        <ErrorState error={groups.error} title="Could not group the runs" />
      ) : groups.data.groups.length === 0 ? (
        <p className="muted">No runs match.</p>
      ) : (
        <div className="table-scroll">
          <table aria-label="Run groups" style={{ marginTop: 8 }}>
            <thead>
              <tr>
                <th>{group.replace(/^params\./, "")}</th>
                <th className="num">Runs</th>
                <th className="num">With {metricKey}</th>
                <th className="num">Mean</th>
                <th className="num">Min</th>
                <th className="num">Max</th>
              </tr>
            </thead>
            <tbody>
              {groups.data.groups.map((g) => {
                const clause = groupClause(group, g.value);
                return (
                  <tr key={String(g.value)}>
                    <td>
                      {clause ? (
                        <button type="button" className="link" title="Show only these runs" onClick={() => onPickGroup(clause)}>
                          {formatParam(g.value)}
                        </button>
                      ) : (
                        <span className="muted">(not set)</span>
                      )}
                    </td>
                    <td className="num">{formatCount(g.count)}</td>
                    <td className="num">{formatCount(g.metric.runs)}</td>
                    <td className="num">{formatMetric(g.metric.mean, metricKey)}</td>
                    <td className="num">{formatMetric(g.metric.min, metricKey)}</td>
                    <td className="num">{formatMetric(g.metric.max, metricKey)}</td>
                  </tr>
                );
              })}
            </tbody>
          </table>
        </div>
      )}
    </section>
  );
}
