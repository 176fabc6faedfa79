/**
 * The ingest worker thread (started by ingest.ts): log-batch calls of writers, written by group commit
 * (ingest-group.ts) on a SQLite connection of its own, so parsing, validation, the batch hash, the inserts and the
 * COMMIT run on the second core instead of the server's main thread (which keeps HTTP, the token check and the
 * checkpoint policy).
 *
 * Protocol on workerData.port: in, IngestJob (its body's buffer transferred) or { close: true }; out, { ready: true }
 * once the database is open, then { answers: [{ id, answer }] } per group, posted after its COMMIT.
 */
import { receiveMessageOnPort, workerData, type MessagePort } from "node:worker_threads";
import { openDatabase } from "@/db/client";
import { logBatchGroup, type IngestJob } from "./ingest-group";

/** At most this many calls per group (4 writers with one call in flight each make groups of up to 4). */
const MAX_GROUP = 16;

const { dataDir, port } = workerData as { dataDir: string; port: MessagePort };
const db = openDatabase(dataDir);
port.postMessage({ ready: true });

function isClose(m: unknown): boolean {
  return typeof m === "object" && m !== null && "close" in m;
}

function close(): void {
  db.$client.close();
  port.close();
}

port.on("message", (first: IngestJob | { close: true }) => {
  if (isClose(first)) return close();
  // Every call that arrived while the previous group was being written joins this one.
  const jobs: IngestJob[] = [first as IngestJob];
  let closing = false;
  while (jobs.length < MAX_GROUP) {
    const m = receiveMessageOnPort(port);
    if (!m) break;
    if (isClose(m.message)) {
      closing = true;
      break;
    }
    jobs.push(m.message as IngestJob);
  }
  const answers = logBatchGroup(db, jobs);
  // One message per group (a message costs more than its few bytes).
  port.postMessage({ answers: jobs.map((j, i) => ({ id: j.id, answer: answers[i]! })) });
  if (closing) close();
});
