"use client";
/**
 * A signature in its human-readable form ("Approved by … on … — meaning: approval — record sha256 abc…"), its record hash
 * shown once: the server's sentence ends with the short hash (server/registry/records.ts signatureText), which is shown
 * here as the app shows hashes elsewhere (short, full value on hover, a copy button) instead of a second time beside it.
 * Used for promotion signatures (models) and model-card and datasheet section signatures (model-card.tsx).
 */
import { Hash } from "@/app/_components/hash";

/** The sentence without its trailing " record sha256 <12 hex>…", when it ends so; else the whole sentence and no split. */
export function splitSignatureText(text: string, recordSha256: string): { lead: string; endsWithHash: boolean } {
  const tail = ` record sha256 ${recordSha256.slice(0, 12)}…`;
  return text.endsWith(tail) ? { lead: text.slice(0, -tail.length), endsWithHash: true } : { lead: text, endsWithHash: false };
}

export function SignatureLine({ s }: { s: { text: string; recordSha256: string; comment: string } }) {
  const { lead, endsWithHash } = splitSignatureText(s.text, s.recordSha256);
  return (
    <li data-testid="signature">
      <span>{lead}</span> {endsWithHash ? "record sha256 " : ""}
      <Hash value={s.recordSha256} label="signed record sha256" />
      {s.comment ? <div className="muted">“{s.comment}”</div> : null}
    </li>
  );
}
