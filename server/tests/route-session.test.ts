/**
 * API routes outside tRPC (dataset upload, report export) answer a signed-in user who must change their password
 * with 403 "change your password first", like every tRPC procedure, not 401 "sign in first" (which sent them to a
 * sign-in page they had just passed). Real sessions from the real sign-in, real handlers, real Requests.
 */
import { afterAll, beforeAll, describe, expect, it, vi } from "vitest";
import { routeCaller } from "@/server/http/route-session";
import { reportExportPost } from "@/server/http/report-export";
import { handleDatasetUpload } from "@/server/http/dataset-upload";
import { signIn } from "@/server/users/service";
import { changeOwnPassword } from "@/server/users/admin";
import { sessionIdHash } from "@/server/auth/sessions";
import { createTestApp, type TestApp } from "./test-app";
import { uploadRequest } from "./upload-helpers";

vi.mock("server-only", () => ({})); // the route modules guard against client bundles; this is a plain Node test

let app: TestApp;
beforeAll(() => {
  app = createTestApp();
  (globalThis as { __runledger?: unknown }).__runledger = app; // the route modules use getAppServices()
});
afterAll(() => app.close());

const SITE = "http://127.0.0.1:3000";
const withCookie = (cookie: string | null): Record<string, string> => (cookie ? { cookie } : {});
const exportRequest = (cookie: string | null) =>
  new Request(`${SITE}/api/report/1?format=tar`, {
    method: "POST",
    headers: { host: "127.0.0.1:3000", origin: SITE, ...withCookie(cookie) },
  });
const upload = (cookie: string | null) =>
  uploadRequest("x,label\n1,a\n2,b\n3,a\n4,b\n", { name: "route session", labelColumn: "label" }, withCookie(cookie));

async function refusalOf(res: Response): Promise<[number, string]> {
  const body = await res.text();
  return [res.status, body.startsWith("{") ? (JSON.parse(body) as { error: { message: string } }).error.message : body];
}

describe("[api routes] the session behind a route request", () => {
  it("a user whose password was reset gets 403 'change your password first' from upload and export, then proceeds once it is changed", async () => {
    const created = await app.as("admin").users.create({ email: "reset.me@example.org", name: "Rene Reset", role: "engineer" });
    const signedIn = await signIn(app.db, "reset.me@example.org", created.temporaryPassword, {
      address: "198.18.1.1",
      userAgent: "vitest",
    });
    if (!signedIn.ok) throw new Error(`sign-in failed: ${signedIn.reason}`);
    expect(signedIn.mustChangePassword).toBe(true);
    const cookie = `runledger_session=${signedIn.token}`;

    const refusedUpload = await refusalOf(await handleDatasetUpload(app, upload(cookie), await routeCaller(app.db, upload(cookie))));
    expect(refusedUpload).toEqual([403, expect.stringMatching(/^change your password first/)]);
    const refusedExport = await refusalOf(
      await reportExportPost(app, exportRequest(cookie), await routeCaller(app.db, exportRequest(cookie)), "1"),
    );
    expect(refusedExport).toEqual([403, expect.stringMatching(/^change your password first/)]);
    // The route modules themselves (what Next.js calls) answer the same.
    const uploadRoute = await import("@/app/api/datasets/upload/route");
    const reportRoute = await import("@/app/api/report/[modelVersionId]/route");
    expect(await refusalOf(await uploadRoute.POST(upload(cookie)))).toEqual([403, expect.stringMatching(/^change your password first/)]);
    expect(await refusalOf(await reportRoute.POST(exportRequest(cookie), { params: Promise.resolve({ modelVersionId: "1" }) }))).toEqual([
      403,
      expect.stringMatching(/^change your password first/),
    ]);

    await changeOwnPassword(
      app.db,
      signedIn.user,
      { currentPassword: created.temporaryPassword, newPassword: "a-fresh-secret-9" },
      sessionIdHash(signedIn.token),
    );
    const caller = await routeCaller(app.db, upload(cookie));
    expect(caller.refusal).toBeNull();
    const res = await handleDatasetUpload(app, upload(cookie), caller);
    expect(res.status).toBe(200);
  });

  it("no cookie, a malformed cookie and an unknown session still get 401 saying which", async () => {
    for (const [cookie, message] of [
      [null, /^sign in first$/],
      ["runledger_session=%%%not-a-token", /session cookie is not valid/],
      [`runledger_session=${"A".repeat(43)}`, /session has ended/],
    ] as const) {
      expect(await refusalOf(await handleDatasetUpload(app, upload(cookie), await routeCaller(app.db, upload(cookie))))).toEqual([
        401,
        expect.stringMatching(message),
      ]);
      expect(
        await refusalOf(await reportExportPost(app, exportRequest(cookie), await routeCaller(app.db, exportRequest(cookie)), "1")),
      ).toEqual([401, expect.stringMatching(message)]);
    }
  });
});
