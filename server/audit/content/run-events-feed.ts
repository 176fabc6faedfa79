/**
 * The run.create and end events handed from the main thread to the content worker, so the worker does not read them
 * from SQLite a second time for its run-derived part (check-runs.ts DerivedRunLedgerBuilder). The main thread's log
 * scan records each such event as it reads it (bulk-events.ts), in seq order, in the form the worker's own pass
 * (ledger-events.ts streamEvents) hands to the builder: the payload text, or "" with knownObject when SQLite found it
 * certainly a JSON object (there: equal to its row's text, a canonical JSON object). The worker replays them into
 * the same builder.
 *
 * Protocol: the main thread posts the events, or null ("read them yourself"), once on a MessagePort, then sets a
 * shared flag and wakes the worker; the worker, blocked on that flag (its part is synchronous), takes the message
 * with receiveMessageOnPort. The main thread always sends (null when its scan did not read every such event in seq
 * order, and in its `finally` whatever stopped it), and the worker stops waiting after FEED_WAIT_MS anyway.
 *
 * Invariant: the worker builds its ledger from the same events, in the same order and form, as its own pass would
 * read from its snapshot (pinned to the main thread's: verify-content-parts.ts), so the part's result is the same;
 * null, a missing message or a timeout make it read them itself, so the outcome never depends on timing.
 * content-parallel.test.ts compares the parallel result with one pass on tampered copies, the feed used.
 */
import { receiveMessageOnPort, type MessagePort } from "node:worker_threads";
import type { EventRef } from "./checker";
import { blobAsBuffer } from "./sql-reads";

/**
 * The recorded events, flat (a few large arrays clone fast; a million small objects do not): per event seq, action,
 * actorId, entityId, payload (text, a Buffer for a BLOB, or "" when known to be an object), knownObject.
 */
export type RecordedRunEvents = unknown[];
const FIELDS = 6;

/** The main thread's recording (bulk-events.ts bulkEventCompactor feeds it). */
export class RunDerivedEvents {
  private events: RecordedRunEvents | null = [];

  record(seq: number, action: string, actorId: number | null, entityId: string, payload: string, knownObject: boolean): void {
    this.events?.push(seq, action, actorId, entityId, payload, knownObject);
  }

  /** What was recorded; recording stops (nothing is kept here for the rest of the check). */
  take(): RecordedRunEvents {
    const events = this.events ?? [];
    this.events = null;
    return events;
  }
}

/** Calls `onEvent` for each recorded event, in order, as streamEvents would (a fresh EventRef each). */
export function replayRunEvents(events: RecordedRunEvents, onEvent: (ev: EventRef, knownObject: boolean) => void): void {
  for (let i = 0; i < events.length; i += FIELDS) {
    const payload = blobAsBuffer(events[i + 4]); // (a BLOB payload, as streamEvents reads it)
    onEvent(
      {
        seq: events[i] as number,
        action: events[i + 1] as string,
        actorId: events[i + 2] as number | null,
        entityId: events[i + 3] as string,
        payload: payload as string,
      },
      events[i + 5] as boolean,
    );
  }
}

/** The worker's side of a feed: where the events come and the flag that says they are there. */
export type RunEventsFeedPort = { port: MessagePort; ready: SharedArrayBuffer };

/**
 * How long the worker waits at most (it then reads the events itself): long past any main thread's log scan, only a
 * guard against a main thread that never reached its `finally`.
 */
const FEED_WAIT_MS = 10 * 60_000;

/** The main thread's side: send once (later calls do nothing). */
export class RunEventsFeed {
  private sent = false;
  /** Whether events went to the worker (not null): tests. */
  used = false;
  readonly worker: RunEventsFeedPort;

  constructor(
    private readonly port: MessagePort,
    workerPort: MessagePort,
  ) {
    this.worker = { port: workerPort, ready: new SharedArrayBuffer(4) };
  }

  /** Posts `events` (null: the worker reads them itself) and wakes the worker; only the first call counts. */
  send(events: RecordedRunEvents | null): void {
    if (this.sent) return;
    this.sent = true;
    try {
      this.port.postMessage(events);
      this.used = events !== null;
    } finally {
      const flag = new Int32Array(this.worker.ready);
      Atomics.store(flag, 0, 1);
      Atomics.notify(flag, 0);
    }
  }
}

/** The worker's side: waits for the main thread's events; null means read them yourself. */
export function receiveRunEvents(feed: RunEventsFeedPort, waitMs = FEED_WAIT_MS): RecordedRunEvents | null {
  const flag = new Int32Array(feed.ready);
  if (Atomics.wait(flag, 0, 0, waitMs) === "timed-out") return null;
  const m = receiveMessageOnPort(feed.port);
  return m ? (m.message as RecordedRunEvents | null) : null;
}
