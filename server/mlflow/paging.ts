/** Paging and shared search fields of the tracking API: page tokens are opaque base64url JSON offsets. */
import { z } from "zod";
import { MLFLOW_LIMITS } from "@/contracts/mlflow/types";
import { invalidParam } from "./errors";
import { int64 } from "./common";

export function encodePageToken(offset: number): string {
  return Buffer.from(JSON.stringify({ offset })).toString("base64url");
}

export function decodePageToken(token: string | undefined): number {
  if (!token) return 0;
  try {
    const v = JSON.parse(Buffer.from(token, "base64url").toString("utf8")) as { offset?: unknown };
    if (typeof v.offset === "number" && Number.isInteger(v.offset) && v.offset >= 0) return v.offset;
  } catch {
    // below
  }
  return invalidParam(`Invalid page token '${token.slice(0, 40)}'`);
}

export const maxResultsField = int64
  .optional()
  .transform((n) => n ?? MLFLOW_LIMITS.searchMaxResultsDefault)
  .refine((n) => n >= 1 && n <= MLFLOW_LIMITS.searchMaxResultsThreshold, {
    message: `max_results must be between 1 and ${MLFLOW_LIMITS.searchMaxResultsThreshold}`,
  });

export const viewTypeField = z.enum(["ACTIVE_ONLY", "DELETED_ONLY", "ALL"]).default("ACTIVE_ONLY");
