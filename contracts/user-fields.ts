/**
 * Length caps and shapes of every field people type into sign-in and user management, shared by the routers, the
 * services (the CLI calls them directly) and the forms. Caps are checked on the raw input first, so a 50 MB "email"
 * is refused by a length comparison before anything else looks at it (hashing, the database, the ledger).
 * Pure: no Node imports, usable in the browser (a leaf: imports nothing from the project).
 */
import { z } from "zod";

/** The roles: the one list (db/schema/users.ts ROLES is this list, so the forms need not load the schema module). */
export const ROLE_NAMES = ["admin", "engineer", "reviewer", "auditor"] as const;
export type Role = (typeof ROLE_NAMES)[number];

/** RFC 5321: a forward path is at most 256 octets including the angle brackets, so an address is at most 254. */
export const EMAIL_MAX = 254;
/** Long passphrases are welcome; past this a "password" is an attempt to make hashing expensive. */
export const PASSWORD_MAX = 1024;
export const PASSWORD_MIN = 8;
export const NAME_MAX = 100;

/** An email as typed at sign-in: capped and normalised (trimmed, lower case); its shape is not checked here. */
export const signInEmailField = z
  .string()
  .max(EMAIL_MAX, `an email address is at most ${EMAIL_MAX} characters`)
  .trim()
  .min(1, "enter your email")
  .transform((s) => s.toLowerCase());

/** A password being checked (sign-in, re-entry): capped, never trimmed. */
export const passwordCheckField = z
  .string()
  .max(PASSWORD_MAX, `a password is at most ${PASSWORD_MAX} characters`)
  .min(1, "enter your password");

/** A password being set: capped, at least PASSWORD_MIN characters. */
export const newPasswordField = z
  .string()
  .max(PASSWORD_MAX, `a password is at most ${PASSWORD_MAX} characters`)
  .min(PASSWORD_MIN, `a password is at least ${PASSWORD_MIN} characters`);

/** An email for a new account: capped, normalised and shaped like an address. */
export const newEmailField = z
  .string()
  .max(EMAIL_MAX, `an email address is at most ${EMAIL_MAX} characters`)
  .trim()
  .toLowerCase()
  .pipe(z.email("enter an email address such as name@example.org"));

export const nameField = z
  .string()
  .max(NAME_MAX, `a name is at most ${NAME_MAX} characters`)
  .trim()
  .min(1, "enter the person's name")
  .refine((s) => !/[\u0000-\u001f\u007f]/.test(s), "a name cannot contain control characters");

export const roleField = z.enum(ROLE_NAMES, { error: `the role must be one of ${ROLE_NAMES.join(", ")}` });

export const userIdField = z.number().int().positive();
