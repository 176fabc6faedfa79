/**
 * Upload temp files a crash left behind are swept when the server starts: a real data directory with a stale
 * upload-*.csv (mtime 2 hours ago), a fresh one (an upload still streaming) and a folder; opening the services the
 * way the server does (recover) removes only the stale file.
 */
import fs from "node:fs";
import path from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { createAppServices } from "@/server/app-context/app-services";
import { uploadTempDir } from "@/server/datasets/service";
import { STALE_UPLOAD_TEMP_MS, sweepStaleUploadTemps, uploadTempFolder } from "@/server/datasets/upload/sweep-temp";
import { createTestApp, type TestApp } from "./test-app";

let app: TestApp;
beforeAll(() => {
  app = createTestApp();
});
afterAll(() => app.close());

function plant(name: string, ageMs: number): string {
  const file = path.join(uploadTempDir(app.dataDir), name);
  fs.writeFileSync(file, "a,b\n1,2\n");
  const t = new Date(Date.now() - ageMs);
  fs.utimesSync(file, t, t);
  return file;
}

describe("[uploads] stale temp files are swept at server start", () => {
  it("the sweep and the upload route use the same folder", () => {
    expect(uploadTempFolder(app.dataDir)).toBe(uploadTempDir(app.dataDir));
  });

  it("opening the services as the server does removes uploads older than an hour and keeps fresh ones", async () => {
    const stale = plant("upload-crashed.csv", 2 * STALE_UPLOAD_TEMP_MS);
    const fresh = plant("upload-streaming.csv", 60_000);
    const folder = path.join(uploadTempDir(app.dataDir), "not-an-upload");
    fs.mkdirSync(folder);
    const server = createAppServices(app.dataDir, { recover: true, keyDir: app.keyDir });
    await server.recovered;
    server.db.$client.close();
    expect(fs.existsSync(stale)).toBe(false);
    expect(fs.existsSync(fresh)).toBe(true);
    expect(fs.existsSync(folder)).toBe(true);
  });

  it("reports what it removed and kept; a missing folder is not an error", () => {
    const stale = plant("upload-old.csv", STALE_UPLOAD_TEMP_MS + 5_000);
    const r = sweepStaleUploadTemps(app.dataDir);
    expect(r.removed).toEqual(["upload-old.csv"]);
    expect(r.kept).toBe(1);
    expect(r.failed).toEqual([]);
    expect(fs.existsSync(stale)).toBe(false);
    expect(sweepStaleUploadTemps(path.join(app.dataDir, "no-such-dir"))).toEqual({ removed: [], kept: 0, failed: [] });
  });
});
