"use client";
/** A signature in its human-readable form ("Approved by … on … — meaning: approval — record sha256 abc…"), with the full hash copyable. */
import { Hash } from "@/app/_components/hash";

export function SignatureLine({ s }: { s: { text: string; recordSha256: string; comment: string } }) {
  return (
    <li data-testid="signature">
      <span>{s.text}</span> <Hash value={s.recordSha256} label="signed record sha256" />
      {s.comment ? <div className="muted">“{s.comment}”</div> : null}
    </li>
  );
}
