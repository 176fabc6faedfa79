"use client";
/**
 * Alias history as a timeline (production first): which version each alias pointed at, from when to when, moved by whom,
 * and under which promotion request; plus the question "what was in production at time T?" answered by the server.
 */
import { useState } from "react";
import { useQuery } from "@tanstack/react-query";
import { useTRPC } from "@/app/_trpc/client";
import { ErrorState } from "@/app/_components/states";
import { Hash } from "@/app/_components/hash";
import { formatTime } from "@/app/_components/format";
import type { ModelDetail } from "@/server/registry/queries";

export function AliasTimeline({ model }: { model: ModelDetail }) {
  const aliases = [...new Set(["production", ...model.aliasHistory.map((e) => e.alias)])];
  return (
    <section className="panel" aria-label="Alias timeline">
      <h2 style={{ marginTop: 0 }}>Alias timeline</h2>
      {aliases.map((alias) => {
        const events = model.aliasHistory.filter((e) => e.alias === alias);
        return (
          <div key={alias} style={{ marginBottom: 12 }}>
            <h3 style={{ margin: "4px 0" }}>{alias}</h3>
            {events.length === 0 ? (
              <p className="muted" style={{ margin: 0 }}>
                Never set.
              </p>
            ) : (
              <table aria-label={`${alias} timeline`}>
                <thead>
                  <tr>
                    <th>Version</th>
                    <th>From (UTC)</th>
                    <th>Until (UTC)</th>
                    <th>Moved by</th>
                    <th>Authorised by</th>
                  </tr>
                </thead>
                <tbody>
                  {events.map((e, i) => (
                    <tr key={e.id}>
                      <td>{e.version === null ? <span className="muted">unset</span> : `v${e.version}`}</td>
                      <td>{formatTime(e.at)}</td>
                      <td>{events[i + 1] ? formatTime(events[i + 1]!.at) : <strong>now</strong>}</td>
                      <td>{e.movedBy}</td>
                      <td>{e.promotionRequestId ? `promotion request #${e.promotionRequestId}` : "direct move"}</td>
                    </tr>
                  ))}
                </tbody>
              </table>
            )}
          </div>
        );
      })}
      <AliasAtForm modelName={model.name} aliases={aliases} />
    </section>
  );
}

function AliasAtForm({ modelName, aliases }: { modelName: string; aliases: string[] }) {
  const trpc = useTRPC();
  const [alias, setAlias] = useState("production");
  const [at, setAt] = useState(() => new Date().toISOString().replace(/\.\d+Z$/, "Z"));
  const [asked, setAsked] = useState<{ alias: string; at: string } | null>(null);
  const answer = useQuery({
    ...trpc.models.aliasAt.queryOptions({ modelName, alias: asked?.alias ?? "production", at: asked?.at ?? "" }),
    enabled: asked !== null,
  });
  return (
    <form
      aria-label="Alias at a time"
      onSubmit={(e) => {
        e.preventDefault();
        setAsked({ alias, at });
      }}
    >
      <div className="row" style={{ alignItems: "flex-end" }}>
        <label className="field">
          <span>Which version was in</span>
          <select aria-label="Alias to look up" value={alias} onChange={(e) => setAlias(e.target.value)}>
            {aliases.map((a) => (
              <option key={a} value={a}>
                {a}
              </option>
            ))}
          </select>
        </label>
        <label className="field">
          <span>at time (UTC, ISO-8601)</span>
          <input aria-label="Time to look up" value={at} onChange={(e) => setAt(e.target.value)} />
        </label>
        <button type="submit">Look up</button>
      </div>
      {answer.error ? <ErrorState error={answer.error} title="Could not answer" /> : null}
      {answer.data ? (
        <p role="status" aria-label="Alias at time answer">
          At {formatTime(answer.data.at)}, {answer.data.alias}{" "}
          {answer.data.version === null ? (
            "pointed at no version."
          ) : (
            <>
              was <strong>v{answer.data.version}</strong> (weights <Hash value={answer.data.weightsSha256} label="weights sha256" />
              ), since {formatTime(answer.data.since)}, moved by {answer.data.movedBy}
              {answer.data.promotionRequestId ? ` under promotion request #${answer.data.promotionRequestId}` : ""}.
            </>
          )}
        </p>
      ) : null}
    </form>
  );
}
