/**
 * datasets.rows, the dataset page's Rows preview: the first rows of the raw file, typed by the stored schema and
 * split by the upload's CSV rules; read from a bounded prefix through the artifact store (never a whole read),
 * for uploads and built-in datasets alike, with nothing recorded; on PostgreSQL, from the chunks the prefix spans.
 */
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import fs from "node:fs";
import path from "node:path";
import { createHash } from "node:crypto";
import { count } from "drizzle-orm";
import { pgStore } from "@/db/store";
import { pgArtifactStore, CLUSTER_ARTIFACT_CHUNK_BYTES } from "@/server/artifacts/pg-store";
import { previewDatasetRows } from "@/server/datasets/preview";
import { uploadDatasetFile } from "@/server/datasets/service";
import { describePg } from "./pg-test-env";
import { seedPeople, TEST_PEOPLE, tempDirForSuite, twoPgServersForSuite } from "./store-test-env";
import { datasets } from "@/db/schema";
import { createCaller } from "@/server/trpc/root";
import { ensureBuiltinDataset } from "@/server/datasets/service";
import { PREVIEW_PREFIX_BYTES } from "@/server/datasets/preview";
import type { ArtifactStore } from "@/server/artifacts/store";
import { actorFor, uploadCsvAs } from "./upload-helpers";
import { createTestApp, recordedCounts, type TestApp } from "./test-app";

let app: TestApp;
beforeAll(() => {
  app = createTestApp();
});
afterAll(() => app.close());

const upload = (csv: string, name: string, query: { kind?: string; textColumn?: string; labelColumn?: string } = {}) =>
  uploadCsvAs(app, "engineer", csv, { name, ...query });

/** A caller as `role` whose artifact store refuses whole reads, so a preview that read the whole file would fail. */
function callerWithoutWholeReads(role: "engineer" | "auditor") {
  const artifacts: ArtifactStore = {
    ...app.artifacts,
    get: (sha256) => {
      throw new Error(`whole read of ${sha256}`);
    },
  };
  const services = { ...app, artifacts };
  return createCaller({ services, user: actorFor(app, role), sessionToken: undefined });
}

describe("[datasets.rows] preview", () => {
  it("returns the first rows typed by the schema, the label column marked, with the upload's CSV rules", async () => {
    const csv = ["height,note,label", "1.5,plain,a", '2,"quoted, with a comma",b', 'NA,"two\nlines",a', " 4e2 , padded ,b", "5,?,a"].join(
      "\n",
    );
    const d = await upload(csv, "typed rows");
    const p = await callerWithoutWholeReads("auditor").datasets.rows({ id: d.id, limit: 4 });
    expect(p.columns).toEqual([
      { name: "height", type: "number", label: false },
      { name: "note", type: "string", label: false },
      { name: "label", type: "string", label: true },
    ]);
    expect(p.rows).toEqual([
      [1.5, "plain", "a"],
      [2, "quoted, with a comma", "b"],
      [null, "two\nlines", "a"],
      [400, "padded", "b"],
    ]);
    expect(p).toMatchObject({ totalRows: 5, cutShort: null, bytesRead: Buffer.byteLength(csv), byteSize: Buffer.byteLength(csv) });
    // Default 20 rows: all five here, the missing-value token as null.
    const all = await app.as("reviewer").datasets.rows({ id: d.id });
    expect(all.rows).toHaveLength(5);
    expect(all.rows[4]).toEqual([5, null, "a"]);
  });

  it("refuses a row count outside 1..50 with a clear message", async () => {
    const d = await upload("x,label\n1,a\n2,b\n", "limits");
    await expect(app.as("engineer").datasets.rows({ id: d.id, limit: 51 })).rejects.toThrow(/at most 50 rows/);
    await expect(app.as("engineer").datasets.rows({ id: d.id, limit: 0 })).rejects.toThrow(/at least 1 row/);
  });

  it("reads only a bounded prefix of a file larger than it, and answers quickly with the first rows", async () => {
    const lines = ["id,value,label"];
    for (let i = 0; i < 120_000; i++) lines.push(`${i},${(i * 0.25).toFixed(2)},${i % 3 === 0 ? "yes" : "no"}`);
    const csv = lines.join("\n");
    expect(Buffer.byteLength(csv)).toBeGreaterThan(8 * PREVIEW_PREFIX_BYTES);
    const d = await upload(csv, "large");
    const started = performance.now();
    const p = await callerWithoutWholeReads("engineer").datasets.rows({ id: d.id, limit: 50 });
    expect(performance.now() - started).toBeLessThan(1000);
    expect(p.bytesRead).toBe(PREVIEW_PREFIX_BYTES);
    expect(p.byteSize).toBe(Buffer.byteLength(csv));
    expect(p.totalRows).toBe(120_000);
    expect(p.rows).toHaveLength(50);
    expect(p.rows[0]).toEqual([0, 0, "yes"]);
    expect(p.rows[49]).toEqual([49, 12.25, "no"]);
    expect(p.cutShort).toBeNull();
  });

  it("keeps a multi-byte character cut by the prefix's end out of the rows, without refusing the file", async () => {
    // Rows of 'é' (2 bytes) sized so the prefix ends between the two bytes of one.
    const header = "text,label\n";
    let csv = "";
    for (let width = 10; width < 40; width++) {
      const row = `${"é".repeat(width)},a\n`;
      csv = header + row.repeat(Math.ceil((2 * PREVIEW_PREFIX_BYTES) / Buffer.byteLength(row)));
      if (Buffer.from(csv)[PREVIEW_PREFIX_BYTES - 1] === 0xc3) break;
    }
    expect(Buffer.from(csv)[PREVIEW_PREFIX_BYTES - 1]).toBe(0xc3);
    const d = await upload(csv, "accents", { kind: "text", textColumn: "text" });
    const p = await app.as("engineer").datasets.rows({ id: d.id, limit: 50 });
    expect(p.kind).toBe("text");
    expect(p.textColumn).toBe("text");
    expect(p.rows).toHaveLength(50);
    expect(p.rows.every((r) => /^é+$/.test(String(r[0])) && r[1] === "a")).toBe(true);
  });

  it("says so when a row does not end within the prefix, showing the rows before it", async () => {
    const long = "w".repeat(95_000);
    const csv = ["a,b,c,label", "1,2,3,x", `${long},${long},${long},y`, "4,5,6,x"].join("\n");
    const d = await upload(csv, "long row");
    const p = await app.as("engineer").datasets.rows({ id: d.id });
    expect(p.rows).toEqual([["1", "2", "3", "x"]]);
    expect(p.totalRows).toBe(3);
    expect(p.cutShort).toBe("row 2 does not end within the first 256 KiB of the file, which is all a preview reads");
  });

  it("previews built-in datasets from the artifact store (Iris; the digits images with their shape)", async () => {
    const admin = actorFor(app, "admin");
    const iris = ensureBuiltinDataset(app.db, app.artifacts, admin, "iris");
    const p = await callerWithoutWholeReads("auditor").datasets.rows({ id: iris.id, limit: 3 });
    expect(p.columns.map((c) => c.name)).toEqual(["sepal_length", "sepal_width", "petal_length", "petal_width", "species"]);
    expect(p.columns.find((c) => c.label)?.name).toBe("species");
    expect(p.rows).toEqual([
      [5.1, 3.5, 1.4, 0.2, "setosa"],
      [4.9, 3, 1.4, 0.2, "setosa"],
      [4.7, 3.2, 1.3, 0.2, "setosa"],
    ]);
    expect(p.totalRows).toBe(150);
    const digits = ensureBuiltinDataset(app.db, app.artifacts, admin, "digits");
    const img = await app.as("auditor").datasets.rows({ id: digits.id, limit: 2 });
    expect(img).toMatchObject({ kind: "image", imageShape: [8, 8, 1], totalRows: 1500 });
    expect(img.rows[0]).toHaveLength(65);
  });

  it("answers an unknown id with a not-found error naming it, and refuses a caller who is not signed in", async () => {
    await expect(app.as("engineer").datasets.rows({ id: 987_654 })).rejects.toMatchObject({
      code: "NOT_FOUND",
      message: "dataset 987654 was not found",
    });
    const d = await upload("x,label\n1,a\n", "anonymous");
    await expect(app.anonymous.datasets.rows({ id: d.id })).rejects.toMatchObject({ code: "UNAUTHORIZED" });
  });

  it("records nothing: no audit event, no run, no dataset", async () => {
    const d = await upload("x,label\n1,a\n2,b\n", "no side effects");
    const iris = ensureBuiltinDataset(app.db, app.artifacts, actorFor(app, "admin"), "iris");
    const datasetCount = () => app.db.select({ n: count() }).from(datasets).get()!.n;
    const before = { ...recordedCounts(app), datasets: datasetCount() };
    for (const role of ["engineer", "reviewer", "auditor"] as const) {
      await app.as(role).datasets.rows({ id: d.id });
      await app.as(role).datasets.rows({ id: iris.id, limit: 50 });
    }
    await app
      .as("engineer")
      .datasets.rows({ id: 987_655 })
      .catch(() => undefined);
    expect({ ...recordedCounts(app), datasets: datasetCount() }).toEqual(before);
  });
});

describePg("[datasets.rows] preview on PostgreSQL (artifacts in PostgreSQL)", () => {
  const pg = twoPgServersForSuite();
  const dir = tempDirForSuite("runledger-rows-preview-");

  it("reads a prefix from the chunks it spans, and previews an upload whose file spans several chunks", async () => {
    const store = pgStore(pg.a());
    const artifacts = pgArtifactStore(pg.a().$client);
    await seedPeople(store, { at: new Date().toISOString(), passwordHash: "x" });
    const lines = ["id,value,label"];
    for (let i = 0; i < 200_000; i++) lines.push(`${i},${i % 97},${i % 2 ? "odd" : "even"}`);
    const csv = lines.join("\n");
    const bytes = Buffer.from(csv);
    expect(bytes.length).toBeGreaterThan(2 * CLUSTER_ARTIFACT_CHUNK_BYTES);
    const file = path.join(dir(), "large.csv");
    fs.writeFileSync(file, csv);
    const sha256 = createHash("sha256").update(bytes).digest("hex");
    const d = await uploadDatasetFile(
      { db: store, actor: TEST_PEOPLE.engineer, artifacts },
      { file, sha256, meta: { name: "large on PostgreSQL", labelColumn: "label" } },
    );
    // Within the first chunk, across the first two, and past the end.
    for (const n of [PREVIEW_PREFIX_BYTES, CLUSTER_ARTIFACT_CHUNK_BYTES + 5, bytes.length + 10]) {
      const p = await artifacts.readPrefix(sha256, n);
      expect(p.size).toBe(bytes.length);
      expect(Buffer.from(p.bytes).equals(bytes.subarray(0, n))).toBe(true);
    }
    const noWholeReads = { ...artifacts, get: () => Promise.reject(new Error("whole read")) };
    const p = await previewDatasetRows({ db: store, artifacts: noWholeReads }, { id: d.id, limit: 50 });
    expect(p).toMatchObject({ bytesRead: PREVIEW_PREFIX_BYTES, byteSize: bytes.length, totalRows: 200_000, cutShort: null });
    expect(p.rows.slice(0, 2)).toEqual([
      [0, 0, "even"],
      [1, 1, "odd"],
    ]);
    expect(p.rows).toHaveLength(50);
  });
});
