/**
 * Small helpers shared by the data pipeline tests: CSV text → bytes, and catching a DatasetError so a test can
 * assert on both its code and its exact human message.
 */
import { DatasetError } from "../errors";

export const bytesOf = (text: string): Uint8Array => new TextEncoder().encode(text);

export function datasetErrorOf(fn: () => unknown): DatasetError {
  try {
    fn();
  } catch (e) {
    if (e instanceof DatasetError) return e;
    throw e;
  }
  throw new Error("expected a DatasetError, but nothing was thrown");
}
