/**
 * RunIdKeyed (run-id-keyed.ts): checkRuns' maps of the last start and status per run, keyed by number where an
 * id's text allows. A lookup by a row's id must find exactly what a Map keyed by the text String(id) would find, for
 * every entity id text an operator could write into the log.
 */
import { describe, expect, it } from "vitest";
import { mulberry32 } from "@/trainer/data/prng";
import { RunIdKeyed, safeIntegerOfText } from "../run-id-keyed";

/** The definition safeIntegerOfText implements without making a string. */
const reference = (text: string): number | null => {
  const n = Number(text);
  return Number.isSafeInteger(n) && String(n) === text ? n : null;
};

/** Entity id texts: canonical ids, and near misses of every kind. */
const texts = [
  ..."0 1 7 42 -1 -42 9007199254740991 -9007199254740991 9007199254740992 9007199254740993 -9007199254740992".split(" "),
  ..."00 07 -0 -00 +7 7.0 7. .7 1e3 0x10 0b1 Infinity NaN".split(" "),
  "",
  "-",
  " 7",
  "7 ",
  "\u0667",
  "99999999999999999",
  "1234567890123456",
  "12345678901234567",
];

describe("RunIdKeyed: a run id's text as a number where that is the same key", () => {
  it("safeIntegerOfText is String(n) === text for a safe integer n, on edge cases and random texts", () => {
    for (const text of texts) expect(safeIntegerOfText(text), JSON.stringify(text)).toBe(reference(text));
    const random = mulberry32(11);
    const alphabet = "0123456789-+.e x";
    for (let i = 0; i < 20_000; i++) {
      const len = 1 + Math.floor(random() * 18);
      let text = "";
      for (let k = 0; k < len; k++) text += alphabet[Math.floor(random() * (k === 0 ? alphabet.length : 10))];
      expect(safeIntegerOfText(text), JSON.stringify(text)).toBe(reference(text));
      const n = Math.floor((random() - 0.5) * 2 ** (1 + Math.floor(random() * 54)));
      expect(safeIntegerOfText(String(n)), String(n)).toBe(reference(String(n)));
    }
  });

  it("finds by a row id exactly what a Map keyed by String(id) finds, whichever way each value was stored", () => {
    const ids = [0, -0, 7, -7, 42, 2 ** 53 - 1, 2 ** 53, 2 ** 60, 1.5, -1e300];
    const keyed = new RunIdKeyed<string>();
    const byText = new Map<string, string>();
    for (const text of texts) {
      keyed.setText(text, `event ${text}`);
      byText.set(text, `event ${text}`);
    }
    for (const id of [2 ** 60, 1.5, 8]) {
      keyed.setId(id, `row ${id}`);
      byText.set(String(id), `row ${id}`);
    }
    for (const id of [...ids, 8, 9]) expect(keyed.getId(id), String(id)).toBe(byText.get(String(id)));
    // An entity id stored as a BLOB (read as a Buffer) is kept apart and met by no row id, as with text keys.
    const blob = Buffer.from("7");
    expect(safeIntegerOfText(blob as unknown as string)).toBeNull();
    const withBlob = new RunIdKeyed<string>();
    withBlob.setText(blob as unknown as string, "blob");
    expect(withBlob.getId(7)).toBeUndefined();
  });
});
