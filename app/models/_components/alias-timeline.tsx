"use client";
/**
 * Alias history as a timeline (production first): which version each alias pointed at, from when to when, moved by whom,
 * and under which promotion request; plus the question "what was in production at time T?" answered by the server,
 * T being now unless a time is picked (a date-time picker, an exact ISO-8601 time, or a quick choice per alias move).
 */
import { useState } from "react";
import { useQuery } from "@tanstack/react-query";
import { useTRPC } from "@/app/_trpc/client";
import { ErrorState, Loading } from "@/app/_components/states";
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
              <div className="table-scroll">
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
              </div>
            )}
          </div>
        );
      })}
      <AliasAtForm model={model} aliases={aliases} />
    </section>
  );
}

/** A `datetime-local` value (no zone; read as UTC here, like every time on these pages) to ISO-8601, or null. */
function pickerToIso(value: string): string | null {
  if (!value) return null;
  const t = new Date(`${value.length === 16 ? `${value}:00` : value}Z`);
  return Number.isNaN(t.getTime()) ? null : t.toISOString();
}
/** ISO-8601 (any zone) to the picker's UTC value, to the second (the exact time is kept in the text field). */
function isoToPicker(iso: string): string {
  const t = new Date(iso);
  return Number.isNaN(t.getTime()) ? "" : t.toISOString().slice(0, 19);
}

/**
 * "Which version was in <alias> at time T": T is "now" by default, asked of the server without a time so that its clock
 * decides (after an approval the answer is the new version, not the one at page load); every registry write refreshes
 * it. A date-time picker (UTC) and the exact ISO-8601 field choose another time; quick choices jump to each move of
 * the alias (its exact time, so the answer is the version it moved to).
 */
function AliasAtForm({ model, aliases }: { model: ModelDetail; aliases: string[] }) {
  const trpc = useTRPC();
  const [alias, setAlias] = useState("production");
  const [text, setText] = useState("");
  /** null: now. */
  const [at, setAt] = useState<string | null>(null);
  const answer = useQuery(
    trpc.models.aliasAt.queryOptions(at === null ? { modelName: model.name, alias } : { modelName: model.name, alias, at }),
  );
  const moves = model.aliasHistory.filter((e) => e.alias === alias);
  const choose = (iso: string | null) => {
    setAt(iso);
    setText(iso ?? "");
  };
  return (
    <form
      aria-label="Alias at a time"
      onSubmit={(e) => {
        e.preventDefault();
        choose(text.trim() === "" ? null : text.trim());
      }}
    >
      <h3 style={{ margin: "12px 0 6px" }}>Which version was in {alias} at a given time?</h3>
      <div className="row" style={{ alignItems: "flex-end" }}>
        <label className="field">
          <span>Alias</span>
          <select aria-label="Alias to look up" value={alias} onChange={(e) => setAlias(e.target.value)}>
            {aliases.map((a) => (
              <option key={a} value={a}>
                {a}
              </option>
            ))}
          </select>
        </label>
        <label className="field">
          <span>Date and time (UTC)</span>
          <input
            type="datetime-local"
            step={1}
            aria-label="Pick a date and time (UTC)"
            value={at === null ? "" : isoToPicker(at)}
            onChange={(e) => choose(pickerToIso(e.target.value))}
          />
        </label>
        <label className="field">
          <span>or exactly (ISO-8601; empty: now)</span>
          <input aria-label="Time to look up" placeholder="now" value={text} onChange={(e) => setText(e.target.value)} />
        </label>
        <button type="submit">Look up</button>
      </div>
      <div className="row" role="group" aria-label="Quick choices" style={{ marginTop: 8 }}>
        <span className="muted">Quick choices:</span>
        <button type="button" aria-pressed={at === null} onClick={() => choose(null)}>
          Now
        </button>
        {moves.map((m) => (
          <button key={m.id} type="button" aria-pressed={at === m.at} onClick={() => choose(m.at)}>
            {m.version === null ? "unset" : `v${m.version}`} at {formatTime(m.at)}
          </button>
        ))}
        {moves.length === 0 ? <span className="muted">{alias} has never moved.</span> : null}
      </div>
      {answer.isPending ? <Loading what="Looking it up" /> : null}
      {answer.error ? <ErrorState error={answer.error} title="Could not answer" /> : null}
      {answer.data ? (
        <p role="status" aria-label="Alias at time answer">
          {at === null ? <>Now ({formatTime(answer.data.at)}), </> : <>At {formatTime(answer.data.at)}, </>}
          {answer.data.alias}{" "}
          {answer.data.version === null ? (
            at === null ? (
              "points at no version."
            ) : (
              "pointed at no version."
            )
          ) : (
            <>
              {at === null ? "is" : "was"} <strong>v{answer.data.version}</strong> (weights{" "}
              <Hash value={answer.data.weightsSha256} label="weights sha256" />
              ), since {formatTime(answer.data.since)}, moved by {answer.data.movedBy}
              {answer.data.promotionRequestId ? ` under promotion request #${answer.data.promotionRequestId}` : ""}.
            </>
          )}
        </p>
      ) : null}
    </form>
  );
}
