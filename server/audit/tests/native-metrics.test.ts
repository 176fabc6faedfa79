/**
 * The native extension's metric series functions (rl_audit.c): rl_js_number prints exactly what JavaScript prints
 * for a number, or says it is not certain; rl_metric_points digests and summarises a run's points exactly as
 * records.ts MetricDigest does; rl_metric_summary_rows and rl_metric_rollup_rows digest the summary and rollup rows
 * so that the digests are equal exactly when the rows hold what the points give. Most values must be answered (or
 * the fast path in check-metrics.ts would be dead); whatever is answered must equal JavaScript.
 */
import { describe, expect, it } from "vitest";
import { MetricDigest } from "../content/records";
import { metricsInSqlite, type RunMetricsInSqlite } from "../content/check-metrics-native";
import { nativeOff, nativeTestDb } from "./native-test-db";
import { nextDouble } from "./next-double";
import { mulberry32 as rng } from "@/trainer/data/prng";

const SCHEMA = `
  CREATE TABLE metrics (run_id integer NOT NULL, key text NOT NULL, step integer NOT NULL, epoch real NOT NULL, value real NOT NULL,
    wall_time_ms integer NOT NULL, PRIMARY KEY (run_id, key, step)) WITHOUT ROWID;
  CREATE TABLE metric_summaries (run_id integer NOT NULL, key text NOT NULL, last real NOT NULL, last_step integer NOT NULL,
    min real NOT NULL, max real NOT NULL, count integer NOT NULL, PRIMARY KEY (run_id, key));
  CREATE TABLE metric_rollups (run_id integer NOT NULL, key text NOT NULL, block integer NOT NULL, first_step integer NOT NULL,
    last_step integer NOT NULL, min_step integer NOT NULL, min_value real NOT NULL, max_step integer NOT NULL, max_value real NOT NULL,
    count integer NOT NULL, PRIMARY KEY (run_id, key, block));`;

describe.skipIf(nativeOff)("rl_js_number", () => {
  it("prints what JavaScript prints, or is not certain; and answers plain doubles", () => {
    const db = nativeTestDb("");
    const printed = db.prepare("SELECT rl_js_number(?)").pluck();
    const random = rng(7);
    const view = new DataView(new ArrayBuffer(8));
    const values: number[] = [
      0,
      -0,
      1,
      -1,
      0.1,
      0.5,
      1 / 3,
      2 / 3,
      1e21,
      1e-7,
      1.5e-7,
      1e-6,
      123456789012345680000,
      5e-324,
      2 ** 53,
      2 ** 53 + 2,
    ];
    for (let i = 0; i < 60_000; i++) {
      view.setUint32(0, (random() * 2 ** 32) >>> 0);
      view.setUint32(4, (random() * 2 ** 32) >>> 0);
      const bits = view.getFloat64(0);
      if (Number.isFinite(bits)) values.push(bits);
      const k = 1 + Math.floor(random() * 17);
      const decimal = Number(`${Math.floor(random() * 10 ** k)}e${Math.floor(random() * 60) - 30}`);
      values.push(decimal, -decimal, nextDouble(decimal), random(), random() * 1000, Math.floor(random() * 1e6) / 1000);
    }
    let certain = 0,
      plain = 0,
      plainCertain = 0;
    for (const v of values) {
      const got = printed.get(v) as string | Buffer;
      if (typeof got === "string") {
        expect(got, `rl_js_number(${v})`).toBe(String(v));
        certain++;
      } else expect(got.length).toBe(0);
      const magnitude = Math.abs(v);
      if (magnitude > 1e-290 && magnitude < 1e290) {
        plain++;
        if (typeof got === "string") plainCertain++;
      }
    }
    expect(certain).toBeGreaterThan(values.length * 0.9);
    expect(plainCertain).toBeGreaterThan(plain * 0.999); // only power-of-two significands beyond 15 digits are left
    // INTEGER as better-sqlite3 reads it; beyond 2^53 (read inexactly), TEXT and NULL are not certain.
    expect(db.prepare("SELECT rl_js_number(12345)").pluck().get()).toBe("12345");
    for (const sql of ["SELECT rl_js_number(9007199254740993)", "SELECT rl_js_number('1')", "SELECT rl_js_number(NULL)"])
      expect((db.prepare(sql).pluck().get() as Buffer).length).toBe(0);
    db.close();
  });
});

describe.skipIf(nativeOff)("numbers without printf or strtod (rl_audit.c js_number_exact, clinger_number)", () => {
  it("prints the 15-, 16- and 17-digit doubles of everyday magnitudes as JavaScript does, all of them answered", () => {
    // js_number_exact answers every double of 1e-5 <= |d| < 1e15 but powers of two with integer arithmetic alone:
    // one wrong digit, a wrong length or a wrong nearest decimal would show here.
    const db = nativeTestDb("");
    const printed = db.prepare("SELECT rl_js_number(?)").pluck();
    const random = rng(11);
    let unanswered = 0;
    for (let i = 0; i < 100_000; i++) {
      const magnitude = 10 ** (Math.floor(random() * 20) - 5);
      const x = (random() < 0.5 ? -1 : 1) * random() * magnitude;
      for (const v of [x, 1 / (1 + Math.floor(random() * 1e4)), nextDouble(x), Number(x.toPrecision(16)), Number(x.toPrecision(15))]) {
        if (Math.abs(v) < 1e-5 || Math.abs(v) >= 1e15) continue;
        const got = printed.get(v) as string | Buffer;
        if (typeof got === "string") expect(got, `rl_js_number(${v})`).toBe(String(v));
        else unanswered++;
      }
    }
    expect(unanswered).toBeLessThan(10); // (only a significand that is a power of two: rare among random doubles)
    db.close();
  });

  it("reads a JSON number token as JSON.parse does, fast path (<= 15 digits, |exponent| <= 22) or strtod", () => {
    const db = nativeTestDb("");
    const read = db.prepare("SELECT rl_json_number(?)").pluck();
    const random = rng(12);
    const tokens = [
      "0",
      "-0",
      "0.0",
      "-0.0",
      "1e22",
      "1e23",
      "123456789012345",
      "1234567890123456",
      "0.1",
      "1E+2",
      "5e-324",
      "1.5e-23",
      "9e-22",
    ];
    for (let i = 0; i < 50_000; i++) {
      const digits = String(Math.floor(random() * 10 ** (1 + Math.floor(random() * 17))));
      const point = Math.floor(random() * (digits.length + 1));
      const mantissa = point === digits.length ? digits : `${digits.slice(0, point) || "0"}.${digits.slice(point)}`;
      const exponent = random() < 0.5 ? "" : `e${Math.floor(random() * 60) - 30}`;
      tokens.push(`${random() < 0.3 ? "-" : ""}${mantissa}${exponent}`.replace(/^(-?)0+(\d)/, "$1$2"));
    }
    for (const token of tokens) {
      const got = read.get(token) as number | null;
      expect(Object.is(got, JSON.parse(token)), `rl_json_number(${token}) = ${got}`).toBe(true);
    }
    expect(read.get("01")).toBeNull();
    expect(read.get("1.")).toBeNull();
    db.close();
  });
});

/** Every run metricsInSqlite visits, in order. */
function runsOf(db: Parameters<typeof metricsInSqlite>[0]) {
  const runs: [number, RunMetricsInSqlite | null][] = [];
  metricsInSqlite(db).eachRun((runId, found) => runs.push([runId, found]));
  return runs;
}

describe.skipIf(nativeOff)("rl_metric_points and the summary and rollup rows", () => {
  const KEYS = ["acc", "loss", 'q"uote', "val_loss", "ünï", "😀", "a\\b", "x\ny"];

  /** Random runs of points (steps increasing within a key, blocks of 1024 crossed), with the rows MetricDigest derives. */
  function seeded(seed: number) {
    const db = nativeTestDb(SCHEMA);
    const random = rng(seed);
    const point = db.prepare("INSERT INTO metrics VALUES (?, ?, ?, ?, ?, 0)");
    const digests = new Map<number, MetricDigest>();
    for (let run = 1; run <= 60; run++) {
      const keys = KEYS.filter(() => random() < 0.4).sort((a, b) => (Buffer.from(a) < Buffer.from(b) ? -1 : 1));
      const rows: [string, number, number, number][] = [];
      for (const key of keys) {
        let step = Math.floor(random() * 3);
        const n = 1 + Math.floor(random() * 40);
        for (let i = 0; i < n; i++) {
          step += 1 + Math.floor(random() * (random() < 0.1 ? 3000 : 30));
          const value = random() < 0.1 ? Math.floor(random() * 5) : random() < 0.1 ? -random() * 1e-9 : 1 / (1 + random() * 100);
          rows.push([key, step, value, random() < 0.5 ? Math.floor(step / 10) : step / 7]);
        }
      }
      const d = new MetricDigest({ values: false, points: true });
      for (const [key, step, value, epoch] of rows) {
        point.run(run, key, step, epoch, value);
        d.add(key, step, value, epoch);
      }
      digests.set(run, d);
    }
    // MetricDigest's summaries and rollups, as the writer keeps them.
    const summary = db.prepare("INSERT INTO metric_summaries VALUES (?, ?, ?, ?, ?, ?, 0)");
    const rollup = db.prepare("INSERT INTO metric_rollups VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, 0)");
    for (const [run, d] of digests)
      for (const [key, s] of d.summaries) {
        summary.run(run, key, s.last, s.lastStep, s.min, s.max);
        for (const [block, b] of s.blocks)
          rollup.run(run, key, block, b.firstStep, b.lastStep, b.minStep, b.minValue, b.maxStep, b.maxValue);
      }
    return { db, digests };
  }

  it("gives MetricDigest's points digest, count and final values, and the digests of the rows it derives", () => {
    const { db, digests } = seeded(11);
    const found = runsOf(db);
    expect(found.map(([run]) => run)).toEqual([...digests.keys()].filter((run) => digests.get(run)!.points > 0));
    let answered = 0;
    for (const [run, f] of found) {
      const d = digests.get(run)!;
      if (!f) continue;
      answered++;
      expect(f.pointsSha256).toBe(d.digest().pointsSha256);
      expect(f.points).toBe(d.points);
      expect(JSON.parse(f.finals)).toEqual(Object.fromEntries([...d.summaries].map(([k, s]) => [k, s.last])));
      expect(f.rowsMatch).toBe(true);
      expect(f.keys).toBe(d.summaries.size);
      expect(f.blocks).toBe([...d.summaries.values()].reduce((n, s) => n + s.blocks.size, 0));
    }
    expect(answered).toBeGreaterThan(found.length * 0.9);
    db.close();
  });

  it("tells a changed, missing or extra summary or rollup row, and leaves uncertain values to JavaScript", () => {
    const { db } = seeded(12);
    const byRun = () => new Map(runsOf(db));
    const before = byRun();
    const runs = [...before.keys()].filter((run) => before.get(run) !== null);
    const [a, b, c, d, e, f, g] = runs;
    db.prepare("UPDATE metric_summaries SET max = max + 1e-12 WHERE run_id = ?").run(a);
    db.prepare("DELETE FROM metric_summaries WHERE rowid = (SELECT min(rowid) FROM metric_summaries WHERE run_id = ?)").run(b);
    db.prepare(
      "INSERT INTO metric_rollups SELECT run_id, key, block + 1000, first_step, last_step, min_step, min_value, max_step, max_value, count FROM metric_rollups WHERE run_id = ? LIMIT 1",
    ).run(c);
    db.prepare("UPDATE metric_rollups SET min_step = min_step + 1 WHERE run_id = ?").run(d);
    db.prepare("UPDATE metrics SET value = 'x' || value WHERE run_id = ?").run(e);
    db.prepare("UPDATE metric_summaries SET last = 'x' || last WHERE run_id = ?").run(f);
    db.prepare("UPDATE metrics SET value = value * 2 WHERE run_id = ?").run(g);
    const after = byRun();
    for (const run of [a, b, c, d, f]) expect(after.get(run!)!.rowsMatch).toBe(false);
    expect(after.get(e!)).toBeNull();
    expect(after.get(g!)!.pointsSha256).not.toBe(before.get(g!)!.pointsSha256);
    for (const run of runs.slice(7)) expect(after.get(run)).toEqual(before.get(run));
    db.close();
  });
});

describe.skipIf(nativeOff)("rl_metric_rows_keep and rl_metric_points_checked", () => {
  const hex = (c: string) => c.repeat(64);
  const text = (summaries: string, rollups: string) => `${hex("p")}\n6\n{"loss":0.25}\n${summaries}\n${rollups}\n2\n3`;

  it("says the rows match only when both kept digests of that run are certain and equal", () => {
    const db = nativeTestDb("");
    const keep = db.prepare("SELECT rl_metric_rows_keep(?, ?, ?)").pluck();
    const checked = db.prepare("SELECT rl_metric_points_checked(?, ?)").pluck();
    const rows = (runId: unknown, t: string) => (checked.get(runId, t) as string).split("\n")[3];
    // (Run ids as BigInts: better-sqlite3 binds a JavaScript number as a REAL, which is not an INTEGER run id.)
    for (const [runId, s, r] of [
      [1n, hex("a"), hex("b")],
      [2n, hex("c"), hex("d")],
      [4n, Buffer.alloc(0), hex("f")], // an uncertain summary digest (rl_metric_summary_rows' zero-length BLOB)
      [5n, hex("e"), null],
      ["6", hex("e"), hex("e")], // not an INTEGER run id: not kept
    ] as const) {
      keep.get(0, runId, s);
      keep.get(1, runId, r);
    }
    expect(checked.get(1n, text(hex("a"), hex("b")))).toBe(`${hex("p")}\n6\n{"loss":0.25}\n1\n2\n3`);
    expect(rows(2n, text(hex("c"), hex("d")))).toBe("1");
    expect(rows(2n, text(hex("c"), hex("b")))).toBe("0"); // a rollup row changed
    expect(rows(2n, text(hex("a"), hex("d")))).toBe("0"); // a summary row changed
    expect(rows(3n, text(hex("c"), hex("d")))).toBe("0"); // no row kept for the run
    expect(rows(4n, text("", hex("f")))).toBe("0");
    expect(rows(5n, text(hex("e"), "null"))).toBe("0");
    expect(rows(6n, text(hex("e"), hex("e")))).toBe("0");
    expect(rows("1", text(hex("a"), hex("b")))).toBe("0");
    expect(rows(1, text(hex("a"), hex("b")))).toBe("0"); // a REAL run id
    // Anything but rl_metric_points' text is returned as it is (an uncertain run stays uncertain).
    expect(checked.get(1n, Buffer.alloc(0))).toEqual(Buffer.alloc(0));
    expect(checked.get(1n, "a\nb")).toBe("a\nb");
    // A run id not above the last one fed (kept or not) makes that kind's digests unusable: no run matches then.
    keep.get(0, 7n, null);
    keep.get(0, 6n, hex("g"));
    expect(rows(1n, text(hex("a"), hex("b")))).toBe("0");
    db.prepare("SELECT rl_metric_rows_release()").get();
    keep.get(0, 1n, hex("a"));
    keep.get(1, 1n, hex("b"));
    keep.get(1, 1n, hex("d"));
    expect(rows(1n, text(hex("a"), hex("b")))).toBe("0");
    db.prepare("SELECT rl_metric_rows_release()").get();
    keep.get(0, 1n, hex("a"));
    keep.get(1, 1n, hex("b"));
    expect(rows(1n, text(hex("a"), hex("b")))).toBe("1");
    db.prepare("SELECT rl_metric_rows_release()").get();
    expect(rows(1n, text(hex("a"), hex("b")))).toBe("0");
    db.close();
  });
});
