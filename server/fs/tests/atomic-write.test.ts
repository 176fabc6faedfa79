/** server/fs/atomic-write.ts on real files: exact modes despite the umask, create-only never overwrites, replace does, no temp file is left. */
import fs from "node:fs";
import os from "node:os";
import path from "node:path";
import { afterEach, describe, expect, it } from "vitest";
import { writeFileAtomic } from "@/server/fs/atomic-write";

const dirs: string[] = [];
afterEach(() => {
  for (const d of dirs.splice(0)) fs.rmSync(d, { recursive: true, force: true });
});
function tempDir(): string {
  const d = fs.mkdtempSync(path.join(os.tmpdir(), "runledger-atomic-"));
  dirs.push(d);
  return d;
}

describe("writeFileAtomic", () => {
  it("creates once with the exact mode even under a narrow umask, and never overwrites in create-only mode", () => {
    const dir = tempDir();
    const file = path.join(dir, "k.key");
    const old = process.umask(0o077);
    try {
      expect(writeFileAtomic(file, "first", { mode: 0o644, createOnly: true })).toBe(true);
    } finally {
      process.umask(old);
    }
    expect(fs.statSync(file).mode & 0o777).toBe(0o644);
    expect(writeFileAtomic(file, "second", { mode: 0o600, createOnly: true })).toBe(false);
    expect(fs.readFileSync(file, "utf8")).toBe("first");
    expect(fs.statSync(file).mode & 0o777).toBe(0o644);
    expect(fs.readdirSync(dir)).toEqual(["k.key"]);
  });

  it("replaces an existing file with bytes and the new mode, leaving no temp file", () => {
    const dir = tempDir();
    const file = path.join(dir, "state.json");
    fs.writeFileSync(file, "old", { mode: 0o644 });
    const bytes = new Uint8Array([0, 1, 2, 255]);
    expect(writeFileAtomic(file, bytes, { mode: 0o600 })).toBe(true);
    expect([...fs.readFileSync(file)]).toEqual([0, 1, 2, 255]);
    expect(fs.statSync(file).mode & 0o777).toBe(0o600);
    expect(fs.readdirSync(dir)).toEqual(["state.json"]);
  });

  it("fails loudly when the directory does not exist, leaving nothing behind", () => {
    const dir = tempDir();
    expect(() => writeFileAtomic(path.join(dir, "missing", "f"), "x", { mode: 0o600 })).toThrow(/ENOENT/);
    expect(fs.readdirSync(dir)).toEqual([]);
  });
});
