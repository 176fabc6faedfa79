/** The filter language: precedence, parentheses, aliases, literals, and every error with its position. */
import { describe, expect, it } from "vitest";
import { parseFilter, FilterSyntaxError, renderCaret, type FilterNode } from "../filter-parser";

/** A compact rendering of the tree to assert structure: (a OR (b AND (NOT c))). */
function show(n: FilterNode | null): string {
  if (!n) return "∅";
  switch (n.kind) {
    case "and":
    case "or":
      return `(${n.children.map(show).join(` ${n.kind.toUpperCase()} `)})`;
    case "not":
      return `(NOT ${show(n.operand)})`;
    case "compare": {
      const f =
        n.field.kind === "param" ? `p:${n.field.path}` : n.field.kind === "metric" ? `m:${n.field.key}.${n.field.stat}` : n.field.kind;
      return `${f}${n.op}${JSON.stringify(n.value.value)}`;
    }
    case "in":
      return `${n.field.kind === "param" ? `p:${n.field.path}` : n.field.kind}${n.negated ? " NOT IN " : " IN "}[${n.values.map((v) => JSON.stringify(v.value)).join(",")}]`;
  }
}

function error(src: string): FilterSyntaxError {
  try {
    parseFilter(src);
  } catch (e) {
    if (e instanceof FilterSyntaxError) return e;
    throw e;
  }
  throw new Error(`expected ${src} to fail`);
}

describe("filter parser", () => {
  it("binds NOT tighter than AND, and AND tighter than OR", () => {
    expect(show(parseFilter("id = 1 OR id = 2 AND NOT id = 3"))).toBe("(id=1 OR (id=2 AND (NOT id=3)))");
    expect(show(parseFilter("NOT id = 1 AND id = 2"))).toBe("((NOT id=1) AND id=2)");
    expect(show(parseFilter("id = 1 AND id = 2 OR id = 3 AND id = 4"))).toBe("((id=1 AND id=2) OR (id=3 AND id=4))");
  });

  it("lets parentheses override precedence", () => {
    expect(show(parseFilter('(params.optimizer = "adam" OR params.optimizer = "rmsprop") AND metrics.val_accuracy > 0.9'))).toBe(
      '((p:training.optimizer.name="adam" OR p:training.optimizer.name="rmsprop") AND m:val_accuracy.last>0.9)',
    );
    expect(show(parseFilter("NOT (id = 1 OR id = 2)"))).toBe("(NOT (id=1 OR id=2))");
  });

  it("resolves aliases, bare or under params., case-insensitively", () => {
    expect(show(parseFilter("lr < 1e-3"))).toBe("p:training.learningRate<0.001");
    expect(show(parseFilter("params.learningRate >= 0.01"))).toBe("p:training.learningRate>=0.01");
    expect(show(parseFilter("params.LR = 1"))).toBe("p:training.learningRate=1");
    expect(show(parseFilter("batchSize = 32 and epochs = 5 and seed = 7"))).toBe(
      "(p:training.batchSize=32 AND p:training.epochs=5 AND p:training.seed=7)",
    );
    expect(show(parseFilter('dataset = "iris"'))).toBe('p:data.dataset.builtin="iris"');
    expect(show(parseFilter("params.model.layers.0.units > 16"))).toBe("p:model.layers.0.units>16");
    expect(show(parseFilter('tags = "x"'))).toBe('tag="x"');
  });

  it("reads metric stats and keeps dotted metric keys", () => {
    expect(show(parseFilter("metrics.val_loss.min < 0.2 OR metrics.loss.MAX > 3 OR metrics.eval.f1 > 0.5"))).toBe(
      "(m:val_loss.min<0.2 OR m:loss.max>3 OR m:eval.f1.last>0.5)",
    );
  });

  it("accepts keywords in any case, IN / NOT IN lists, negative and exponent numbers, booleans and escapes", () => {
    expect(show(parseFilter('optimizer in ("adam", "sgd") or not lr not in (1, -2.5e-1) Or params.training.shuffle = TRUE'))).toBe(
      '(p:training.optimizer.name IN ["adam","sgd"] OR (NOT p:training.learningRate NOT IN [1,-0.25]) OR p:training.shuffle=true)',
    );
    expect(show(parseFilter(String.raw`name = "say \"hi\" \\ \u0041\n"`))).toBe(`name=${JSON.stringify('say "hi" \\ A\n')}`);
    expect(show(parseFilter('name ~ "x" AND name !~ "y" AND id != 3 AND id == 4'))).toBe('(name~"x" AND name!~"y" AND id!=3 AND id=4)');
  });

  it("treats a blank filter as no filter", () => {
    expect(parseFilter("   ")).toBeNull();
  });

  it.each([
    ["metrics.val_accuracy > ", 23, "expected a value after '>' at position 23"],
    ["(id = 1 AND params.lr > ) OR id = 2", 24, "expected a value after '>' at position 24, found ')'"],
    ["metric.acc > 1", 0, "unknown field 'metric.acc' at position 0; did you mean 'metrics.acc'?"],
    ["id = 1 AND param.lr > 1", 11, "unknown field 'param.lr' at position 11; did you mean 'params.lr'?"],
    ['stauts = "completed"', 0, "unknown field 'stauts' at position 0; did you mean 'status'?"],
    ["colour = 1", 0, "unknown field 'colour' at position 0; fields are params.<path>"],
    ["id = 1 AND (id = 2 OR id = 3", 11, "unclosed parenthesis opened at position 11"],
    ["id = 1)", 6, "unexpected ')' with no matching '(' at position 6"],
    ["()", 1, "empty parentheses at position 1"],
    ["id = 1 id = 2", 7, "expected AND or OR before 'id' at position 7"],
    ["id = 1 AND", 10, "expected a field or '(' at position 10, found the end of the filter"],
    ["id 3", 3, "expected an operator (=, !=, <, <=, >, >=, ~, !~, IN) after 'id' at position 3"],
    ["optimizer = adam", 12, "expected a value after '=' at position 12, found 'adam'; strings go in double quotes, e.g. \"adam\""],
    ["name = 'x'", 7, "strings go in double quotes"],
    ['name = "abc', 7, "unterminated string at position 7"],
    [String.raw`name = "a\q"`, 9, String.raw`unknown escape '\q' in string at position 9`],
    ["id = 1 # 2", 7, "unexpected character '#' at position 7"],
    ["lr > 1e", 5, "invalid number '1e' at position 5"],
    ["optimizer IN 1", 13, "expected '(' after IN at position 13"],
    ["optimizer IN ()", 14, "IN needs at least one value at position 14"],
    ['optimizer IN ("a" "b")', 18, "expected ',' or ')' in the IN list at position 18"],
    ['optimizer IN ("a", "b"', 13, "unclosed IN list opened at position 13"],
    ['metrics.loss < "low"', 15, "metrics.loss compares with numbers at position 15, not text"],
    ['metrics.loss ~ "1"', 13, "'~' matches text, but metrics.loss is a number at position 13"],
    ["name ~ 5", 7, "'~' matches text, so it needs a double-quoted string at position 7"],
    ['status = "runing"', 9, 'unknown status "runing" at position 9; expected one of queued, running'],
    ['status < "running"', 7, "'<' does not apply to status at position 7"],
    ['tag > "a"', 4, "'>' does not apply to tag at position 4"],
    ['created > "2024-13-01"', 10, "created compares with an ISO date in double quotes at position 10"],
    ["id = 1.5", 5, "id compares with whole numbers at position 5"],
    ["params. = 1", 0, "expected a config path after 'params.' at position 0"],
  ])("rejects %s at position %i", (src, position, message) => {
    const e = error(src);
    expect(e.position).toBe(position);
    expect(e.message).toContain(message);
    expect(e.expression).toBe(src);
  });

  it("renders a caret under the fault", () => {
    const e = error("metrics.val_accuracy > ");
    expect(e.caret()).toBe("metrics.val_accuracy > \n" + " ".repeat(23) + "^");
    expect(renderCaret("a\tb", 2)).toBe("a b\n  ^");
  });
});
