/**
 * The demo users (one per role, plus a second reviewer for four-eyes promotions) and their public passwords.
 *
 * Invariants:
 * - They are created only in a new database (no users yet) and only when demo data is wanted (server/demo/seed.ts).
 * - Their password hashes are fixed here. The passwords are public (README), so a fixed salt gives nothing away;
 *   it saves five 128 MiB scrypt runs per new database (every test app) and lets the app tell, by comparing hashes,
 *   which demo passwords are still unchanged (the admins' warning banner).
 * - A hash in the first release's format (N=2^14) on a demo account also counts as unchanged: that release had no way
 *   to change a password. When such a hash is upgraded at sign-in with the demo password, it becomes the fixed hash.
 * - Nobody can set a demo password again (`isDemoPassword` is refused when setting a password).
 */
import { inArray } from "drizzle-orm";
import type { Role } from "@/db/schema";
import type { Db } from "@/db/client";
import { asStore, reader, type Store } from "@/db/store";
import { needsRehash } from "./password";

export type DemoUser = { email: string; name: string; role: Role; password: string; passwordHash: string };

export const DEMO_USERS: DemoUser[] = [
  {
    email: "admin@runledger.local",
    name: "Ada Admin",
    role: "admin",
    password: "admin-demo-pass",
    passwordHash: "scrypt$131072$8$1$sgORHmYfQmFbSYAkiqKXig==$G5fzXsl9Pc76avCrooSbkUjmfS67DHkn7nglX4Y2g24=",
  },
  {
    email: "engineer@runledger.local",
    name: "Erin Engineer",
    role: "engineer",
    password: "engineer-demo-pass",
    passwordHash: "scrypt$131072$8$1$q6Gf0mt+/+U/OGRpqWu2mQ==$9SN1sbiQhx2LsuxCi8VNgws4lsfslV7cRv25nVVePSo=",
  },
  {
    email: "reviewer@runledger.local",
    name: "Rui Reviewer",
    role: "reviewer",
    password: "reviewer-demo-pass",
    passwordHash: "scrypt$131072$8$1$taNWxC80Qmq2tU9BsWjtCg==$8Q2CR+l/gJcQTJ4UWQJwndTKrWwMxmiGd+4ay0IIxSU=",
  },
  {
    email: "auditor@runledger.local",
    name: "Alex Auditor",
    role: "auditor",
    password: "auditor-demo-pass",
    passwordHash: "scrypt$131072$8$1$RenuyCPKTl/8vzZf3DzuCg==$qB5ld2ASgG1fDeBiPsChdlm69RvtyYH1iB5vDdewJoI=",
  },
  {
    email: "reviewer2@runledger.local",
    name: "Rita Second-Reviewer",
    role: "reviewer",
    password: "reviewer2-demo-pass",
    passwordHash: "scrypt$131072$8$1$99YRZi9ezgTaIyS0VNePkQ==$0j/vs84z/iRGwxHW1X5tLcdhzSoxL+Y+SFRWgMq5NIk=",
  },
];

/** True when `password` is one of the public demo passwords. */
export function isDemoPassword(password: string): boolean {
  return DEMO_USERS.some((u) => u.password === password);
}

/** The fixed hash to store when a demo account's legacy hash is upgraded with its (unchanged) demo password. */
export function demoHashFor(email: string, password: string): string | null {
  const demo = DEMO_USERS.find((u) => u.email === email);
  return demo && demo.password === password ? demo.passwordHash : null;
}

/**
 * Enabled demo accounts whose password is still the public one, by email in byte order (the order SQLite's unique
 * email index gave), on either store (issue 16).
 */
export async function demoAccountsWithPublicPasswordOn(db: Store | Db): Promise<{ email: string; name: string; role: Role }[]> {
  const store = asStore(db);
  const { users } = store.tables;
  const rows = await reader(store)
    .select({ email: users.email, name: users.name, role: users.role, disabled: users.disabled, passwordHash: users.passwordHash })
    .from(users)
    .where(
      inArray(
        users.email,
        DEMO_USERS.map((d) => d.email),
      ),
    );
  return rows
    .filter((u) => !u.disabled)
    .filter((u) => u.passwordHash === DEMO_USERS.find((d) => d.email === u.email)!.passwordHash || needsRehash(u.passwordHash))
    .sort((a, b) => (a.email < b.email ? -1 : a.email > b.email ? 1 : 0))
    .map((u) => ({ email: u.email, name: u.name, role: u.role }));
}
