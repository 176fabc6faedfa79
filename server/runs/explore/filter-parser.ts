/**
 * The runs filter language: tokenizer and recursive-descent parser producing a typed AST.
 *
 *   expr       := or
 *   or         := and ( OR and )*
 *   and        := not ( AND not )*
 *   not        := NOT not | primary                 (so NOT binds tighter than AND, AND tighter than OR)
 *   primary    := "(" expr ")" | comparison
 *   comparison := field op value | field [NOT] IN "(" value ("," value)* ")"
 *   op         := = | == | != | < | <= | > | >= | ~ (case-insensitive contains) | !~ (does not contain)
 *   value      := "double-quoted string" (escapes \" \\ \n \t \uXXXX) | number (1, -2.5, 1e-3) | true | false
 *
 * Keywords (AND, OR, NOT, IN, TRUE, FALSE) are case-insensitive. Fields and aliases: see fields.ts.
 * Every error is a FilterSyntaxError whose `position` is the 0-based offset of the fault; the parser
 * also validates operators and values against the field (a metric compares with numbers, a status
 * must be a known status, a date must parse), so a filter that parses can always be turned into SQL.
 */
import { RUN_STATUSES } from "@/db/schema/runs";
import { FilterSyntaxError } from "./errors";
import { fieldLabel, resolveFieldName, type FieldRef } from "./fields";

export { FilterSyntaxError, renderCaret } from "./errors";

export type CompareOp = "=" | "!=" | "<" | "<=" | ">" | ">=" | "~" | "!~";
export type Literal =
  | { type: "string"; value: string; position: number }
  | { type: "number"; value: number; position: number }
  | { type: "boolean"; value: boolean; position: number };

export type FilterNode =
  | { kind: "and"; children: FilterNode[] }
  | { kind: "or"; children: FilterNode[] }
  | { kind: "not"; operand: FilterNode }
  | { kind: "compare"; field: FieldRef; op: CompareOp; value: Literal; position: number }
  | { kind: "in"; field: FieldRef; negated: boolean; values: Literal[]; position: number };

type TokenKind = "(" | ")" | "," | "op" | "string" | "number" | "word" | "eof";
type Token = { kind: TokenKind; text: string; position: number; value?: string | number };

const KEYWORDS = new Set(["and", "or", "not", "in", "true", "false"]);
const OPERATORS = ["==", "!=", "<=", ">=", "!~", "=", "<", ">", "~"] as const;

function tokenize(src: string): Token[] {
  const tokens: Token[] = [];
  let i = 0;
  function fail(message: string, at: number): never {
    throw new FilterSyntaxError(`${message} at position ${at}`, at, src);
  }
  while (i < src.length) {
    const c = src[i] as string;
    if (/\s/.test(c)) {
      i++;
      continue;
    }
    if (c === "(" || c === ")" || c === ",") {
      tokens.push({ kind: c, text: c, position: i });
      i++;
      continue;
    }
    if (c === '"') {
      const start = i;
      let value = "";
      i++;
      for (;;) {
        if (i >= src.length) fail("unterminated string", start);
        const ch = src[i] as string;
        if (ch === '"') break;
        if (ch === "\\") {
          const e = src[i + 1];
          if (e === '"' || e === "\\" || e === "/") value += e;
          else if (e === "n") value += "\n";
          else if (e === "t") value += "\t";
          else if (e === "u" && /^[0-9a-fA-F]{4}$/.test(src.slice(i + 2, i + 6))) {
            value += String.fromCharCode(parseInt(src.slice(i + 2, i + 6), 16));
            i += 4;
          } else fail(e === undefined ? "unterminated string" : `unknown escape '\\${e}' in string`, e === undefined ? start : i);
          i += 2;
          continue;
        }
        value += ch;
        i++;
      }
      i++;
      tokens.push({ kind: "string", text: src.slice(start, i), position: start, value });
      continue;
    }
    if (c === "'") fail(`strings go in double quotes ("like this"), not single quotes`, i);
    const op = OPERATORS.find((o) => src.startsWith(o, i));
    if (op) {
      tokens.push({ kind: "op", text: op === "==" ? "=" : op, position: i });
      i += op.length;
      continue;
    }
    const num = /^-?(?:\d+(?:\.\d*)?|\.\d+)(?:[eE][+-]?\d+)?/.exec(src.slice(i));
    if (num) {
      const end = i + num[0].length;
      if (end < src.length && /[A-Za-z0-9_.]/.test(src[end] as string)) fail(`invalid number '${/^[-\w.+]+/.exec(src.slice(i))?.[0]}'`, i);
      tokens.push({ kind: "number", text: num[0], position: i, value: Number(num[0]) });
      i = end;
      continue;
    }
    const word = /^[A-Za-z_][A-Za-z0-9_.]*/.exec(src.slice(i));
    if (word) {
      tokens.push({ kind: "word", text: word[0], position: i });
      i += word[0].length;
      continue;
    }
    fail(`unexpected character '${c}'`, i);
  }
  tokens.push({ kind: "eof", text: "", position: src.length });
  return tokens;
}

const isKeyword = (t: Token, k: string) => t.kind === "word" && t.text.toLowerCase() === k;

/** Parses a filter; blank input means "no filter" and returns null. Throws FilterSyntaxError. */
export function parseFilter(src: string): FilterNode | null {
  if (src.trim() === "") return null;
  const tokens = tokenize(src);
  let pos = 0;
  const peek = () => tokens[pos] as Token;
  const next = () => tokens[pos++] as Token;
  /** "<message> at position N<suffix>": the position always follows the main clause. */
  function fail(message: string, at: number, suffix = ""): never {
    throw new FilterSyntaxError(`${message} at position ${at}${suffix}`, at, src);
  }
  const describe = (t: Token) => (t.kind === "eof" ? "the end of the filter" : `'${t.text}'`);

  function parseOr(): FilterNode {
    const children = [parseAnd()];
    while (isKeyword(peek(), "or")) {
      next();
      children.push(parseAnd());
    }
    return children.length === 1 ? (children[0] as FilterNode) : { kind: "or", children };
  }
  function parseAnd(): FilterNode {
    const children = [parseNot()];
    while (isKeyword(peek(), "and")) {
      next();
      children.push(parseNot());
    }
    return children.length === 1 ? (children[0] as FilterNode) : { kind: "and", children };
  }
  function parseNot(): FilterNode {
    if (isKeyword(peek(), "not")) {
      next();
      return { kind: "not", operand: parseNot() };
    }
    return parsePrimary();
  }
  function parsePrimary(): FilterNode {
    const t = peek();
    if (t.kind === "(") {
      next();
      if (peek().kind === ")") fail("empty parentheses", peek().position);
      const inner = parseOr();
      const close = peek();
      if (close.kind !== ")") {
        if (close.kind === "eof") throw new FilterSyntaxError(`unclosed parenthesis opened at position ${t.position}`, t.position, src);
        fail("expected AND, OR or ')'", close.position, `, found ${describe(close)}`);
      }
      next();
      return inner;
    }
    if (t.kind === "word" && !KEYWORDS.has(t.text.toLowerCase())) return parseComparison();
    return fail("expected a field or '('", t.position, `, found ${describe(t)}`);
  }
  function parseComparison(): FilterNode {
    const fieldToken = next();
    const resolved = resolveFieldName(fieldToken.text);
    if (!resolved.ok) return fail(resolved.message, fieldToken.position, resolved.hint ? `; ${resolved.hint}` : "");
    const field = resolved.field;
    const t = peek();
    if (t.kind === "op") {
      next();
      const value = parseValue(t);
      const node = { kind: "compare" as const, field, op: t.text as CompareOp, value, position: fieldToken.position };
      validateCompare(node, t);
      return node;
    }
    const negatedIn = isKeyword(t, "not") && isKeyword(tokens[pos + 1] as Token, "in");
    if (isKeyword(t, "in") || negatedIn) {
      next();
      if (negatedIn) next();
      const open = peek();
      if (open.kind !== "(") fail("expected '(' after IN", open.position, `, found ${describe(open)}`);
      next();
      if (peek().kind === ")") fail("IN needs at least one value", peek().position);
      const values: Literal[] = [];
      for (;;) {
        values.push(parseValue(tokens[pos - 1] as Token));
        const sep = peek();
        if (sep.kind === ",") {
          next();
          continue;
        }
        if (sep.kind === ")") {
          next();
          break;
        }
        if (sep.kind === "eof") throw new FilterSyntaxError(`unclosed IN list opened at position ${open.position}`, open.position, src);
        fail("expected ',' or ')' in the IN list", sep.position, `, found ${describe(sep)}`);
      }
      const node = { kind: "in" as const, field, negated: negatedIn, values, position: fieldToken.position };
      for (const v of values) validateValue(field, "=", v);
      return node;
    }
    return fail(`expected an operator (=, !=, <, <=, >, >=, ~, !~, IN) after '${fieldToken.text}'`, t.position, `, found ${describe(t)}`);
  }
  function parseValue(after: Token): Literal {
    const t = peek();
    if (t.kind === "string") {
      next();
      return { type: "string", value: t.value as string, position: t.position };
    }
    if (t.kind === "number") {
      next();
      return { type: "number", value: t.value as number, position: t.position };
    }
    if (isKeyword(t, "true") || isKeyword(t, "false")) {
      next();
      return { type: "boolean", value: t.text.toLowerCase() === "true", position: t.position };
    }
    const hint = t.kind === "word" ? `; strings go in double quotes, e.g. "${t.text}"` : "";
    return fail(`expected a value after '${after.text}'`, t.position, `, found ${describe(t)}${hint}`);
  }
  function validateCompare(node: Extract<FilterNode, { kind: "compare" }>, opToken: Token) {
    validateValue(node.field, node.op, node.value, opToken);
  }
  function validateValue(field: FieldRef, op: CompareOp, v: Literal, opToken?: Token) {
    const label = fieldLabel(field);
    const textMatch = op === "~" || op === "!~";
    const ordering = op === "<" || op === "<=" || op === ">" || op === ">=";
    const opAt = opToken?.position ?? v.position;
    if (textMatch && v.type !== "string") fail(`'${op}' matches text, so it needs a double-quoted string`, v.position);
    switch (field.kind) {
      case "param":
        return;
      case "metric":
      case "id":
        if (textMatch) fail(`'${op}' matches text, but ${label} is a number`, opAt);
        if (v.type !== "number") fail(`${label} compares with numbers`, v.position, `, not ${v.type === "string" ? "text" : "true/false"}`);
        if (field.kind === "id" && !Number.isInteger(v.value)) fail("id compares with whole numbers", v.position);
        return;
      case "created":
      case "finished":
        if (textMatch) fail(`'${op}' matches text, but ${label} is a date`, opAt);
        if (v.type !== "string" || parseIsoInstant(v.value) === null)
          fail(`${label} compares with an ISO date in double quotes`, v.position, ', e.g. "2024-05-31" or "2024-05-31T12:00:00Z"');
        return;
      case "status":
        if (ordering) fail(`'${op}' does not apply to status`, opAt, "; use =, !=, ~, !~ or IN");
        if (v.type !== "string") fail("status compares with text", v.position, ', e.g. "completed"');
        if (!textMatch && !(RUN_STATUSES as readonly string[]).includes(v.value.toLowerCase()))
          fail(`unknown status "${v.value}"`, v.position, `; expected one of ${RUN_STATUSES.join(", ")}`);
        return;
      case "experiment":
        if (ordering && v.type !== "number") fail(`'${op}' on experiment needs an experiment id (a number)`, opAt);
        if (v.type === "boolean") fail("experiment compares with a name (text) or an id (number)", v.position);
        return;
      case "tag":
      case "author":
        if (ordering) fail(`'${op}' does not apply to ${label}`, opAt, "; use =, !=, ~, !~ or IN");
        if (v.type !== "string") fail(`${label} compares with text in double quotes`, v.position);
        return;
      case "name":
        if (v.type !== "string") fail("name compares with text in double quotes", v.position);
        return;
    }
  }

  const tree = parseOr();
  const rest = peek();
  if (rest.kind !== "eof") {
    if (rest.kind === ")") fail("unexpected ')' with no matching '('", rest.position);
    fail(`expected AND or OR before ${describe(rest)}`, rest.position);
  }
  return tree;
}

/**
 * A date or date-time in ISO form as a day range or an instant (UTC). A bare date "2024-05-31" covers the
 * whole UTC day, so `created = "2024-05-31"` means "on that day". Returns null for anything else.
 */
export function parseIsoInstant(text: string): { start: string; end: string; day: boolean } | null {
  const day = /^(\d{4})-(\d{2})-(\d{2})$/.exec(text);
  if (day) {
    const start = new Date(`${text}T00:00:00.000Z`);
    if (Number.isNaN(start.getTime()) || start.toISOString().slice(0, 10) !== text) return null;
    return { start: start.toISOString(), end: new Date(start.getTime() + 86_400_000).toISOString(), day: true };
  }
  if (!/^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}(:\d{2}(\.\d+)?)?(Z|[+-]\d{2}:\d{2})$/.test(text)) return null;
  const at = new Date(text);
  if (Number.isNaN(at.getTime())) return null;
  return { start: at.toISOString(), end: at.toISOString(), day: false };
}
