/**
 * People and their sign-in sessions. Passwords are scrypt hashes (server/auth/password.ts); session ids are stored
 * hashed. A session ends at expires_at (absolute) or when last_seen_at is older than the idle limit
 * (server/auth/sessions.ts); a user with must_change_password set can do nothing but change it.
 */
import { sqliteTable, text, integer, index } from "drizzle-orm/sqlite-core";
import { ROLE_NAMES } from "../../contracts/user-fields";

/** The roles, defined once in contracts/user-fields.ts (the browser's forms read them there). */
export const ROLES = ROLE_NAMES;
export type Role = (typeof ROLES)[number];

export const users = sqliteTable("users", {
  id: integer("id").primaryKey({ autoIncrement: true }),
  email: text("email").notNull().unique(),
  name: text("name").notNull(),
  role: text("role", { enum: ROLES }).notNull(),
  passwordHash: text("password_hash").notNull(),
  disabled: integer("disabled", { mode: "boolean" }).notNull().default(false),
  /** Set by an administrator's password reset: every procedure but changing the password refuses until it is changed. */
  mustChangePassword: integer("must_change_password", { mode: "boolean" }).notNull().default(false),
  passwordChangedAt: text("password_changed_at"),
  createdAt: text("created_at").notNull(),
});

export const sessions = sqliteTable(
  "sessions",
  {
    /** sha256 of the cookie token: a leaked database does not leak live sessions. */
    idHash: text("id_hash").primaryKey(),
    userId: integer("user_id")
      .notNull()
      .references(() => users.id),
    createdAt: text("created_at").notNull(),
    /** Absolute expiry: the session ends then, however active. */
    expiresAt: text("expires_at").notNull(),
    /** Last request seen (updated at most once a minute); null = never since creation. Drives the idle expiry. */
    lastSeenAt: text("last_seen_at"),
    /** The browser's User-Agent at sign-in, cut to 200 characters, so people can tell their sessions apart. */
    userAgent: text("user_agent"),
  },
  (t) => [index("sessions_user").on(t.userId)],
);
