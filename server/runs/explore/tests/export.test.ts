/**
 * Export of the runs table's view (server/runs/explore/export.ts) on the explore fixture: the filter and sort are
 * those of the table, numbers are unrounded, CSV fields are RFC 4180 escaped (a name with comma, quote and
 * newline survives a round trip), JSON carries params and metrics as columns, and the row cap says so.
 */
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { exportRuns, csvField, EXPORT_MAX_ROWS } from "../export";
import { searchRuns } from "../runs-search";
import { RunsQueryError } from "../errors";
import { createFixture, type Fixture } from "./fixtures";

let f: Fixture;
beforeAll(() => {
  f = createFixture();
});
afterAll(() => f.close());

/** RFC 4180 fields of a CSV text (quoted fields, doubled quotes, CRLF rows). */
function parseCsv(text: string): string[][] {
  const rows: string[][] = [];
  let row: string[] = [];
  let field = "";
  let quoted = false;
  for (let i = 0; i < text.length; i++) {
    const c = text[i]!;
    if (quoted) {
      if (c === '"' && text[i + 1] === '"') {
        field += '"';
        i++;
      } else if (c === '"') quoted = false;
      else field += c;
    } else if (c === '"') quoted = true;
    else if (c === ",") {
      row.push(field);
      field = "";
    } else if (c === "\r" && text[i + 1] === "\n") {
      row.push(field);
      rows.push(row);
      row = [];
      field = "";
      i++;
    } else field += c;
  }
  return rows;
}

const view = {
  filter: 'params.optimizer = "adam" OR params.optimizer = "rmsprop"',
  sort: [{ field: "metrics.val_accuracy", dir: "desc" as const }],
  columns: ["metrics.val_accuracy", "metrics.val_loss.min", "params.training.learningRate"],
};

describe("exportRuns", () => {
  it("CSV: the table's filter and sort, fixed fields then metrics then params, numbers unrounded", async () => {
    const out = await exportRuns(f.db, { ...view, format: "csv" });
    const table = await searchRuns(f.db, { ...view, limit: 1000 });
    const rows = parseCsv(out.content);
    expect(rows[0]).toEqual([
      "id",
      "name",
      "status",
      "experiment",
      "author",
      "created_at",
      "finished_at",
      "duration_ms",
      "tags",
      "metrics.val_accuracy",
      "metrics.val_loss.min",
      "params.training.learningRate",
    ]);
    expect(rows.slice(1).map((r) => Number(r[0]))).toEqual(table.rows.map((r) => r.id));
    expect(out.rows).toBe(table.total);
    expect(out.truncated).toBe(false);
    expect(out.fileName).toBe("runs.csv");
    for (const [i, r] of table.rows.entries()) {
      const cells = rows[i + 1]!;
      expect(cells[1]).toBe(r.name);
      expect(cells[9] === "" ? undefined : Number(cells[9])).toBe(r.metrics.val_accuracy);
      expect(cells[10] === "" ? undefined : Number(cells[10])).toBe(r.metrics["val_loss.min"]);
      expect(cells[11] === "" ? undefined : Number(cells[11])).toBe(r.params["training.learningRate"]);
    }
  });

  it("escapes commas, quotes and newlines and leaves numbers in full precision", async () => {
    expect(csvField('a,"b"\nc')).toBe('"a,""b""\nc"');
    expect(csvField("plain")).toBe("plain");
    expect(csvField(0.1 + 0.2)).toBe("0.30000000000000004");
    expect(csvField(null)).toBe("");
    expect(csvField(true)).toBe("true");
    // CSV injection: text a user typed cannot become a spreadsheet formula; numbers stay numbers.
    expect(csvField('=HYPERLINK("http://x")')).toBe('"\'=HYPERLINK(""http://x"")"');
    expect(csvField("+cmd|' /C calc'!A0")).toBe("'+cmd|' /C calc'!A0");
    expect(csvField("@SUM(A1)")).toBe("'@SUM(A1)");
    expect(csvField("-2+3")).toBe("'-2+3");
    expect(csvField("\tx")).toBe("'\tx");
    expect(csvField(-0.5)).toBe("-0.5");
    expect(csvField("-1")).toBe("-1");
    expect(csvField("+2.5e-3")).toBe("+2.5e-3");
    // Every run of the fixture (names include quotes and SQL-looking text) round-trips through the CSV reader.
    const all = await exportRuns(f.db, { columns: [], sort: [{ field: "id", dir: "asc" }], format: "csv" });
    const names = parseCsv(all.content)
      .slice(1)
      .map((r) => r[1]);
    expect(names).toEqual((await searchRuns(f.db, { sort: [{ field: "id", dir: "asc" }], limit: 1000 })).rows.map((r) => r.name));
  });

  it("JSON: the view, params and metrics as keyed columns, null for missing", async () => {
    const out = await exportRuns(f.db, { ...view, format: "json" });
    const body = JSON.parse(out.content) as {
      view: unknown;
      total: number;
      truncated: boolean;
      columns: string[];
      runs: Record<string, unknown>[];
    };
    expect(body.view).toMatchObject({ filter: view.filter, columns: view.columns });
    expect(body.truncated).toBe(false);
    const table = await searchRuns(f.db, { ...view, limit: 1000 });
    expect(body.runs.map((r) => r.id)).toEqual(table.rows.map((r) => r.id));
    expect(body.runs[0]!["metrics.val_accuracy"]).toBe(table.rows[0]!.metrics.val_accuracy);
    expect(body.runs[0]!["params.training.learningRate"]).toBe(table.rows[0]!.params["training.learningRate"]);
  });

  it("rejects an unknown column or a bad filter like the table does, and caps rows", async () => {
    await expect(exportRuns(f.db, { columns: ["metrics."], format: "csv" })).rejects.toThrow(RunsQueryError);
    await expect(exportRuns(f.db, { filter: "status = ", format: "csv" })).rejects.toThrow();
    expect(EXPORT_MAX_ROWS).toBeLessThanOrEqual(1000);
  });
});
