/**
 * Test helpers for the streaming upload route (server/http/dataset-upload.ts): build a real Request (streamed
 * body, query-string settings, browser-like same-origin headers) and call the handler as a given demo user.
 */
import { eq } from "drizzle-orm";
import { users } from "@/db/schema";
import { DEMO_USERS } from "@/server/demo/seed";
import { actorOf } from "@/server/users/service";
import type { SignedInActor } from "@/server/app-context/service-context";
import { handleDatasetUpload } from "@/server/http/dataset-upload";
import type { CsvCaps } from "@/trainer/data/csv-scan";
import type { TestApp } from "./test-app";

export type UploadQuery = {
  name?: string;
  labelColumn?: string;
  kind?: string;
  imageShape?: number[] | string;
  textColumn?: string;
  licence?: string;
  origin?: string;
  uploadId?: string;
};

export function actorFor(app: TestApp, role: "admin" | "engineer" | "reviewer" | "auditor"): SignedInActor {
  const email = DEMO_USERS.find((u) => u.role === role)!.email;
  return actorOf(app.db.select().from(users).where(eq(users.email, email)).get()!);
}

export function uploadRequest(
  body: string | Uint8Array | ReadableStream<Uint8Array>,
  query: UploadQuery,
  headers: Record<string, string> = {},
): Request {
  const params = new URLSearchParams();
  for (const [k, v] of Object.entries(query)) if (v !== undefined) params.set(k, Array.isArray(v) ? v.join(",") : String(v));
  return new Request(`http://127.0.0.1:3000/api/datasets/upload?${params}`, {
    method: "POST",
    body,
    headers: {
      host: "127.0.0.1:3000",
      origin: "http://127.0.0.1:3000",
      "sec-fetch-site": "same-origin",
      "content-type": "text/csv",
      ...headers,
    },
    duplex: "half",
  } as RequestInit & { duplex: "half" });
}

/** Uploads as `role`; resolves with the dataset row, or rejects with the server's message (like a tRPC caller). */
export async function uploadCsvAs(
  app: TestApp,
  role: "admin" | "engineer" | "reviewer" | "auditor",
  csv: string | Uint8Array,
  query: UploadQuery,
  limits?: CsvCaps,
) {
  const res = await handleDatasetUpload(app, uploadRequest(csv, query), actorFor(app, role), limits ? { limits } : {});
  const body = (await res.json()) as { id: number; name: string; rowCount: number; sha256: string; byteSize: number } & {
    error?: { message: string };
  };
  if (res.status !== 200) throw Object.assign(new Error(body.error?.message ?? `HTTP ${res.status}`), { status: res.status });
  return body;
}
