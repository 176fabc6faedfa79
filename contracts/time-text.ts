/**
 * How a recorded time reads for people, in the app and in what the server composes for it (the lineage graph's
 * labels): UTC ISO-8601 to the second, a space for the "T" ("2026-12-06 02:30:07Z"); "–" when there is none.
 * One definition, so a time reads the same wherever it is shown.
 */
export function timeText(iso: string | null | undefined): string {
  return iso ? iso.replace("T", " ").replace(/\.\d+Z$/, "Z") : "–";
}
