/**
 * Worker thread for the run-derived part of content verification (content/run-derived-part.ts
 * checkRunDerivedPartStreaming, which gives content/verify-content.ts checkRunDerivedPart's result: run_params and
 * metric series), run while the main thread checks the rest of the content and range workers check
 * the chain. Protocol (verify-content-parts.ts drives it):
 *   → "ready" once its read-only connection is open;
 *   ← { type: "pin" }: end any read transaction, BEGIN, read max(seq): this connection's snapshot starts here;
 *   → { type: "pinned", maxSeq } (the main thread then checks that no commit fell between its snapshot and this one);
 *   ← { type: "go", uptoSeq, reads, port, feed }: read `reads` and post each on `port` (content/sql-reads.ts: the main
 *     thread's later phases take them), then run the part on that snapshot, taking the run.create and end events
 *     from `feed` when given (content/run-events-feed.ts) → { type: "done", result } | { type: "error", error }.
 * It never writes, and reads only inside the pinned read transaction.
 */
import Database from "better-sqlite3";
import { parentPort, workerData } from "node:worker_threads";
import { checkRunDerivedPartStreaming } from "./content/run-derived-part";
import { readAndPost } from "./content/sql-reads";
import { receiveRunEvents } from "./content/run-events-feed";
import { loadAuditNative } from "./native-range";
import type { ContentWorkerInput, ContentWorkerReply, ContentWorkerRequest } from "./verify-content-parts";
import { VERIFY_MMAP_BYTES } from "./verify-range";

const input = workerData as ContentWorkerInput;
const post = (m: ContentWorkerReply) => parentPort?.postMessage(m);

let db: Database.Database | null = null;
try {
  db = new Database(input.file, { readonly: true, fileMustExist: true });
  db.pragma(`mmap_size = ${VERIFY_MMAP_BYTES}`);
  post({ type: "ready" });
} catch (err) {
  post({ type: "error", error: (err as Error).message });
}

parentPort?.on("message", (m: ContentWorkerRequest) => {
  if (!db) return;
  try {
    if (m.type === "pin") {
      if (db.inTransaction) db.prepare("COMMIT").run();
      db.prepare("BEGIN").run();
      const row = db.prepare("SELECT max(seq) AS n FROM audit_events").get() as { n: number | null };
      post({ type: "pinned", maxSeq: row.n ?? 0 });
    } else {
      // The main thread's later reads first (it takes them when it gets there, or reads them itself), then the part.
      if (m.port) {
        if (m.reads.length > 0) loadAuditNative(db);
        readAndPost(db, m.reads, m.port);
        m.port.close();
      }
      const feed = m.feed;
      const result = checkRunDerivedPartStreaming(db, m.uptoSeq, "native", feed ? () => receiveRunEvents(feed) : undefined);
      feed?.port.close();
      db.prepare("COMMIT").run();
      db.close();
      db = null;
      post({ type: "done", result });
    }
  } catch (err) {
    post({ type: "error", error: (err as Error).message });
  }
});
