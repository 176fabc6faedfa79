/**
 * Tests of the native audit extension itself (rl_audit.c): an in-memory database with it loaded, and whether this
 * run has it switched off (scripts/test-all.sh runs the audit tests once more with RUNLEDGER_AUDIT_NATIVE=0, when
 * those tests have nothing to test and skip themselves).
 */
import Database from "better-sqlite3";
import { expect } from "vitest";
import { auditNativeExtension, loadAuditNative } from "../native-range";

export const nativeOff = process.env.RUNLEDGER_AUDIT_NATIVE === "0";

/** A new in-memory database with the extension loaded (failing the test when it does not build here), `schema` run on it. */
export function nativeTestDb(schema: string): Database.Database {
  expect(auditNativeExtension().path, "the native audit extension builds on this machine").not.toBeNull();
  const db = new Database(":memory:");
  expect(loadAuditNative(db)).toBe(true);
  db.exec(schema);
  return db;
}
