/**
 * The witness's decision, c2sp.org/tlog-witness "add-checkpoint", independent of HTTP.
 *
 * Request body: "old <size>\n", zero to 63 base64 consistency-proof lines, an empty line, then a signed
 * checkpoint note. Answers, in the order the spec checks them:
 *   400 malformed body, or old size > checkpoint size       404 origin not configured
 *   403 no signature verifies under the log's key (or a signature by that key fails)
 *   409 + text/x.tlog.size "<size>\n": old size is not the size this witness last cosigned, or the same size
 *       with another root (a fork)                                       422 the consistency proof does not verify
 *   200 one cosignature line ("— <name> base64(keyID || timestamp || sig)").
 * Invariants: check-and-persist is one synchronous step (no await between reading the last size and writing
 * the new state), so concurrent requests cannot roll the state back; the state is persisted before the 200.
 * A witness never cosigns a tree smaller than, or inconsistent with, one it cosigned before.
 */
import { EMPTY_TREE_ROOT, verifyConsistency } from "@/server/audit/merkle";
import { cosignNote } from "./cosignature";
import { type VerifierKey, NoteFormatError, SIG_TYPE_ED25519, parseSignedNote, strictBase64, verifyNoteEd25519 } from "./note";
import { parseCheckpointBody, parseTreeSize } from "./checkpoint-note";
import { type WitnessIdentity, type WitnessLogState, appendEvidence, readLogState, writeLogState } from "./witness-files";

export const MAX_PROOF_LINES = 63;
export const TLOG_SIZE_CONTENT_TYPE = "text/x.tlog.size";

export type WitnessResponse = { status: number; contentType: string; body: string };

const text = (status: number, body: string): WitnessResponse => ({
  status,
  contentType: "text/plain; charset=utf-8",
  body: body.endsWith("\n") ? body : `${body}\n`,
});
const conflict = (size: number): WitnessResponse => ({ status: 409, contentType: TLOG_SIZE_CONTENT_TYPE, body: `${size}\n` });

export type AddCheckpointRequest = { oldSize: number; proof: Buffer[]; note: string };

/** Splits an add-checkpoint body; throws NoteFormatError on anything malformed. */
export function parseAddCheckpointBody(body: string): AddCheckpointRequest {
  let pos = body.indexOf("\n");
  if (pos < 0) throw new NoteFormatError("body has no old size line");
  const first = body.slice(0, pos);
  if (!first.startsWith("old ")) throw new NoteFormatError(`first line must be "old <size>", got "${first.slice(0, 40)}"`);
  const oldSize = parseTreeSize(first.slice(4), "old size");
  const proof: Buffer[] = [];
  for (;;) {
    const next = body.indexOf("\n", pos + 1);
    if (next < 0) throw new NoteFormatError("body has no empty line before the checkpoint");
    const line = body.slice(pos + 1, next);
    pos = next;
    if (line === "") break;
    if (proof.length === MAX_PROOF_LINES) throw new NoteFormatError(`more than ${MAX_PROOF_LINES} consistency proof lines`);
    const hash = strictBase64(line, `consistency proof line ${proof.length + 1}`);
    if (hash.length !== 32) throw new NoteFormatError(`consistency proof line ${proof.length + 1} is ${hash.length} bytes, expected 32`);
    proof.push(hash);
  }
  return { oldSize, proof, note: body.slice(pos + 1) };
}

export function formatAddCheckpointBody(req: AddCheckpointRequest): string {
  return `old ${req.oldSize}\n${req.proof.map((h) => `${Buffer.from(h).toString("base64")}\n`).join("")}\n${req.note}`;
}

export class Witness {
  private readonly logs = new Map<string, VerifierKey[]>();

  constructor(
    readonly identity: WitnessIdentity,
    logKeys: readonly VerifierKey[],
    private readonly keyDir: string,
    private readonly now: () => number = Date.now,
  ) {
    for (const k of logKeys) {
      if (k.type !== SIG_TYPE_ED25519) throw new Error(`log key "${k.name}" is not an Ed25519 note key (type 0x01)`);
      this.logs.set(k.name, [...(this.logs.get(k.name) ?? []), k]);
    }
  }

  get origins(): string[] {
    return [...this.logs.keys()];
  }

  addCheckpoint(body: string): WitnessResponse {
    let req: AddCheckpointRequest;
    let note: ReturnType<typeof parseSignedNote>;
    let cp: ReturnType<typeof parseCheckpointBody>;
    try {
      req = parseAddCheckpointBody(body);
      note = parseSignedNote(req.note);
      cp = parseCheckpointBody(note.text);
    } catch (err) {
      if (err instanceof NoteFormatError) return text(400, `malformed add-checkpoint request: ${err.message}`);
      throw err;
    }
    const keys = this.logs.get(cp.origin);
    if (!keys) return text(404, `unknown log origin "${cp.origin}"`);

    const verifiedLines: string[] = [];
    for (const sig of note.signatures) {
      const key = keys.find((k) => k.name === sig.name && k.keyId.equals(sig.keyId));
      if (!key) continue; // unknown keys are ignored (other witnesses' cosignatures, rotated keys)
      if (!verifyNoteEd25519(key, note.text, sig))
        return text(403, `the signature by the log key ${key.name}+${key.keyId.toString("hex")} does not verify`);
      verifiedLines.push(`\u2014 ${sig.name} ${Buffer.concat([sig.keyId, sig.signature]).toString("base64")}\n`);
    }
    if (verifiedLines.length === 0) return text(403, `no signature by a known key of log "${cp.origin}"`);
    if (req.oldSize > cp.treeSize) return text(400, `old size ${req.oldSize} is larger than the checkpoint size ${cp.treeSize}`);

    // From here to writeLogState: synchronous, so the check and the update are atomic in this process.
    const state = readLogState(this.keyDir, cp.origin);
    const storedSize = state?.treeSize ?? 0;
    if (req.oldSize !== storedSize) return conflict(storedSize);
    if (cp.treeSize === 0 && cp.rootHash !== EMPTY_TREE_ROOT.toString("hex")) return text(422, "an empty tree must have the empty root");
    if (state && req.oldSize === cp.treeSize) {
      if (state.rootHash !== cp.rootHash) {
        appendEvidence(this.keyDir, {
          kind: "fork",
          origin: cp.origin,
          treeSize: cp.treeSize,
          cosignedRoot: state.rootHash,
          offeredRoot: cp.rootHash,
          note: req.note,
        });
        return conflict(storedSize);
      }
    } else {
      const oldRoot = state ? Buffer.from(state.rootHash, "hex") : EMPTY_TREE_ROOT;
      if (!verifyConsistency(req.oldSize, cp.treeSize, oldRoot, Buffer.from(cp.rootHash, "hex"), req.proof)) {
        if (state)
          appendEvidence(this.keyDir, {
            kind: "inconsistent",
            origin: cp.origin,
            fromSize: state.treeSize,
            fromRoot: state.rootHash,
            treeSize: cp.treeSize,
            offeredRoot: cp.rootHash,
            note: req.note,
          });
        return text(422, `the consistency proof from size ${req.oldSize} to ${cp.treeSize} does not verify`);
      }
    }

    const timestamp = Math.floor(this.now() / 1000);
    const cosignature = cosignNote(this.identity.name, this.identity.privateKey, note.text, timestamp);
    const next: WitnessLogState = {
      origin: cp.origin,
      treeSize: cp.treeSize,
      rootHash: cp.rootHash,
      noteText: note.text,
      logSignatures: verifiedLines,
      cosignature,
      cosignedAt: new Date(timestamp * 1000).toISOString(),
    };
    writeLogState(this.keyDir, next);
    return { status: 200, contentType: "text/plain; charset=utf-8", body: cosignature };
  }

  /** The latest checkpoint this witness cosigned for `origin`, as a signed note carrying the log's and its own signature. */
  latestCheckpoint(origin: string): WitnessResponse {
    if (!this.logs.has(origin)) return text(404, `unknown log origin "${origin}"`);
    const state = readLogState(this.keyDir, origin);
    if (!state) return text(404, `nothing cosigned yet for "${origin}"`);
    return {
      status: 200,
      contentType: "text/plain; charset=utf-8",
      body: `${state.noteText}\n${state.logSignatures.join("")}${state.cosignature}`,
    };
  }
}
