/** inferSchema and validateForTask: label column resolution, kinds, and the messages for each fault. */
import { describe, expect, it } from "vitest";
import { parseCsv } from "../csv";
import { inferSchema, validateForTask } from "../schema";
import { bytesOf, datasetErrorOf } from "./helpers";

const table = (text: string) => parseCsv(bytesOf(text));

describe("inferSchema", () => {
  it("uses the named label column and keeps the columns' types", () => {
    const schema = inferSchema(table("a,b,kind\n1,2,x\n3,4,y\n"), { labelColumn: "kind" });
    expect(schema).toEqual({
      kind: "tabular",
      columns: [
        { name: "a", type: "number" },
        { name: "b", type: "number" },
        { name: "kind", type: "string" },
      ],
      labelColumn: "kind",
    });
  });

  it("finds a conventional label column when none is named", () => {
    expect(inferSchema(table("x1,Species\n1,a\n2,b\n")).labelColumn).toBe("Species");
    expect(inferSchema(table("target,x1\n1,2\n0,3\n")).labelColumn).toBe("target");
  });

  it("names the missing label column and lists the columns there are", () => {
    const e = datasetErrorOf(() => inferSchema(table("a,b,c\n1,2,3\n"), { labelColumn: "species" }));
    expect(e.code).toBe("NO_LABEL_COLUMN");
    expect(e.message).toBe("the file has no column named 'species'; columns are: a, b, c");
  });

  it("asks for a label column when none is named and none is conventional", () => {
    const e = datasetErrorOf(() => inferSchema(table("a,b,c\n1,2,3\n")));
    expect(e.code).toBe("NO_LABEL_COLUMN");
    expect(e.message).toBe("no label column: name one (no column is called label, class, target, species, y); columns are: a, b, c");
  });

  it("infers text for a single string feature, and a square image shape when asked for an image", () => {
    const text = inferSchema(table("sentence,label\nhello there,a\ngood bye,b\n"));
    expect(text.kind).toBe("text");
    expect(text.textColumn).toBe("sentence");
    const pixels = Array.from({ length: 9 }, (_, i) => `p${i}`);
    const image = inferSchema(table(`${pixels.join(",")},label\n${"0,".repeat(9)}1\n`), { kind: "image" });
    expect(image.imageShape).toEqual([3, 3, 1]);
    const e = datasetErrorOf(() => inferSchema(table("p0,p1,label\n0,1,a\n"), { kind: "image" }));
    expect(e.code).toBe("BAD_IMAGE_SHAPE");
  });
});

describe("validateForTask", () => {
  it("accepts a numeric tabular table for classification and regression", () => {
    const t = table("a,b,y\n1,2,3\n4,5,6\n");
    const schema = inferSchema(t);
    expect(() => validateForTask(t, schema, "classification")).not.toThrow();
    expect(() => validateForTask(t, schema, "regression")).not.toThrow();
  });

  it("names the column, row and value of a non-number in a tabular feature column", () => {
    const rows = Array.from({ length: 11 }, (_, i) => `5.${i},3.1,setosa`);
    const t = table(["sepal_length,sepal_width,species", ...rows, "abc,3.0,setosa", "4.4,2.9,virginica"].join("\n"));
    const e = datasetErrorOf(() => validateForTask(t, inferSchema(t), "classification"));
    expect(e.code).toBe("NOT_A_NUMBER");
    expect(e.message).toBe(
      "column 'sepal_length' row 12: 'abc' is not a number (every feature column of a tabular dataset must be numeric)",
    );
    expect(e.row).toBe(12);
    expect(e.column).toBe("sepal_length");
  });

  it("requires a numeric label for regression", () => {
    const t = table("a,price\n1,10\n2,cheap\n");
    const e = datasetErrorOf(() => validateForTask(t, inferSchema(t, { labelColumn: "price", kind: "tabular" }), "regression"));
    expect(e.message).toBe("column 'price' row 2: 'cheap' is not a number; regression needs a numeric label");
  });

  it("requires two classes for classification", () => {
    const t = table("a,label\n1,x\n2,x\n3,\n");
    const e = datasetErrorOf(() => validateForTask(t, inferSchema(t), "classification"));
    expect(e.code).toBe("TOO_FEW_CLASSES");
    expect(e.message).toBe("the label column 'label' has only one class ('x'); classification needs at least two");
  });

  it("rejects a feature column with no values at all", () => {
    const t = table("a,b,label\n1,,x\n2,NA,y\n");
    const e = datasetErrorOf(() => validateForTask(t, inferSchema(t), "classification"));
    expect(e.code).toBe("EMPTY_COLUMN");
    expect(e.message).toBe("column 'b' has no values at all; remove it from the file");
  });

  it("checks an image's pixel count against its shape", () => {
    const t = table("p0,p1,p2,p3,label\n0,0,0,0,a\n1,1,1,1,b\n");
    const schema = { ...inferSchema(t, { kind: "image" }), imageShape: [3, 3, 1] as [number, number, number] };
    const e = datasetErrorOf(() => validateForTask(t, schema, "classification"));
    expect(e.message).toBe("the image shape [3, 3, 1] needs 9 pixel columns, the file has 4");
  });

  it("reports a label column that a recorded schema names but the table lacks", () => {
    const t = table("a,b\n1,2\n");
    const e = datasetErrorOf(() => validateForTask(t, { kind: "tabular", columns: t.columns, labelColumn: "species" }, "classification"));
    expect(e.message).toBe("the file has no column named 'species'; columns are: a, b");
  });
});
