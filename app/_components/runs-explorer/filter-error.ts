/**
 * Reads a filter error from the server's BAD_REQUEST message (server/runs/explore/router.ts): the message line,
 * then the expression and a caret line whose "^" sits under the 0-based position of the fault.
 */
export type FilterError = { message: string; expression: string; position: number } | { message: string; expression: null; position: null };

export function parseFilterError(text: string): FilterError {
  const lines = text.split("\n");
  const caret = lines.at(-1) ?? "";
  if (lines.length >= 3 && /^ *\^$/.test(caret)) {
    return { message: lines.slice(0, -2).join("\n"), expression: lines.at(-2) ?? "", position: caret.indexOf("^") };
  }
  return { message: text, expression: null, position: null };
}
