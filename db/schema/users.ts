/** People and their sign-in sessions. Passwords are scrypt hashes; session ids are stored hashed. */
import { sqliteTable, text, integer } from "drizzle-orm/sqlite-core";

export const ROLES = ["admin", "engineer", "reviewer", "auditor"] as const;
export type Role = (typeof ROLES)[number];

export const users = sqliteTable("users", {
  id: integer("id").primaryKey({ autoIncrement: true }),
  email: text("email").notNull().unique(),
  name: text("name").notNull(),
  role: text("role", { enum: ROLES }).notNull(),
  passwordHash: text("password_hash").notNull(),
  disabled: integer("disabled", { mode: "boolean" }).notNull().default(false),
  createdAt: text("created_at").notNull(),
});

export const sessions = sqliteTable("sessions", {
  /** sha256 of the cookie token: a leaked database does not leak live sessions. */
  idHash: text("id_hash").primaryKey(),
  userId: integer("user_id").notNull().references(() => users.id),
  createdAt: text("created_at").notNull(),
  expiresAt: text("expires_at").notNull(),
});
