/**
 * Talking to a witness: configuration (RUNLEDGER_WITNESSES), one add-checkpoint call (the log's side), and asking
 * it for the latest checkpoint it cosigned (an auditor's side: fetchWitnessCheckpoint).
 *
 * RUNLEDGER_WITNESSES = comma-separated "URL=VKEY" entries, e.g.
 *   http://127.0.0.1:7380=auditor.example/w1+1a2b3c4d+BOr...=
 * URL is the witness's submission prefix (POST <URL>/add-checkpoint); VKEY its cosignature/v1 verifier key
 * (type 0x04), which fixes the witness name and key ID whose cosignatures are accepted. Entries are split at the
 * first "=" after which a valid vkey follows, so vkeys ending in "=" padding are fine.
 * Invariants: a call never throws for network or protocol trouble; it returns what happened, so the caller can
 * record it. A cosignature is returned only after it verified under the configured key.
 */
import { type VerifiedCosignature, verifyCosignature } from "./cosignature";
import { type VerifierKey, NoteFormatError, SIG_TYPE_COSIGNATURE_V1, parseSignatureLine, parseSignedNote, parseVerifierKey } from "./note";
import { formatAddCheckpointBody, TLOG_SIZE_CONTENT_TYPE } from "./witness";
import { parseCheckpointBody, parseTreeSize } from "./checkpoint-note";

export type WitnessEndpoint = { url: string; key: VerifierKey };
/** A cosignature answer is a few signature lines; anything much larger is not one. */
const MAX_ANSWER_BYTES = 64 * 1024;
export type WitnessConfig = { witnesses: WitnessEndpoint[]; errors: string[] };

function parseEntry(entry: string): WitnessEndpoint {
  let lastError = 'no "=" between the URL and the verifier key';
  for (let i = entry.indexOf("="); i > 0; i = entry.indexOf("=", i + 1)) {
    const url = entry.slice(0, i).trim();
    let key: VerifierKey;
    try {
      key = parseVerifierKey(entry.slice(i + 1));
    } catch (err) {
      lastError = (err as Error).message;
      continue;
    }
    let parsed: URL;
    try {
      parsed = new URL(url);
    } catch {
      throw new Error(`witness "${entry}": "${url}" is not a URL`);
    }
    if (parsed.protocol !== "http:" && parsed.protocol !== "https:") throw new Error(`witness "${entry}": URL must be http or https`);
    if (key.type !== SIG_TYPE_COSIGNATURE_V1)
      throw new Error(`witness "${entry}": the key is not a cosignature/v1 witness key (type 0x04)`);
    return { url: url.replace(/\/+$/, ""), key };
  }
  throw new Error(`witness "${entry}": ${lastError}`);
}

/** Parses RUNLEDGER_WITNESSES; bad entries are reported in `errors`, good ones still used. */
export function parseWitnessConfig(value: string | undefined): WitnessConfig {
  const out: WitnessConfig = { witnesses: [], errors: [] };
  for (const entry of (value ?? "")
    .split(",")
    .map((e) => e.trim())
    .filter(Boolean)) {
    try {
      const w = parseEntry(entry);
      if (out.witnesses.some((x) => x.url === w.url)) throw new Error(`witness ${w.url} is listed twice`);
      out.witnesses.push(w);
    } catch (err) {
      out.errors.push((err as Error).message);
    }
  }
  return out;
}

export type AddCheckpointOutcome =
  | { kind: "cosigned"; cosignature: VerifiedCosignature }
  | { kind: "conflict"; witnessSize: number }
  | { kind: "refused"; httpStatus: number; message: string }
  | { kind: "unreachable"; message: string };

/** POSTs one add-checkpoint request and checks the answer. `noteText` is the checkpoint note's text (for verification). */
export async function requestCosignature(
  witness: WitnessEndpoint,
  req: { oldSize: number; proof: Buffer[]; note: string; noteText: string },
  opts: { timeoutMs?: number } = {},
): Promise<AddCheckpointOutcome> {
  let res: Response;
  let body: string;
  try {
    res = await fetch(`${witness.url}/add-checkpoint`, {
      method: "POST",
      headers: { "content-type": "text/plain; charset=utf-8" },
      body: formatAddCheckpointBody(req),
      signal: AbortSignal.timeout(opts.timeoutMs ?? 10_000),
    });
    const bytes = Buffer.from(await res.arrayBuffer());
    if (bytes.length > MAX_ANSWER_BYTES)
      return { kind: "refused", httpStatus: res.status, message: `answer larger than ${MAX_ANSWER_BYTES} bytes` };
    body = bytes.toString("utf8");
  } catch (err) {
    const e = err as Error & { cause?: { code?: string; message?: string } };
    return { kind: "unreachable", message: `${witness.url}: ${e.cause?.code ?? e.cause?.message ?? e.message}` };
  }
  if (res.status === 409 && (res.headers.get("content-type") ?? "").startsWith(TLOG_SIZE_CONTENT_TYPE)) {
    try {
      return { kind: "conflict", witnessSize: parseTreeSize(body.replace(/\n$/, ""), "witness size") };
    } catch {
      return { kind: "refused", httpStatus: 409, message: `409 with an unreadable size: "${body.slice(0, 80)}"` };
    }
  }
  if (res.status !== 200) return { kind: "refused", httpStatus: res.status, message: `${res.status}: ${body.trim().slice(0, 300)}` };
  const lines = body.split("\n").filter((l) => l.length > 0);
  for (const line of lines) {
    let sig;
    try {
      sig = parseSignatureLine(line);
    } catch (err) {
      if (err instanceof NoteFormatError) continue;
      throw err;
    }
    const ok = verifyCosignature(witness.key, req.noteText, sig);
    if (ok) return { kind: "cosigned", cosignature: ok };
  }
  return {
    kind: "refused",
    httpStatus: 200,
    message: `no valid cosignature by ${witness.key.name}+${witness.key.keyId.toString("hex")} in the answer`,
  };
}

export type WitnessCheckpoint = { origin: string; treeSize: number; rootHash: string; cosignedAt: string; witness: string; keyId: string };

/**
 * Why asking a witness for its checkpoint gave no anchor: "unreachable" (no answer, or an HTTP error other than
 * 404), "unknown origin" (404: the witness has cosigned nothing for this log), "invalid" (an answer that is not a
 * checkpoint of this log cosigned by a trusted key: a wrong key file, or not the witness it claims to be).
 */
export class WitnessFetchError extends Error {
  constructor(
    readonly kind: "unreachable" | "unknown origin" | "invalid",
    message: string,
  ) {
    super(message);
  }
}

/**
 * Asks a witness directly for the latest checkpoint it cosigned for `origin` (GET <url>/checkpoint/<origin>) and
 * checks its cosignature under `key` (or any of `keys`): an anchor that does not depend on anything stored with the
 * log. Throws a WitnessFetchError with the reason when the witness cannot be reached or the answer does not verify.
 */
export async function fetchWitnessCheckpoint(
  url: string,
  key: VerifierKey | readonly VerifierKey[],
  origin: string,
  opts: { timeoutMs?: number } = {},
): Promise<WitnessCheckpoint> {
  const keys = Array.isArray(key) ? (key as readonly VerifierKey[]) : [key as VerifierKey];
  const base = url.replace(/\/+$/, "");
  let res: Response;
  let body: string;
  try {
    res = await fetch(`${base}/checkpoint/${encodeURIComponent(origin)}`, { signal: AbortSignal.timeout(opts.timeoutMs ?? 10_000) });
    const bytes = Buffer.from(await res.arrayBuffer());
    if (bytes.length > MAX_ANSWER_BYTES)
      throw new WitnessFetchError("invalid", `witness ${base}: answer larger than ${MAX_ANSWER_BYTES} bytes`);
    body = bytes.toString("utf8");
  } catch (err) {
    if (err instanceof WitnessFetchError) throw err;
    const e = err as Error & { cause?: { code?: string; message?: string } };
    throw new WitnessFetchError("unreachable", `witness ${base} unreachable: ${e.cause?.code ?? e.cause?.message ?? e.message}`);
  }
  if (res.status === 404)
    throw new WitnessFetchError(
      "unknown origin",
      `witness ${base} has cosigned no checkpoint for origin "${origin}" (404 ${body.trim().slice(0, 200)})`,
    );
  if (res.status !== 200)
    throw new WitnessFetchError("unreachable", `witness ${base} answered ${res.status}: ${body.trim().slice(0, 200)}`);
  let note;
  let cp;
  try {
    note = parseSignedNote(body);
    cp = parseCheckpointBody(note.text);
  } catch (err) {
    throw new WitnessFetchError(
      "invalid",
      `witness ${base} answered with something that is not a checkpoint note: ${(err as Error).message}`,
    );
  }
  if (cp.origin !== origin) throw new WitnessFetchError("invalid", `witness ${base} answered for origin "${cp.origin}", not "${origin}"`);
  for (const k of keys) {
    for (const sig of note.signatures) {
      const ok = verifyCosignature(k, note.text, sig);
      if (ok)
        return {
          origin,
          treeSize: cp.treeSize,
          rootHash: cp.rootHash,
          cosignedAt: new Date(ok.timestamp * 1000).toISOString(),
          witness: k.name,
          keyId: k.keyId.toString("hex"),
        };
    }
  }
  const names = keys.map((k) => `${k.name}+${k.keyId.toString("hex")}`).join(", ");
  throw new WitnessFetchError(
    "invalid",
    `witness ${base}: its checkpoint carries no valid cosignature by ${names} (wrong witness key, or not that witness?)`,
  );
}
