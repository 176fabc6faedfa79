"use client";
/** Loading, empty and error states, the same on every page. */
import type { ReactNode } from "react";

export function Loading({ what = "Loading" }: { what?: string }) {
  return (
    <div className="state" role="status" aria-live="polite">
      {what}…
    </div>
  );
}

export function Empty({ title, hint, children }: { title: string; hint: string; children?: ReactNode }) {
  return (
    <div className="state">
      <p style={{ fontWeight: 600, margin: "0 0 4px" }}>{title}</p>
      <p style={{ margin: 0 }}>{hint}</p>
      {children ? <div style={{ marginTop: 12 }}>{children}</div> : null}
    </div>
  );
}

export function ErrorState({ error, title = "Something went wrong" }: { error: unknown; title?: string }) {
  const message = error instanceof Error ? error.message : String(error);
  return (
    <div className="state error" role="alert">
      <strong>{title}</strong>
      <p style={{ margin: "4px 0 0" }}>{message}</p>
    </div>
  );
}

export function FormError({ error }: { error: unknown }) {
  if (!error) return null;
  return (
    <p className="error-text" role="alert">
      {error instanceof Error ? error.message : String(error)}
    </p>
  );
}
