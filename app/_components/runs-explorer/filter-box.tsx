"use client";
/** The filter expression box: applies on Enter or "Apply"; shows the server's error with a caret under the position. */
import { useState } from "react";
import { parseFilterError } from "./filter-error";

const EXAMPLE = '(params.optimizer = "adam" OR params.optimizer = "rmsprop") AND metrics.val_accuracy > 0.9';

export function FilterBox({ value, onApply, error }: { value: string; onApply: (filter: string) => void; error: unknown }) {
  const [text, setText] = useState(value);
  // A new applied filter (URL, history, a chip) replaces what is typed: adjusted during render, as React advises
  // for state derived from a prop, so no render shows the old text.
  const [appliedValue, setAppliedValue] = useState(value);
  if (value !== appliedValue) {
    setAppliedValue(value);
    setText(value);
  }
  const parsed = error ? parseFilterError(error instanceof Error ? error.message : String(error)) : null;
  return (
    <form
      className="filter-box"
      role="search"
      onSubmit={(e) => {
        e.preventDefault();
        onApply(text);
      }}
    >
      <div className="row" style={{ flexWrap: "nowrap" }}>
        <input
          aria-label="Filter runs"
          className="mono"
          style={{ flex: 1, fontSize: 13 }}
          value={text}
          spellCheck={false}
          placeholder={`e.g. ${EXAMPLE}`}
          aria-invalid={parsed ? true : undefined}
          aria-describedby={parsed ? "filter-error" : "filter-help"}
          onChange={(e) => setText(e.target.value)}
        />
        <button type="submit">Apply</button>
        {value ? (
          <button type="button" onClick={() => onApply("")}>
            Clear
          </button>
        ) : null}
      </div>
      {parsed ? (
        <div id="filter-error" className="filter-error" role="alert" aria-label="Filter error">
          <p className="error-text" style={{ margin: "6px 0 4px" }}>
            {parsed.message}
          </p>
          {parsed.expression !== null ? (
            <pre className="caret-box" data-position={parsed.position}>
              {parsed.expression}
              {"\n"}
              <span className="caret">{" ".repeat(parsed.position)}^</span>
            </pre>
          ) : null}
        </div>
      ) : (
        <p id="filter-help" className="muted" style={{ margin: "4px 0 0", fontSize: 12 }}>
          AND, OR, NOT, ( ); = != &lt; &lt;= &gt; &gt;= ~ (contains) IN (…); fields: params.&lt;path&gt;, metrics.&lt;key&gt;[.min|.max],
          name, status, author, tag, experiment, created, finished.
        </p>
      )}
    </form>
  );
}
