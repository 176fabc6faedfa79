/**
 * Errors raised by the runs query layer. Both carry messages meant for the person who typed the
 * request; routers map them to BAD_REQUEST. FilterSyntaxError also knows where in the filter text
 * the problem is, so the UI can point at it.
 */

/** A request that cannot be answered as asked (bad sort field, too few runs to compare, unknown run id). */
export class RunsQueryError extends Error {
  constructor(message: string) {
    super(message);
    this.name = "RunsQueryError";
  }
}

/** The filter expression line with a caret under the 0-based `position` (a one-line context for error messages). */
export function renderCaret(expression: string, position: number): string {
  const line = expression.replace(/[\r\n\t]/g, " ");
  return `${line}\n${" ".repeat(Math.max(0, Math.min(position, line.length)))}^`;
}

/** A filter that cannot be parsed or validated. `position` is the 0-based character offset of the fault. */
export class FilterSyntaxError extends Error {
  constructor(
    message: string,
    readonly position: number,
    readonly expression: string,
  ) {
    super(message);
    this.name = "FilterSyntaxError";
  }

  /** The expression with a caret under the fault, e.g. for a monospace tooltip or a CLI message. */
  caret(): string {
    return renderCaret(this.expression, this.position);
  }
}
