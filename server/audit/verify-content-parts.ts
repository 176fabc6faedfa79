/**
 * Content verification split across threads for `verifyDatabase` with workers: a worker thread checks the
 * run-derived part (run_params and metric series, verify-content-worker.ts) while the main thread checks the rest
 * of the content (content/verify-content.ts checkContentExceptRunDerived) and range workers check the chain. The
 * worker first makes the heavy SQL reads of the main thread's checkpoint and evaluation phases and posts them
 * (content/sql-reads.ts), which balances the two threads' work.
 *
 * Invariant: every part reads ONE database state. Each connection has its own read transaction, and SQLite cannot
 * hand a snapshot from one connection to another, so the snapshots are started close together and then proved
 * equal: a probe connection reads PRAGMA data_version before the main thread's snapshot starts and again after the
 * worker's has started; the value changes when any other connection commits in between, so an unchanged value
 * means no commit fell between the two snapshots (and the worker's max(seq) must equal the main thread's). When a
 * commit did fall in between, both snapshots are dropped and taken again (a few attempts); after that the whole
 * content check runs on the main thread's snapshot, as in one pass.
 */
import Database from "better-sqlite3";
import type { MessagePort, Worker } from "node:worker_threads";
import type { SqlRead } from "./content/sql-reads";
import type { RunEventsFeedPort } from "./content/run-events-feed";
import type { RunDerivedPartResult } from "./content/verify-content";
import { maxAuditSeq } from "./ledger-reads";
import { startWorker, workerScript } from "./worker-script";

export type ContentWorkerInput = { file: string };
/** "go": `reads` (sql-reads.ts) are read first and posted on `port`, then the run-derived part runs. */
export type ContentWorkerRequest =
  { type: "pin" } | { type: "go"; uptoSeq: number; reads: SqlRead[]; port: MessagePort | null; feed: RunEventsFeedPort | null };
export type ContentWorkerReply =
  | { type: "ready" }
  | { type: "pinned"; maxSeq: number }
  | { type: "done"; result: RunDerivedPartResult }
  | { type: "error"; error: string };

/** Young generation of the content worker (V8's default is 3 x 16 MB semi-spaces on 64-bit). */
const CONTENT_WORKER_YOUNG_GENERATION_MB = 192;

/** Snapshot attempts before the content check falls back to the main thread alone. */
export const MAX_PIN_ATTEMPTS = 4;

/** One content worker: started, pinned to a snapshot, run once, then stopped. */
export class ContentWorker {
  private waiting: { type: ContentWorkerReply["type"]; resolve: (m: ContentWorkerReply) => void; reject: (e: Error) => void } | null = null;
  private failed: Error | null = null;

  private constructor(private readonly worker: Worker) {
    worker.on("message", (m: ContentWorkerReply) => {
      const w = this.waiting;
      if (!w) return;
      this.waiting = null;
      if (m.type === "error") w.reject(new Error(m.error));
      else if (m.type !== w.type) w.reject(new Error(`content worker answered "${m.type}" instead of "${w.type}"`));
      else w.resolve(m);
    });
    const fail = (err: Error) => {
      this.failed ??= err;
      const w = this.waiting;
      this.waiting = null;
      w?.reject(err);
    };
    worker.once("error", fail);
    worker.once("exit", (code) => fail(new Error(`content worker exited with code ${code}`)));
  }

  private expect<T extends ContentWorkerReply["type"]>(
    type: T,
    send?: ContentWorkerRequest,
    transfer: MessagePort[] = [],
  ): Promise<Extract<ContentWorkerReply, { type: T }>> {
    if (this.failed) return Promise.reject(this.failed);
    const p = new Promise<ContentWorkerReply>((resolve, reject) => (this.waiting = { type, resolve, reject }));
    if (send) this.worker.postMessage(send, transfer);
    return p as Promise<Extract<ContentWorkerReply, { type: T }>>;
  }

  /** Starts a worker on the database file; resolves once its connection is open. */
  static async start(file: string): Promise<ContentWorker> {
    // The precompiled bundle of verify-content-worker.ts (or its tsx bootstrap): worker-script.ts.
    const script = workerScript("verify-content-worker");
    const w = new ContentWorker(
      startWorker(script, {
        workerData: { file } satisfies ContentWorkerInput,
        stdout: false,
        stderr: false,
        // The part keeps every run's config and end fields while it walks millions of rows: a young generation larger
        // than V8's default means fewer scavenges (about 5-10% less CPU measured on the 1M-event bench).
        resourceLimits: { maxYoungGenerationSizeMb: CONTENT_WORKER_YOUNG_GENERATION_MB },
      }),
    );
    try {
      await w.expect("ready");
    } catch (err) {
      w.stop();
      throw err;
    }
    return w;
  }

  /** Starts the worker's read snapshot (ending any earlier one); resolves with the max seq it sees. */
  async pin(): Promise<number> {
    return (await this.expect("pinned", { type: "pin" })).maxSeq;
  }

  /**
   * Runs the run-derived part on the pinned snapshot, events up to `uptoSeq`; first reads `reads` and posts each on
   * `port` (transferred to the worker), for the main thread's later phases. `feed`: the part then waits for the run
   * events from the main thread (run-events-feed.ts), which must then send on it whatever happens.
   */
  async run(
    uptoSeq: number,
    reads: SqlRead[] = [],
    port: MessagePort | null = null,
    feed: RunEventsFeedPort | null = null,
  ): Promise<RunDerivedPartResult> {
    const transfer = [...(port ? [port] : []), ...(feed ? [feed.port] : [])];
    return (await this.expect("done", { type: "go", uptoSeq, reads, port, feed }, transfer)).result;
  }

  stop(): void {
    void this.worker.terminate();
  }
}

/**
 * Begins the main connection's read transaction (`main`, on `file`) and pins `worker` to the same database state
 * (see the header). Returns the log size in that state and whether the worker is pinned to it; when it is not
 * (writes kept falling between the snapshots), the main connection is still inside its read transaction and the
 * caller checks all content there. `onAttempt` (tests) runs after the main snapshot starts, before the worker's.
 */
export async function pinSameSnapshot(
  main: Database.Database,
  file: string,
  worker: ContentWorker,
  onAttempt?: (attempt: number) => void,
): Promise<{ n: number; pinned: boolean }> {
  const probe = new Database(file, { readonly: true, fileMustExist: true });
  try {
    const dataVersion = () => probe.pragma("data_version", { simple: true }) as number;
    for (let attempt = 0; attempt < MAX_PIN_ATTEMPTS; attempt++) {
      const before = dataVersion();
      main.prepare("BEGIN").run();
      const n = maxAuditSeq(main);
      onAttempt?.(attempt);
      const workerN = await worker.pin();
      if (dataVersion() === before && workerN === n) return { n, pinned: true };
      main.prepare("COMMIT").run();
    }
    main.prepare("BEGIN").run();
    return { n: maxAuditSeq(main), pinned: false };
  } finally {
    probe.close();
  }
}
