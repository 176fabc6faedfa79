"use client";
/** A SHA-256 shown shortened (first 12 hex), with the full value on hover and a copy button. */
import { useState } from "react";

export function Hash({ value, label }: { value: string | null | undefined; label?: string }) {
  const [copied, setCopied] = useState(false);
  if (!value) return <span className="muted">–</span>;
  return (
    <span className="hash-wrap">
      <code className="hash" title={value}>
        {value.slice(0, 12)}…
      </code>
      <button
        type="button"
        className="copy"
        aria-label={`Copy ${label ?? "hash"}`}
        onClick={() => {
          void navigator.clipboard?.writeText(value).catch(() => undefined);
          setCopied(true);
          setTimeout(() => setCopied(false), 1500);
        }}
      >
        {copied ? "copied" : "copy"}
      </button>
    </span>
  );
}
