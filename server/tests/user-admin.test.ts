/**
 * Issue 11, user management: administrators create users (temporary password, change forced at first sign-in),
 * change roles, disable and re-enable (sessions end), reset passwords; everyone changes their own password with the
 * old one; the last administrator and self-disabling are refused; every change is audited without password
 * material; the demo-password warning; demo users only in a new database (RUNLEDGER_DEMO=0 skips); the users CLI.
 */
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import fs from "node:fs";
import os from "node:os";
import path from "node:path";
import { execFileSync } from "node:child_process";
import { eq, inArray, sql } from "drizzle-orm";
import { auditEvents, users } from "@/db/schema";
import { openDatabase } from "@/db/client";
import { createCaller } from "@/server/trpc/root";
import { createContextFromRequest } from "@/server/trpc/init";
import { actorOf } from "@/server/users/service";
import { createTestApp, type TestApp } from "./test-app";

let app: TestApp;
beforeAll(() => {
  app = createTestApp();
});
afterAll(() => app.close());

let addressCounter = 0;
/** Signs in over the real sign-in procedure and returns a caller bound to that session cookie. */
async function signInAs(email: string, password: string) {
  const address = `198.18.0.${++addressCounter}`;
  const resHeaders = new Headers();
  const anon = createCaller(() =>
    createContextFromRequest(app, new Request("http://127.0.0.1/", { headers: { "x-forwarded-for": address } }), resHeaders),
  );
  const result = await anon.auth.signIn({ email, password });
  const token = /runledger_session=([^;]*)/.exec(resHeaders.get("set-cookie") ?? "")![1]!;
  const caller = () =>
    createCaller(() =>
      createContextFromRequest(
        app,
        new Request("http://127.0.0.1/", { headers: { "x-forwarded-for": address, cookie: `runledger_session=${token}` } }),
        new Headers(),
      ),
    );
  return { result, caller };
}

const userByEmail = (email: string) => app.db.select().from(users).where(eq(users.email, email)).get()!;
const eventsFor = (actions: string[]) =>
  app.db
    .select()
    .from(auditEvents)
    .where(inArray(auditEvents.action, actions as never[]))
    .all();

describe("create, first sign-in, forced password change", () => {
  it("gives a temporary password once; until it is changed every procedure but changing it refuses", async () => {
    const created = await app.as("admin").users.create({ email: "  New.Person@Example.org ", name: "Nia New", role: "engineer" });
    expect(created.user.email).toBe("new.person@example.org");
    expect(created.temporaryPassword).toMatch(/^[A-Za-z0-9_-]{16}$/);
    expect(JSON.stringify(await app.as("admin").users.list())).not.toContain(created.temporaryPassword);

    const first = await signInAs("new.person@example.org", created.temporaryPassword);
    expect(first.result.mustChangePassword).toBe(true);
    await expect(first.caller().projects.list()).rejects.toMatchObject({
      code: "FORBIDDEN",
      message: expect.stringMatching(/change your password first/),
    });
    await expect(first.caller().auth.sessions()).rejects.toMatchObject({ code: "FORBIDDEN" });
    await expect(first.caller().auth.me()).resolves.toMatchObject({ mustChangePassword: true });
    await expect(
      first.caller().auth.changePassword({ currentPassword: "wrong-one!", newPassword: "a-new-secret-1" }),
    ).rejects.toMatchObject({ code: "FORBIDDEN" });
    await expect(
      first.caller().auth.changePassword({ currentPassword: created.temporaryPassword, newPassword: "engineer-demo-pass" }),
    ).rejects.toMatchObject({ code: "BAD_REQUEST" });
    await expect(
      first.caller().auth.changePassword({ currentPassword: created.temporaryPassword, newPassword: "short" }),
    ).rejects.toMatchObject({ code: "BAD_REQUEST" });
    await first.caller().auth.changePassword({ currentPassword: created.temporaryPassword, newPassword: "a-new-secret-1" });
    await expect(first.caller().projects.list()).resolves.toBeDefined();
    await expect(signInAs("new.person@example.org", created.temporaryPassword)).rejects.toMatchObject({ code: "UNAUTHORIZED" });
  });

  it("refuses malformed input with messages that say what is wrong", async () => {
    await expect(app.as("admin").users.create({ email: "not-an-email", name: "X", role: "engineer" })).rejects.toThrow(
      /enter an email address/,
    );
    await expect(app.as("admin").users.create({ email: `${"a".repeat(300)}@x.org`, name: "X", role: "engineer" })).rejects.toThrow(
      /at most 254 characters/,
    );
    await expect(app.as("admin").users.create({ email: "ok@x.org", name: "n".repeat(101), role: "engineer" })).rejects.toThrow(
      /at most 100 characters/,
    );
    await expect(app.as("admin").users.create({ email: "admin@runledger.local", name: "Dup", role: "engineer" })).rejects.toMatchObject({
      code: "CONFLICT",
    });
  });
});

describe("roles, disabling, resets", () => {
  it("disabling ends the user's sessions and refuses sign-in; enabling lets them back", async () => {
    const { temporaryPassword } = await app.as("admin").users.create({ email: "dana@example.org", name: "Dana Disabled", role: "auditor" });
    const s = await signInAs("dana@example.org", temporaryPassword);
    await s.caller().auth.changePassword({ currentPassword: temporaryPassword, newPassword: "dana-secret-42" });
    const id = userByEmail("dana@example.org").id;
    const r = await app.as("admin").users.update({ userId: id, disabled: true });
    expect(r.sessionsRevoked).toBe(1);
    await expect(s.caller().projects.list()).rejects.toMatchObject({ code: "UNAUTHORIZED" });
    await expect(signInAs("dana@example.org", "dana-secret-42")).rejects.toMatchObject({
      code: "UNAUTHORIZED",
      message: expect.stringMatching(/disabled/),
    });
    await app.as("admin").users.update({ userId: id, disabled: false });
    await expect((await signInAs("dana@example.org", "dana-secret-42")).caller().projects.list()).resolves.toBeDefined();
  });

  it("a role change takes effect on the next call of an existing session", async () => {
    const { temporaryPassword } = await app.as("admin").users.create({ email: "rory@example.org", name: "Rory Role", role: "auditor" });
    const s = await signInAs("rory@example.org", temporaryPassword);
    await s.caller().auth.changePassword({ currentPassword: temporaryPassword, newPassword: "rory-secret-42" });
    await expect(s.caller().projects.create({ name: "rory's" })).rejects.toMatchObject({ code: "FORBIDDEN" });
    await app.as("admin").users.update({ userId: userByEmail("rory@example.org").id, role: "engineer" });
    await expect(s.caller().projects.create({ name: "rory's" })).resolves.toBeDefined();
  });

  it("a reset gives a new temporary password, ends sessions and forces a change", async () => {
    const s = await signInAs("rory@example.org", "rory-secret-42");
    const reset = await app.as("admin").users.resetPassword({ userId: userByEmail("rory@example.org").id });
    expect(reset.sessionsRevoked).toBeGreaterThanOrEqual(1);
    await expect(s.caller().projects.list()).rejects.toMatchObject({ code: "UNAUTHORIZED" });
    await expect(signInAs("rory@example.org", "rory-secret-42")).rejects.toMatchObject({ code: "UNAUTHORIZED" });
    const again = await signInAs("rory@example.org", reset.temporaryPassword);
    expect(again.result.mustChangePassword).toBe(true);
    await expect(again.caller().projects.list()).rejects.toMatchObject({ code: "FORBIDDEN" });
  });

  it("an administrator cannot disable themselves, and the last administrator cannot be demoted or disabled", async () => {
    const adminId = userByEmail("admin@runledger.local").id;
    await expect(app.as("admin").users.update({ userId: adminId, disabled: true })).rejects.toThrow(/cannot disable your own account/);
    await expect(app.as("admin").users.update({ userId: adminId, role: "engineer" })).rejects.toThrow(/last enabled administrator/);
    const { user } = await app.as("admin").users.create({ email: "second.admin@example.org", name: "Sam Second-Admin", role: "admin" });
    const second = createCaller({ services: app, user: actorOf(userByEmail("second.admin@example.org")), sessionToken: undefined });
    app.db.update(users).set({ mustChangePassword: false }).where(eq(users.id, user.id)).run(); // as if they had changed it
    await second.users.update({ userId: user.id, role: "engineer" }).catch(() => undefined); // demoting oneself is allowed while another admin exists
    expect(userByEmail("second.admin@example.org").role).toBe("engineer");
    await expect(app.as("admin").users.update({ userId: adminId, role: "auditor" })).rejects.toThrow(/last enabled administrator/);
  });

  it("non-administrators cannot manage users", async () => {
    for (const role of ["engineer", "reviewer", "auditor"] as const) {
      await expect(app.as(role).users.list()).rejects.toMatchObject({ code: "FORBIDDEN" });
      await expect(app.as(role).users.resetPassword({ userId: 1 })).rejects.toMatchObject({ code: "FORBIDDEN" });
    }
  });
});

describe("audit trail", () => {
  it("records create, update (before/after), reset and change, with no password material", () => {
    const events = eventsFor(["user.create", "user.update", "user.passwordReset", "user.passwordChange"]);
    const actions = new Set(events.map((e) => e.action));
    expect([...actions].sort()).toEqual(["user.create", "user.passwordChange", "user.passwordReset", "user.update"]);
    const disable = events.find((e) => e.action === "user.update" && JSON.parse(e.payload).after.disabled === true)!;
    expect(JSON.parse(disable.payload)).toMatchObject({
      email: "dana@example.org",
      before: { role: "auditor", disabled: false },
      after: { role: "auditor", disabled: true },
      sessionsRevoked: 1,
    });
    const hashes = app.db
      .select({ h: users.passwordHash })
      .from(users)
      .all()
      .map((r) => r.h.split("$").at(-1)!);
    for (const e of events) {
      expect(e.payload).not.toMatch(/password"\s*:\s*"|secret|scrypt/);
      for (const h of hashes) expect(e.payload).not.toContain(h);
    }
  });
});

describe("demo passwords", () => {
  it("warns administrators (only) while a demo password is unchanged", async () => {
    const admin = (await app.as("admin").auth.me())!;
    expect(admin.demoPasswordsInUse).toEqual(
      expect.arrayContaining(["admin@runledger.local", "engineer@runledger.local", "reviewer2@runledger.local"]),
    );
    expect((await app.as("engineer").auth.me())!.demoPasswordsInUse).toEqual([]);
    const s = await signInAs("reviewer2@runledger.local", "reviewer2-demo-pass");
    await s.caller().auth.changePassword({ currentPassword: "reviewer2-demo-pass", newPassword: "rita-own-secret" });
    expect((await app.as("admin").auth.me())!.demoPasswordsInUse).not.toContain("reviewer2@runledger.local");
  });
});

describe("seeding and the users command line", () => {
  let keyDir = "";
  /** Runs the CLI with this test's temporary key directory (never the operator's real one). */
  const cli = (args: string[], env: Record<string, string> = {}) =>
    execFileSync("npx", ["tsx", "server/cli/main.ts", ...args], {
      cwd: process.cwd(),
      env: { ...process.env, RUNLEDGER_KEY_DIR: keyDir, ...env },
      encoding: "utf8",
    });
  const tmp = () => fs.mkdtempSync(path.join(os.tmpdir(), "runledger-users-cli-"));

  it("RUNLEDGER_DEMO=0 creates no demo users; the CLI creates the first administrator", () => {
    const dir = tmp();
    const keys = (keyDir = tmp());
    try {
      expect(cli(["seed", "--data-dir", dir, "--key-dir", keys, "--no-demo-run"], { RUNLEDGER_DEMO: "0" })).toMatch(
        /no demo data.*\n.*users create/,
      );
      const created = JSON.parse(
        cli(["users", "create", "--email", "ops@example.org", "--name", "Olu Ops", "--role", "admin", "--data-dir", dir, "--json"]),
      );
      expect(created.temporaryPassword).toMatch(/^[A-Za-z0-9_-]{16}$/);
      expect(() => cli(["users", "disable", "--email", "ops@example.org", "--data-dir", dir])).toThrow(/last enabled administrator/);
      expect(cli(["users", "create", "--email", "eng@example.org", "--name", "Eng Two", "--role", "engineer", "--data-dir", dir])).toMatch(
        /temporary password \(shown once/,
      );
      expect(cli(["users", "disable", "--email", "eng@example.org", "--data-dir", dir])).toMatch(/eng@example.org is disabled/);
      expect(cli(["users", "enable", "--email", "eng@example.org", "--data-dir", dir])).toMatch(/eng@example.org is enabled/);
      expect(cli(["users", "set-role", "--email", "eng@example.org", "--role", "reviewer", "--data-dir", dir])).toMatch(
        /eng@example.org is now reviewer/,
      );
      const list = JSON.parse(cli(["users", "list", "--data-dir", dir, "--json"]));
      expect(list.users.map((u: { email: string; role: string }) => `${u.email} ${u.role}`)).toEqual([
        "ops@example.org admin",
        "eng@example.org reviewer",
      ]);
      const db = openDatabase(dir);
      const actors = db
        .select({ a: auditEvents.actorName, action: auditEvents.action })
        .from(auditEvents)
        .where(sql`${auditEvents.action} like 'user.%'`)
        .all();
      db.$client.close();
      expect(actors.every((e) => e.a === "operator (command line)")).toBe(true);
    } finally {
      fs.rmSync(dir, { recursive: true, force: true });
      fs.rmSync(keys, { recursive: true, force: true });
    }
  });

  it("a later start does not re-create demo users or reset a changed demo password", () => {
    const dir = tmp();
    const keys = (keyDir = tmp());
    try {
      expect(cli(["seed", "--data-dir", dir, "--key-dir", keys, "--no-demo-run"])).toMatch(/created demo users/);
      const reset = JSON.parse(cli(["users", "reset-password", "--email", "admin@runledger.local", "--data-dir", dir, "--json"]));
      expect(cli(["seed", "--data-dir", dir, "--key-dir", keys, "--no-demo-run"])).not.toMatch(/created demo users/);
      const db = openDatabase(dir);
      const admin = db.select().from(users).where(eq(users.email, "admin@runledger.local")).get()!;
      db.$client.close();
      expect(admin.mustChangePassword).toBe(true);
      expect(reset.temporaryPassword).toBeTruthy();
      expect(admin.passwordHash).not.toBe("scrypt$131072$8$1$sgORHmYfQmFbSYAkiqKXig==$G5fzXsl9Pc76avCrooSbkUjmfS67DHkn7nglX4Y2g24=");
    } finally {
      fs.rmSync(dir, { recursive: true, force: true });
      fs.rmSync(keys, { recursive: true, force: true });
    }
  });
});
