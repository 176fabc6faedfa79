/**
 * Built-in datasets: the committed files match their declared schemas and counts, and the generator scripts
 * reproduce the committed bytes exactly (so the README's provenance is checkable).
 */
import fs from "node:fs";
import { describe, expect, it } from "vitest";
import { sha256Hex } from "@/contracts/canonical";
import { BUILTIN_DATASETS, builtinFilePath, loadBuiltin } from "../builtin";
import { parseCsv } from "../csv";
import { buildDigitsCsv, downsample } from "../generate-digits";
import { buildSentencesCsv } from "../generate-sentences";
import { inferSchema, validateForTask } from "../schema";
import { datasetErrorOf } from "./helpers";

describe("built-in datasets", () => {
  for (const meta of Object.values(BUILTIN_DATASETS)) {
    it(`${meta.name}: the file parses to the declared schema and row count, and validates for classification`, () => {
      const loaded = loadBuiltin(meta.name);
      expect(loaded.sha256).toBe(sha256Hex(fs.readFileSync(builtinFilePath(meta.name))));
      const table = parseCsv(loaded.bytes);
      expect(table.rows).toHaveLength(meta.rowCount);
      const inferred = inferSchema(table, {
        labelColumn: meta.schema.labelColumn,
        kind: meta.schema.kind,
        imageShape: meta.schema.imageShape,
        textColumn: meta.schema.textColumn,
      });
      expect(inferred).toEqual(meta.schema);
      expect(() => validateForTask(table, loaded.schema, "classification")).not.toThrow();
      expect(meta.licence).not.toBe("");
      expect(meta.origin).not.toBe("");
    });
  }

  it("iris holds Fisher's 150 flowers, 50 per species", () => {
    const table = parseCsv(loadBuiltin("iris").bytes);
    expect(table.rows[0]).toEqual([5.1, 3.5, 1.4, 0.2, "setosa"]);
    expect(table.rows[149]).toEqual([5.9, 3, 5.1, 1.8, "virginica"]);
    const counts: Record<string, number> = {};
    for (const row of table.rows) counts[row[4] as string] = (counts[row[4] as string] ?? 0) + 1;
    expect(counts).toEqual({ setosa: 50, versicolor: 50, virginica: 50 });
  });

  it("returns a copy of the schema, so a caller cannot alter the catalogue", () => {
    const loaded = loadBuiltin("iris");
    loaded.schema.labelColumn = "changed";
    expect(BUILTIN_DATASETS.iris.schema.labelColumn).toBe("species");
  });

  it("names the built-ins when asked for an unknown one", () => {
    const e = datasetErrorOf(() => loadBuiltin("mnist"));
    expect(e.code).toBe("UNKNOWN_BUILTIN");
    expect(e.message).toBe("there is no built-in dataset 'mnist'; built-ins are: iris, digits, sentences");
  });

  it("the sentences generator reproduces the committed file byte for byte", () => {
    expect(buildSentencesCsv()).toBe(fs.readFileSync(builtinFilePath("sentences"), "utf8"));
  });

  it("the digits generator reproduces the committed file byte for byte", () => {
    expect(buildDigitsCsv()).toBe(fs.readFileSync(builtinFilePath("digits"), "utf8"));
  });

  it("downsampling averages areas: a uniform image stays uniform, one lit pixel spreads by its overlap", () => {
    expect(downsample(new Array(28 * 28).fill(1))).toEqual(new Array(64).fill(1));
    const one = new Array(28 * 28).fill(0);
    one[3 * 28 + 3] = 1; // pixel (3, 3) lies half in output column 0 and half in column 1 (boundary at 3.5)
    const out = downsample(one);
    // Each output pixel covers 3.5 × 3.5 = 12.25 input pixels; this pixel contributes 0.5 × 0.5 of its area to four of them.
    expect([out[0], out[1], out[8], out[9]]).toEqual([0.02, 0.02, 0.02, 0.02]);
    expect(out.reduce((a, b) => a + b, 0)).toBeCloseTo(0.08, 10);
  });
});
