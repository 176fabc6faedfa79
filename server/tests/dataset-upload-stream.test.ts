/**
 * The streaming upload route (server/http/dataset-upload.ts) on a real app: a 20 MB CSV streams in and is
 * checked in a worker while other calls keep being answered; caps give clear errors; refusals (anonymous, wrong
 * role, cross-site, too large by Content-Length) happen before a byte of the body is read; no temp file is left.
 */
import fs from "node:fs";
import path from "node:path";
import { monitorEventLoopDelay } from "node:perf_hooks";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { count } from "drizzle-orm";
import { auditEvents } from "@/db/schema";
import { handleDatasetUpload } from "@/server/http/dataset-upload";
import { readUploadProgress } from "@/server/datasets/upload/progress";
import { DEFAULT_UPLOAD_LIMITS, uploadLimits } from "@/server/datasets/upload/limits";
import { createTestApp, type TestApp } from "./test-app";
import { actorFor, uploadCsvAs, uploadRequest } from "./upload-helpers";

let app: TestApp;
beforeAll(() => {
  app = createTestApp();
});
afterAll(() => app.close());

const tempFiles = () => {
  const dir = path.join(app.dataDir, "tmp", "uploads");
  return fs.existsSync(dir) ? fs.readdirSync(dir) : [];
};

/** A body that records whether anyone read from it. */
function watchedBody(text: string) {
  const state = { pulled: false };
  const body = new ReadableStream<Uint8Array>(
    {
      pull(controller) {
        state.pulled = true;
        controller.enqueue(new TextEncoder().encode(text));
        controller.close();
      },
    },
    { highWaterMark: 0 },
  );
  return { body, state };
}

/** `rows` numeric rows generated lazily, in 64 KiB pieces (no Content-Length, like a chunked upload). */
function generatedCsv(rows: number, seed: number): { stream: ReadableStream<Uint8Array>; bytes: () => number } {
  let i = 0;
  let bytes = 0;
  const enc = new TextEncoder();
  const stream = new ReadableStream<Uint8Array>({
    pull(controller) {
      let piece = i === 0 ? "f0,f1,f2,f3,f4,f5,f6,label\n" : "";
      while (piece.length < 65536 && i < rows) {
        piece += `${(i * 0.37) % 11},${(i * 1.3) % 7},${i % 13},${(i * seed) % 17},${(i % 101) / 7},${i % 3},${(i * 7) % 19},${i % 2 ? "odd" : "even"}\n`;
        i++;
      }
      if (piece) {
        const chunk = enc.encode(piece);
        bytes += chunk.byteLength;
        controller.enqueue(chunk);
      }
      if (i >= rows) controller.close();
    },
  });
  return { stream, bytes: () => bytes };
}

describe("[upload] streaming CSV upload", () => {
  it("takes a 20 MB CSV streamed in, parsed in a worker, while other calls keep being answered", async () => {
    const { stream, bytes } = generatedCsv(420_000, 5);
    const histogram = monitorEventLoopDelay({ resolution: 10 });
    const latencies: number[] = [];
    let uploading = true;
    const other = (async () => {
      while (uploading) {
        const t0 = performance.now();
        await app.as("auditor").datasets.list();
        latencies.push(performance.now() - t0);
        await new Promise((r) => setTimeout(r, 25));
      }
    })();
    histogram.enable();
    const res = await handleDatasetUpload(
      app,
      uploadRequest(stream, { name: "twenty megabytes", uploadId: "stream-test-1" }),
      actorFor(app, "engineer"),
    );
    histogram.disable();
    uploading = false;
    await other;
    const row = (await res.json()) as { rowCount: number; byteSize: number; sha256: string };
    expect(res.status).toBe(200);
    expect(row.rowCount).toBe(420_000);
    expect(bytes()).toBeGreaterThan(20 * 1000 * 1000);
    expect(row.byteSize).toBe(bytes());
    expect(app.artifacts.has(row.sha256)).toBe(true);
    // Parsing 20 MB on the main thread stalled it for seconds; now the loop never waits long.
    const maxStallMs = histogram.max / 1e6;
    console.log(
      `20 MB upload: event loop max stall ${maxStallMs.toFixed(0)} ms, ${latencies.length} other calls, slowest ${Math.max(...latencies).toFixed(0)} ms`,
    );
    expect(maxStallMs, `event loop stalled ${maxStallMs.toFixed(0)} ms`).toBeLessThan(500);
    expect(latencies.length).toBeGreaterThan(5);
    expect(Math.max(...latencies)).toBeLessThan(500);
    expect(readUploadProgress(actorFor(app, "engineer").id, "stream-test-1")).toMatchObject({ phase: "done", rows: 420_000 });
    expect(tempFiles()).toEqual([]);
  });

  it("refuses before reading the body: anonymous, a role that cannot upload, a cross-site post, a declared size over the cap", async () => {
    const events = app.db.select({ n: count() }).from(auditEvents).get()!.n;
    const cases: { user: ReturnType<typeof actorFor> | null; headers?: Record<string, string>; status: number; message: RegExp }[] = [
      { user: null, status: 401, message: /sign in first/ },
      { user: actorFor(app, "auditor"), status: 403, message: /auditor cannot upload datasets \(needs: engineer\)/ },
      {
        user: actorFor(app, "engineer"),
        headers: { "sec-fetch-site": "cross-site", origin: "https://evil.example" },
        status: 403,
        message: /cross-origin request refused/,
      },
      {
        user: actorFor(app, "engineer"),
        headers: { "sec-fetch-site": "", origin: "https://evil.example" },
        status: 403,
        message: /cross-origin request refused/,
      },
      {
        user: actorFor(app, "engineer"),
        headers: { "content-length": String(DEFAULT_UPLOAD_LIMITS.maxBytes + 1) },
        status: 413,
        message: /The file is 128\.0 MiB \(134217729 bytes\); the limit is 128 MiB \(server setting RUNLEDGER_UPLOAD_MAX_BYTES\)/,
      },
    ];
    for (const c of cases) {
      const { body, state } = watchedBody("a,label\n1,x\n");
      const headers = { ...c.headers };
      const req = uploadRequest(body, { name: "refused" }, headers);
      if (headers["sec-fetch-site"] === "") req.headers.delete("sec-fetch-site");
      const res = await handleDatasetUpload(app, req, c.user);
      expect(res.status).toBe(c.status);
      expect(((await res.json()) as { error: { message: string } }).error.message).toMatch(c.message);
      expect(state.pulled, `body read for a ${c.status}`).toBe(false);
    }
    expect(app.db.select({ n: count() }).from(auditEvents).get()!.n).toBe(events);
  });

  it("refuses a body that passes the byte cap mid-stream (no Content-Length), and leaves no temp file", async () => {
    const { stream } = generatedCsv(50_000, 3);
    const res = await handleDatasetUpload(app, uploadRequest(stream, { name: "too big" }), actorFor(app, "engineer"), {
      limits: { ...DEFAULT_UPLOAD_LIMITS, maxBytes: 100_000 },
    });
    expect(res.status).toBe(413);
    expect(((await res.json()) as { error: { message: string } }).error.message).toBe(
      "The file is larger than the limit of 100000 bytes (server setting RUNLEDGER_UPLOAD_MAX_BYTES)",
    );
    expect(tempFiles()).toEqual([]);
  });

  it("names the cap a file breaks: rows, columns, characters per cell, and a row an unmatched quote runs to the end", async () => {
    const limits = { maxBytes: 10_000_000, maxRows: 3, maxColumns: 4, maxCellChars: 20 };
    const up = (csv: string) => uploadCsvAs(app, "engineer", csv, { name: "capped" }, limits);
    await expect(up("a,label\n1,x\n2,y\n3,x\n4,y\n")).rejects.toThrow(
      "The file has more than 3 data rows; the limit is 3 (server setting RUNLEDGER_UPLOAD_MAX_ROWS)",
    );
    await expect(up("a,b,c,d,label\n1,2,3,4,x\n")).rejects.toThrow(
      "The header has 5 columns; the limit is 4 (server setting RUNLEDGER_UPLOAD_MAX_COLUMNS)",
    );
    await expect(up(`a,label\n1,x\n2,${"y".repeat(21)}\n`)).rejects.toThrow(
      "row 2, column 'label': the value is 21 characters long; the limit is 20 (server setting RUNLEDGER_UPLOAD_MAX_CELL_CHARS)",
    );
    const quoteRunsOn = `a,label\n1,x\n2,"y\n${"3,z\n".repeat(40_000)}`;
    await expect(up(quoteRunsOn)).rejects.toThrow(
      /^row 2 is longer than 65,536 characters, the most one row may hold; an unmatched quote \("\) makes the rest of the file one row$/,
    );
    // Within the caps the same file shape is accepted.
    await expect(up("a,label\n1,x\n2,y\n3,x\n")).resolves.toMatchObject({ rowCount: 3 });
    expect(tempFiles()).toEqual([]);
  });

  it("reads the caps from the environment and refuses a malformed setting by name", () => {
    expect(uploadLimits({})).toEqual(DEFAULT_UPLOAD_LIMITS);
    expect(uploadLimits({ RUNLEDGER_UPLOAD_MAX_ROWS: "10", RUNLEDGER_UPLOAD_MAX_BYTES: "2048" })).toMatchObject({
      maxRows: 10,
      maxBytes: 2048,
      maxColumns: DEFAULT_UPLOAD_LIMITS.maxColumns,
    });
    expect(() => uploadLimits({ RUNLEDGER_UPLOAD_MAX_CELL_CHARS: "lots" })).toThrow(
      'RUNLEDGER_UPLOAD_MAX_CELL_CHARS="lots" is not a whole number ≥ 1',
    );
  });
});
