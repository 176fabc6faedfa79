/** CSV upload with a declared kind: tabular, image (height × width × channels) or text (its text column); errors name what is wrong. */
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { createTestApp, type TestApp } from "./test-app";
import { uploadCsvAs } from "./upload-helpers";

let app: TestApp;
beforeAll(() => {
  app = createTestApp();
});
afterAll(() => app.close());

// The upload route (streamed body, settings in the query string); some inputs carry values it must refuse.
const upload = ({
  csv,
  ...query
}: {
  csv: string[];
  name: string;
  kind?: string;
  imageShape?: number[];
  textColumn?: string;
  labelColumn?: string;
}) => uploadCsvAs(app, "engineer", csv.join("\n"), query);

// Six 2×3 single-channel "images" (6 pixel columns) and a label.
const imageCsv = [
  "p0,p1,p2,p3,p4,p5,label",
  ...Array.from({ length: 6 }, (_, i) => `${i % 2},0,1,${(i + 1) % 2},1,0,${i % 2 ? "odd" : "even"}`),
];

describe("[datasets.upload] kinds", () => {
  it("records an image dataset with the shape it was given", async () => {
    const row = await upload({ name: "tiny images", csv: imageCsv, kind: "image", imageShape: [2, 3, 1] });
    expect(row.rowCount).toBe(6);
    const detail = await app.as("auditor").datasets.get({ id: row.id });
    expect(detail.schema).toMatchObject({ kind: "image", imageShape: [2, 3, 1], labelColumn: "label" });
  });

  it("refuses an image shape that does not match the pixel columns, naming both counts", async () => {
    await expect(
      upload({ name: "bad shape", csv: [...imageCsv, "1,1,1,1,1,1,odd"], kind: "image", imageShape: [3, 3, 1] }),
    ).rejects.toThrow("image shape 3×3×1 needs 9 pixel columns, but the file has 6 besides the label column 'label'");
    // Without a shape, 6 pixels are not a square: the pipeline's own message asks for one.
    await expect(upload({ name: "no shape", csv: [...imageCsv, "0,0,0,0,0,0,odd"], kind: "image" })).rejects.toThrow(
      /6 pixel columns is not a square image; give \[height, width, channels\]/,
    );
  });

  it("records a text dataset with its named text column, and refuses settings of another kind", async () => {
    const csv = [
      "id,sentence,topic",
      '1,"the cat sat on the mat",animals',
      '2,"stocks rose today",finance',
      '3,"a dog barked",animals',
      '4,"bonds fell",finance',
    ];
    const row = await upload({ name: "sentences", csv: csv, kind: "text", textColumn: "sentence", labelColumn: "topic" });
    expect((await app.as("engineer").datasets.get({ id: row.id })).schema).toMatchObject({
      kind: "text",
      textColumn: "sentence",
      labelColumn: "topic",
    });
    await expect(upload({ name: "mixed", csv: csv, kind: "tabular", textColumn: "sentence", labelColumn: "topic" })).rejects.toThrow(
      /a text column applies to text datasets/,
    );
    await expect(
      upload({ name: "missing column", csv: [...csv, '5,"x",animals'], kind: "text", textColumn: "body", labelColumn: "topic" }),
    ).rejects.toThrow(/no column named 'body'/);
  });

  it("keeps the row-level CSV errors clear", async () => {
    await expect(upload({ name: "ragged", csv: ["a,b,label", "1,2,x", "3,y"], kind: "tabular" })).rejects.toThrow(
      /row 2 has 2 fields, the header has 3/,
    );
    await expect(upload({ name: "bad dims", csv: imageCsv, kind: "image", imageShape: [0, 3, 1] })).rejects.toThrow(
      /image height must be ≥ 1/,
    );
  });
});
