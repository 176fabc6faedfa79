/**
 * Column types drizzle's pg-core lacks. bytea holds what SQLite keeps in a blob (mode "buffer"): node-postgres reads
 * it back as a Buffer, so the same bytes round-trip on both stores.
 */
import { customType } from "drizzle-orm/pg-core";

export const bytea = customType<{ data: Buffer; driverData: Buffer }>({
  dataType: () => "bytea",
});
