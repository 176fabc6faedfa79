/**
 * PostgreSQL only (issue 16): the cluster artifact store, so that a team installation needs nothing but PostgreSQL
 * (server/artifacts/pg-store.ts). On SQLite the artifacts are files (server/artifacts/store.ts) and these tables do
 * not exist, so this module is NOT exported by ./index.ts (db/tests/schema-dialects.test.ts compares the tables of
 * both dialects one to one); drizzle.pg.config.ts lists it beside ./index.ts so its migration is generated.
 *
 * Invariants:
 * - One artifact_blobs row per artifact, named by the SHA-256 of its content; its bytes are the artifact_chunks rows
 *   0..chunks-1 in idx order, each at most CLUSTER_ARTIFACT_CHUNK_BYTES. The blob row and its chunks are inserted
 *   in one transaction, so a reader never sees a partial artifact.
 * - Nothing here is trusted on read: the store re-hashes the chunks on every read and refuses content that does not
 *   hash to its name, as the file store does.
 */
import { pgTable, text, integer, bigint, primaryKey } from "drizzle-orm/pg-core";
import { bytea } from "./columns";

export const artifactBlobs = pgTable("artifact_blobs", {
  sha256: text("sha256").primaryKey(),
  bytes: bigint("bytes", { mode: "number" }).notNull(),
  chunks: integer("chunks").notNull(),
  createdAt: text("created_at").notNull(),
});

export const artifactChunks = pgTable(
  "artifact_chunks",
  {
    sha256: text("sha256")
      .notNull()
      .references(() => artifactBlobs.sha256),
    idx: integer("idx").notNull(),
    data: bytea("data").notNull(),
  },
  (t) => [primaryKey({ columns: [t.sha256, t.idx] })],
);
