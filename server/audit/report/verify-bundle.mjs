#!/usr/bin/env node
/**
 * verify-bundle.mjs: the auditor's standalone verifier of a Runledger report bundle. It is copied into every bundle
 * and verifies the folder it sits in, with Node's standard library only (no Runledger source, no npm packages):
 *
 *   node verify-bundle.mjs [--public-key FILE] [--trusted-checkpoint FILE] [--witness-key FILE]... [--origin LOG_ORIGIN]
 *                          [--require-anchor] [--json]
 *
 * Exit codes: 0 verified, 1 failed (the problems are named), 2 usage error.
 * It reports three levels, like `npm run cli -- audit verify`:
 * - chain: events.jsonl has gapless seq from 1; each leaf hash = sha256(0x00 || RFC 8785 canonical JSON of the
 *   event body {seq, at, actorId, actorName, role, action, entityType, entityId, payload}); chain hash =
 *   sha256(previous chain hash || leaf hash), the first previous being 32 zero bytes; every checkpoint in
 *   checkpoints.json is signed (Ed25519 over the canonical JSON of {treeSize, rootHash, at, keyFingerprint}) by a
 *   trusted key (fingerprint "SHA256:" + sha256 hex of the SPKI DER) and its RFC 6962 Merkle root equals the root
 *   of the first treeSize leaf hashes; every "audit.checkpoint" event matches its checkpoint row and vice versa;
 *   events exist only under a signed checkpoint (a short unsigned tail is allowed and reported). After a key
 *   rotation ("audit.keyRotate" events, endorsed by the old key) each checkpoint is checked against the key in force
 *   at its tree size, following the chain from the trusted key (server/audit/key-rotation.ts's rules).
 * - content: report.json's facts and lineage.prov.json hash to what the "audit.export" event recorded;
 *   files match manifest.json (which is not signed: the ledger binds report.json, not the rendered HTML).
 * - anchor: a trusted checkpoint the auditor kept (--trusted-checkpoint) or a witness cosignature in
 *   cosignatures.json (C2SP cosignature/v1) by a key given with --witness-key, whose root matches the log at its size
 *   (a mismatch is a split view); with witness keys, events older than 20 minutes before the newest must be
 *   cosigned (witness lag). Keys shipped in the bundle's witness-keys/ anchor nothing. Without an anchor the result says plainly that a
 *   holder of the signing key could have rewritten history; --require-anchor then fails.
 * The key trusted is --public-key, else the trusted checkpoint's key, else the bundle's own public-key.pem (said so).
 *
 * Invariants: this file imports only `node:` modules (a test checks it); its canonical JSON equals the server's
 * (RFC 8785: numbers as ECMAScript prints them, keys in UTF-16 code-unit order, JSON.stringify string escapes,
 * lone surrogates refused); it reads the bundle and writes nothing. It is one file on purpose (an auditor copies
 * one script), which is why it is longer than the project's other files.
 */
import crypto from "node:crypto";
import fs from "node:fs";
import path from "node:path";
import readline from "node:readline";
import { fileURLToPath } from "node:url";
import { parseArgs } from "node:util";

const COVERAGE_LIMIT_MINUTES = 10 + 2; // checkpoint interval (server/audit/checkpoint-policy.ts) + grace (verify.ts)
const NOT_ANCHORED =
  "no trusted checkpoint or witness cosignature was given: the chain and signatures are consistent, but a holder of the signing key could have rewritten or truncated history and re-signed it";

// ------------------------------------------------------------------------------------------------------------
// RFC 8785 canonical JSON and hashing.

/** RFC 8785 (JCS) text of a JSON value; throws on values JSON cannot carry (NaN, Infinity, lone surrogates). */
export function canonicalJson(value) {
  if (value === null) return "null";
  switch (typeof value) {
    case "boolean":
      return value ? "true" : "false";
    case "number":
      if (!Number.isFinite(value)) throw new Error(`canonical JSON: ${value} is not allowed`);
      return JSON.stringify(value); // ECMAScript Number-to-string, as RFC 8785 requires; -0 prints as 0
    case "string":
      return canonicalString(value);
    case "object": {
      let out;
      if (Array.isArray(value)) {
        out = "[";
        for (let i = 0; i < value.length; i++) out += (i > 0 ? "," : "") + (value[i] === undefined ? "null" : canonicalJson(value[i]));
        return out + "]";
      }
      out = "{";
      for (const k of Object.keys(value).sort()) { // default sort = UTF-16 code-unit order, as RFC 8785 requires
        if (value[k] === undefined) continue;
        out += (out.length > 1 ? "," : "") + canonicalString(k) + ":" + canonicalJson(value[k]);
      }
      return out + "}";
    }
    default:
      throw new Error(`canonical JSON: a ${typeof value} is not JSON`);
  }
}

function canonicalString(s) {
  if (!s.isWellFormed()) throw new Error("canonical JSON: a lone surrogate is not allowed");
  return JSON.stringify(s);
}

const hashOnce = typeof crypto.hash === "function" ? (data) => crypto.hash("sha256", data, "buffer") : (data) => crypto.createHash("sha256").update(data).digest();
function sha256(...parts) {
  return hashOnce(parts.length === 1 ? parts[0] : Buffer.concat(parts));
}
const sha256Hex = (...parts) => sha256(...parts).toString("hex");
const isHex64 = (s) => typeof s === "string" && /^[0-9a-f]{64}$/.test(s);
const EMPTY_ROOT = sha256(Buffer.alloc(0));

const BODY_FIELDS = ["action", "actorId", "actorName", "at", "entityId", "entityType", "payload", "role", "seq"]; // RFC 8785 order

/** The leaf hash of an events.jsonl row, exactly as server/audit/ledger.ts's leafHash(eventBody(row)). */
export function eventLeafHash(row) {
  const payload = JSON.parse(row.payload);
  let text = "{";
  for (const k of BODY_FIELDS) {
    const v = k === "payload" ? payload : row[k];
    if (v === undefined) continue; // as JSON: a missing field is left out
    text += (text.length > 1 ? "," : "") + `"${k}":` + canonicalJson(v);
  }
  return hashOnce("\u0000" + text + "}").toString("hex");
}

const NODE_PREFIX = Buffer.from([1]);

/** RFC 6962 Merkle tree built leaf by leaf: a stack of perfect subtrees (O(log n) memory). */
class MerkleAccumulator {
  stack = [];
  size = 0;
  push(leaf) {
    let node = leaf;
    let width = 1;
    while (this.stack.length > 0 && this.stack.at(-1).width === width) {
      node = sha256(NODE_PREFIX, this.stack.pop().hash, node);
      width *= 2;
    }
    this.stack.push({ hash: node, width });
    this.size++;
  }
  rootHex() {
    if (this.stack.length === 0) return EMPTY_ROOT.toString("hex");
    let root = this.stack.at(-1).hash;
    for (let i = this.stack.length - 2; i >= 0; i--) root = sha256(NODE_PREFIX, this.stack[i].hash, root);
    return root.toString("hex");
  }
}

// ------------------------------------------------------------------------------------------------------------
// Keys and signatures.

function parsePublicKey(pem, what) {
  let key;
  try {
    key = crypto.createPublicKey(pem);
  } catch (err) {
    throw new UsageError(`${what} is not a PEM public key: ${err.message}`);
  }
  if (key.asymmetricKeyType !== "ed25519") throw new UsageError(`${what} is a ${key.asymmetricKeyType} key; the audit key is Ed25519`);
  return { key, fingerprint: `SHA256:${sha256Hex(key.export({ type: "spki", format: "der" }))}` };
}

function verifyEd25519(key, text, signatureB64) {
  try {
    const sig = Buffer.from(String(signatureB64), "base64");
    if (sig.length !== 64 || sig.toString("base64") !== signatureB64) return false;
    return crypto.verify(null, Buffer.from(text, "utf8"), key, sig);
  } catch {
    return false;
  }
}

const treeHeadText = (h) => canonicalJson({ treeSize: h.treeSize, rootHash: h.rootHash, at: h.at, keyFingerprint: h.keyFingerprint });

// ------------------------------------------------------------------------------------------------------------
// Key rotation (server/audit/key-rotation.ts): a new key is introduced by an "audit.keyRotate" event whose payload
// the old key endorses; the key in force at tree size S is the one introduced by the last valid rotation with
// seq <= S (a tree containing the rotation event is signed by the new key), else the first key.

const ROTATION_PURPOSE = "runledger-audit-key-rotation/1";
const FINGERPRINT = /^SHA256:[0-9a-f]{64}$/;

function rotationPayloadProblem(p) {
  if (!p || typeof p !== "object") return "payload is not an object";
  for (const k of ["oldFingerprint", "newFingerprint"]) if (typeof p[k] !== "string" || !FINGERPRINT.test(p[k])) return `${k} is not a key fingerprint`;
  for (const k of ["oldPublicKeyPem", "newPublicKeyPem"]) if (typeof p[k] !== "string" || !p[k].includes("BEGIN PUBLIC KEY")) return `${k} is not a PEM public key`;
  if (!Number.isSafeInteger(p.previousTreeSize) || p.previousTreeSize < 0) return "previousTreeSize is not a tree size";
  if (!isHex64(p.previousRootHash)) return "previousRootHash is not a sha256";
  if (!Number.isSafeInteger(p.previousCheckpointId) || p.previousCheckpointId <= 0) return "previousCheckpointId is not a checkpoint id";
  if (typeof p.endorsement !== "string" || p.endorsement.length === 0) return "endorsement is missing";
  return null;
}

function tryKey(pem) {
  try {
    return parsePublicKey(pem, "key");
  } catch {
    return null;
  }
}

function walkRotations(first, rotations, checkpoints) {
  const segments = [{ fromTreeSize: 0, key: first, rotationSeq: null }];
  const problems = [];
  for (const { seq, payload: p } of rotations) {
    const fail = (message) => problems.push(`seq ${seq}: ${message}`);
    const cur = segments.at(-1).key;
    const malformed = rotationPayloadProblem(p);
    if (malformed) fail(`key rotation event is malformed (${malformed})`);
    else if (p.oldFingerprint !== cur.fingerprint) fail(`key rotation replaces key ${p.oldFingerprint}, but the key in force is ${cur.fingerprint} (forged rotation?)`);
    else {
      const next = tryKey(p.newPublicKeyPem);
      const endorsed = canonicalJson({ purpose: ROTATION_PURPOSE, newFingerprint: p.newFingerprint, newPublicKeyPem: p.newPublicKeyPem, previousTreeSize: p.previousTreeSize, previousRootHash: p.previousRootHash });
      if (!next) fail("key rotation's new public key does not parse");
      else if (next.fingerprint !== p.newFingerprint) fail(`key rotation's new public key has fingerprint ${next.fingerprint}, not ${p.newFingerprint} as it claims`);
      else if (!verifyEd25519(cur.key, endorsed, p.endorsement)) fail(`key rotation to ${p.newFingerprint} is not endorsed by the key in force ${cur.fingerprint} (forged rotation?)`);
      else if (p.previousTreeSize >= seq || !checkpoints.some((cp) => cp.treeSize === p.previousTreeSize && cp.rootHash === p.previousRootHash && cp.keyFingerprint === cur.fingerprint))
        fail(`key rotation endorses tree size ${p.previousTreeSize} (root ${p.previousRootHash.slice(0, 12)}…), but no checkpoint before it signed by ${cur.fingerprint} has that head`);
      else segments.push({ fromTreeSize: seq, key: next, rotationSeq: seq });
    }
  }
  return { segments, problems };
}

/** The chain of keys from the trusted key (or, when the trusted key is a later one, from the first key the log records). */
function buildKeyChain(trusted, rotations, checkpoints) {
  const notes = [];
  let walk = walkRotations(trusted, rotations, checkpoints);
  const first = rotations.length > 0 ? tryKey(rotations[0].payload?.oldPublicKeyPem) : null;
  if (first && first.fingerprint === rotations[0].payload.oldFingerprint && first.fingerprint !== trusted.fingerprint) {
    const fromFirst = walkRotations(first, rotations, checkpoints);
    const at = fromFirst.segments.find((seg) => seg.key.fingerprint === trusted.fingerprint);
    if (at) {
      walk = fromFirst;
      if (!checkpoints.some((cp) => cp.keyFingerprint === trusted.fingerprint && cp.treeSize >= at.fromTreeSize)) walk.problems.push(`the trusted key ${trusted.fingerprint} signed no checkpoint covering its introduction at seq ${at.rotationSeq}`);
      notes.push(`the trusted key ${trusted.fingerprint} came into force at seq ${at.rotationSeq} (a key rotation); the ${fromFirst.segments.indexOf(at)} key(s) before it are the ones the log it signed records, each endorsed by its predecessor`);
    }
  }
  if (walk.segments.length > 1) notes.push(`the signing key was rotated ${walk.segments.length - 1} time(s); each checkpoint was checked against the key in force at its tree size`);
  const keyAt = (treeSize) => walk.segments.filter((seg) => seg.fromTreeSize <= treeSize).at(-1) ?? walk.segments[0];
  /** Fingerprint and signature of a signed tree head against the key in force at its size; null when valid. */
  const headProblem = (name, head, signature) => {
    const seg = keyAt(head.treeSize);
    if (head.keyFingerprint !== seg.key.fingerprint) {
      if (walk.segments.length === 1 && rotations.length === 0) return `${name} was signed with key ${head.keyFingerprint}, not the trusted server key ${seg.key.fingerprint}`;
      const inForce = `${seg.key.fingerprint} (${seg.rotationSeq === null ? "the first key" : `introduced at seq ${seg.rotationSeq}`})`;
      return walk.segments.some((x) => x.key.fingerprint === head.keyFingerprint)
        ? `${name} (tree size ${head.treeSize}) was signed with key ${head.keyFingerprint}, but the key in force at that size is ${inForce}`
        : `${name} (tree size ${head.treeSize}) was signed with key ${head.keyFingerprint}, which no valid key rotation introduced (the key in force is ${inForce})`;
    }
    return verifyEd25519(seg.key.key, treeHeadText(head), signature) ? null : `${name} signature is not valid for the server key (altered checkpoint?)`;
  };
  return { segments: walk.segments, problems: walk.problems, notes, headProblem };
}

// ------------------------------------------------------------------------------------------------------------
// Witness cosignatures (C2SP tlog-cosignature, "cosignature/v1", note signature type 0x04) over C2SP checkpoint
// notes "<origin>\n<tree size>\n<base64 root>\n". Verifier keys: "<name>+<8 hex key ID>+<base64(0x04 || key)>",
// key ID = sha256(name || "\n" || 0x04 || 32-byte key)[:4]. The log's origin is "runledger/<first 16 hex of the
// fingerprint of a key that signed its checkpoints>" unless the operator pinned another (then pass --origin).

const COSIGNATURES_FORMAT = "runledger-witness-cosignatures/1";
const WITNESS_MAX_LAG_MINUTES = 20; // server/audit/witness/witness-anchors.ts: 2 × the 10-minute checkpoint interval

function parseWitnessKey(text, what) {
  const vkey = text.split("\n").map((l) => l.trim()).find((l) => l.length > 0 && !l.startsWith("#")) ?? "";
  const first = vkey.indexOf("+");
  const second = first < 0 ? -1 : vkey.indexOf("+", first + 1); // the base64 key itself may contain "+"
  const [name, idHex, b64] = second < 0 ? [] : [vkey.slice(0, first), vkey.slice(first + 1, second), vkey.slice(second + 1)];
  const bad = (why) => new UsageError(`${what} is not a witness verifier key <name>+<key id>+<base64 key> (${why})`);
  if (!name || !/^[0-9a-f]{8}$/.test(idHex ?? "") || !b64) throw bad(`got "${vkey.slice(0, 80)}"`);
  const data = Buffer.from(b64, "base64");
  if (data.toString("base64") !== b64) throw bad("the key is not canonical base64");
  if (data[0] !== 0x04 || data.length !== 33) throw bad("not an Ed25519 cosignature/v1 (type 0x04) key");
  const raw = data.subarray(1);
  const keyId = sha256(Buffer.from(name, "utf8"), Buffer.from([0x0a, 0x04]), raw).subarray(0, 4).toString("hex");
  if (keyId !== idHex) throw bad(`key ID ${idHex} does not match the key (expected ${keyId})`);
  return { name, keyId, key: crypto.createPublicKey({ key: { kty: "OKP", crv: "Ed25519", x: raw.toString("base64url") }, format: "jwk" }), vkey };
}

/** A cosignature record (the bundle's cosignatures.json) verified under a witness key; null when it does not verify. */
function verifyCosignatureRecord(key, r) {
  try {
    const blob = Buffer.from(String(r.signature), "base64");
    if (blob.length !== 76 || blob.subarray(0, 4).toString("hex") !== key.keyId || Number(blob.readBigUInt64BE(4)) !== r.timestamp) return false;
    const note = `${r.origin}\n${r.treeSize}\n${Buffer.from(r.rootHash, "hex").toString("base64")}\n`;
    return crypto.verify(null, Buffer.from(`cosignature/v1\ntime ${r.timestamp}\n${note}`, "utf8"), key.key, blob.subarray(12));
  } catch {
    return false;
  }
}

// ------------------------------------------------------------------------------------------------------------
// The event pass.

class UsageError extends Error {}

/**
 * One pass over events.jsonl: seq, leaf and chain of every event; the Merkle root at every size in `wantRoots`;
 * the events other checks need (by action). Stops at the first bad event, whose seq and problem it returns.
 */
async function readEvents(file, wantRoots, keepActions, tailAfter = Infinity, coveredUpTo = 0) {
  const roots = new Map([[0, EMPTY_ROOT.toString("hex")]]);
  const kept = [];
  const tail = { count: 0, firstSeq: null, oldestAt: null }; // events after seq `tailAfter` (witness lag)
  let newest = null; // [at, seq] of the newest event that is not a checkpoint event (coverage rule)
  let oldestUncovered = null; // [at, seq] of the oldest such event after `coveredUpTo`
  const tree = new MerkleAccumulator();
  let prevChain = Buffer.alloc(32);
  let expected = 1;
  let failure = null;
  let lastAt = null;
  const lines = readline.createInterface({ input: fs.createReadStream(file, { encoding: "utf8", highWaterMark: 1 << 20 }), crlfDelay: Infinity });
  let lineNo = 0;
  for await (const line of lines) {
    lineNo++;
    if (line.length === 0) continue;
    let row;
    try {
      row = JSON.parse(line);
    } catch {
      failure = { seq: expected, problem: `events.jsonl line ${lineNo} is not valid JSON (damaged bundle?)` };
      break;
    }
    if (row.seq !== expected) {
      failure = typeof row.seq === "number" && row.seq > expected
        ? { seq: expected, problem: `seq ${expected} missing: expected ${expected}, found ${row.seq} (deleted row?)` }
        : { seq: expected, problem: `seq ${expected}: found seq ${String(row.seq)} out of order (reordered or duplicated row?)` };
      break;
    }
    let leaf;
    try {
      leaf = eventLeafHash(row);
    } catch {
      failure = { seq: expected, problem: `seq ${expected}: its fields cannot be hashed (payload is not valid JSON?)` };
      break;
    }
    if (leaf !== row.leafHash) {
      failure = { seq: expected, problem: `seq ${expected}: leaf hash does not match its content (edited?)` };
      break;
    }
    const chain = sha256(prevChain, Buffer.from(leaf, "hex"));
    if (chain.toString("hex") !== row.chainHash) {
      failure = { seq: expected, problem: `seq ${expected}: chain hash does not follow from seq ${expected - 1} (row inserted, removed or rewritten?)` };
      break;
    }
    prevChain = chain;
    tree.push(Buffer.from(leaf, "hex"));
    if (wantRoots.has(expected)) roots.set(expected, tree.rootHex());
    if (keepActions.has(row.action)) kept.push({ seq: row.seq, at: row.at, action: row.action, entityType: row.entityType, entityId: row.entityId, payload: JSON.parse(row.payload) });
    lastAt = row.at;
    if (row.action !== "audit.checkpoint") {
      if (newest === null || row.at > newest[0]) newest = [row.at, expected];
      if (expected > coveredUpTo && (oldestUncovered === null || row.at < oldestUncovered[0])) oldestUncovered = [row.at, expected];
    }
    if (expected > tailAfter) {
      tail.count++;
      tail.firstSeq ??= expected;
      if (tail.oldestAt === null || row.at < tail.oldestAt) tail.oldestAt = row.at;
    }
    expected++;
  }
  lines.close();
  return { events: expected - 1, roots, kept, failure, lastAt, tail, newest, oldestUncovered };
}

// ------------------------------------------------------------------------------------------------------------
// Reading the bundle and the auditor's files.

function readJson(file, what) {
  let text;
  try {
    text = fs.readFileSync(file, "utf8");
  } catch {
    return { error: `${what} is missing (${path.basename(file)})` };
  }
  try {
    return { value: JSON.parse(text) };
  } catch (err) {
    return { error: `${what} is not valid JSON: ${err.message}` };
  }
}

function readUserFile(file, what) {
  if (!fs.existsSync(file)) throw new UsageError(`${what} not found: ${file}`);
  return fs.readFileSync(file, "utf8");
}

function parseTrustedCheckpoint(text, file) {
  let tc;
  try {
    tc = JSON.parse(text);
  } catch (err) {
    throw new UsageError(`trusted checkpoint ${file} is not JSON: ${err.message}`);
  }
  const h = tc?.treeHead;
  if (tc?.format !== "runledger-audit-checkpoint/1" || !h || !Number.isSafeInteger(h.treeSize) || h.treeSize < 0 || !isHex64(h.rootHash) || typeof h.at !== "string" || typeof h.keyFingerprint !== "string" || typeof tc.signature !== "string") {
    throw new UsageError(`${file} is not a trusted checkpoint file (format runledger-audit-checkpoint/1 with treeHead {treeSize, rootHash, at, keyFingerprint} and signature)`);
  }
  return tc;
}

// ------------------------------------------------------------------------------------------------------------
// Verification.

export async function verifyBundleDir(dir, opts = {}) {
  const started = performance.now();
  const chainProblems = [];
  const notes = [];
  const content = { ok: true, checked: 0, problems: [], notCovered: [] };
  const anchorBy = [];
  const anchorProblems = [];

  // The key to trust.
  let trusted;
  let keySource;
  if (opts.publicKeyPem) [trusted, keySource] = [parsePublicKey(opts.publicKeyPem, "--public-key"), "given"];
  else if (opts.trustedCheckpoint?.publicKeyPem) [trusted, keySource] = [parsePublicKey(opts.trustedCheckpoint.publicKeyPem, "the trusted checkpoint's publicKeyPem"), "trusted checkpoint"];
  else {
    const pem = fs.existsSync(path.join(dir, "public-key.pem")) ? fs.readFileSync(path.join(dir, "public-key.pem"), "utf8") : null;
    if (!pem) throw new UsageError("the bundle has no public-key.pem: pass --public-key FILE");
    [trusted, keySource] = [parsePublicKey(pem, "the bundle's public-key.pem"), "bundle"];
    notes.push(`the public key was read from the bundle being verified; compare its fingerprint ${trusted.fingerprint} with one you trust, or pass --public-key or --trusted-checkpoint`);
  }

  const eventsFile = path.join(dir, "events.jsonl");
  if (!fs.existsSync(eventsFile)) throw new BundleError("the bundle has no events.jsonl: this is not an audit bundle (or it was damaged)");
  const cps = readJson(path.join(dir, "checkpoints.json"), "checkpoints.json");
  if (cps.error) chainProblems.push(cps.error);
  else if (!Array.isArray(cps.value)) chainProblems.push("checkpoints.json is not a list of checkpoints");
  const cpList = Array.isArray(cps.value) ? [...cps.value].sort((a, b) => a.id - b.id) : [];
  const tc = opts.trustedCheckpoint ?? null;

  // Witness cosignatures are checked before the pass (they need keys, not events); their roots after it.
  const witnesses = checkWitnesses(dir, opts, cpList, notes, anchorProblems);
  const wantRoots = new Set([...cpList.map((c) => c.treeSize), ...witnesses.anchors.map((a) => a.treeSize)]);
  if (tc) wantRoots.add(tc.treeHead.treeSize);
  const coveredUpTo = cpList.reduce((m, c) => Math.max(m, Number.isSafeInteger(c.treeSize) ? c.treeSize : 0), 0);
  const log = await readEvents(eventsFile, wantRoots, new Set(["audit.checkpoint", "audit.export", "audit.keyRotate"]), witnesses.coveredSize, coveredUpTo);
  const n = log.events;
  const cut = log.failure ? log.failure.seq : Infinity; // nothing at or after the first bad event can be judged
  const rootProblem = (name, treeSize, rootHash, rewritten) =>
    treeSize >= cut ? null : treeSize > n ? `${name} covers ${treeSize} events but the log has ${n} (truncated?)` : log.roots.get(treeSize) !== rootHash ? `${name} (tree size ${treeSize}) root does not match the events (${rewritten})` : null;

  // Keys: the chain of keys from the trusted one, through the log's verified rotation events.
  const keys = buildKeyChain(trusted, log.kept.filter((e) => e.action === "audit.keyRotate"), cpList);
  chainProblems.push(...keys.problems);
  notes.push(...keys.notes);

  // Checkpoints: key and signature, root, and the matching "audit.checkpoint" event both ways.
  const recorded = new Map(log.kept.filter((e) => e.action === "audit.checkpoint").map((e) => [e.payload?.checkpointId, e]));
  const signed = [];
  for (const cp of cpList) {
    const problem = keys.headProblem(`checkpoint #${cp.id}`, cp, cp.signature) ?? rootProblem(`checkpoint #${cp.id}`, cp.treeSize, cp.rootHash, "rewritten history?");
    if (problem) chainProblems.push(problem);
    else if (cp.treeSize < cut && recorded.has(cp.id)) signed.push(cp);
  }
  for (const e of recorded.values()) {
    const id = e.payload?.checkpointId;
    const cp = cpList.find((c) => c.id === id);
    if (typeof id !== "number") chainProblems.push(`seq ${e.seq}: checkpoint event does not name its checkpoint`);
    else if (!cp) chainProblems.push(`seq ${e.seq} records checkpoint #${id}, but checkpoints.json has no such checkpoint (deleted?)`);
    else if (cp.treeSize !== e.payload.treeSize || cp.rootHash !== e.payload.rootHash || cp.signature !== e.payload.signature || cp.at !== e.payload.at) chainProblems.push(`checkpoint #${id} differs from the copy recorded at seq ${e.seq} (altered checkpoint?)`);
  }
  if (!log.failure) for (const cp of cpList) if (!recorded.has(cp.id)) chainProblems.push(`checkpoint #${cp.id} is not recorded by any audit.checkpoint event (inserted checkpoint?)`);
  const lastSigned = signed.reduce((m, c) => Math.max(m, c.treeSize), 0);
  const latest = signed.at(-1) ?? null;
  const unsignedTail = n - lastSigned;
  // Coverage (as server/audit/verify.ts): every writer signs within the checkpoint interval, so events covered by no
  // checkpoint yet more than the interval (+ grace) older than the newest event mean checkpoints were deleted.
  const gapMs = log.newest && log.oldestUncovered ? Date.parse(log.newest[0]) - Date.parse(log.oldestUncovered[0]) : 0;
  if (!log.failure && n > 0 && cpList.length === 0) chainProblems.push(`no signed checkpoint covers the ${n} events (an exported bundle always carries one): nothing binds them to the server key (checkpoints deleted?)`);
  else if (!log.failure && gapMs > COVERAGE_LIMIT_MINUTES * 60_000) {
    const [at, seq] = log.oldestUncovered;
    chainProblems.push(`events from seq ${seq} (${at}) on are covered by no checkpoint, yet ${Math.round(gapMs / 60_000)} minutes older than the newest event (seq ${log.newest[1]}, ${log.newest[0]}); the app signs a checkpoint at least every ${COVERAGE_LIMIT_MINUTES - 2} minutes (checkpoints deleted?)`);
  } else if (unsignedTail > 0 && signed.length > 0) notes.push(`${unsignedTail} event(s) after the last checkpoint are chained but not yet covered by a signature`);
  if (log.failure) chainProblems.push(log.failure.problem);

  // Anchors: the trusted checkpoint the auditor kept, and witness cosignatures.
  if (tc) {
    const h = tc.treeHead;
    const problem = keys.headProblem("the trusted checkpoint", h, tc.signature) ??
      (h.treeSize >= cut ? `the trusted checkpoint (tree size ${h.treeSize}) cannot be checked: the log is broken at seq ${cut}` : null) ??
      (h.treeSize > n ? `log has ${n} events but the trusted checkpoint covers ${h.treeSize} (truncated?)` : null) ??
      rootProblem("the trusted checkpoint", h.treeSize, h.rootHash, "history was rewritten after it was taken: split view?");
    if (problem) anchorProblems.push(problem);
    else anchorBy.push({ kind: "trusted checkpoint", name: "the trusted checkpoint", treeSize: h.treeSize });
  }
  for (const a of witnesses.anchors) {
    const problem = a.treeSize >= cut ? null : rootProblem(a.name, a.treeSize, a.rootHash, "split view: the witness cosigned a different history");
    if (problem) anchorProblems.push(problem);
    else if (a.treeSize < cut) anchorBy.push({ kind: "witness", name: a.name, treeSize: a.treeSize });
  }
  if (witnesses.keysGiven && !log.failure) {
    const lag = log.tail.count > 0 && log.lastAt && Date.parse(log.lastAt) - Date.parse(log.tail.oldestAt) > WITNESS_MAX_LAG_MINUTES * 60_000;
    if (lag) anchorProblems.push(`witness lag: ${log.tail.count} event(s) from seq ${log.tail.firstSeq} on are not covered by any witness cosignature (largest cosigned tree size ${witnesses.coveredSize}), and the oldest of them (${log.tail.oldestAt}) is ${Math.round((Date.parse(log.lastAt) - Date.parse(log.tail.oldestAt)) / 60_000)} minutes older than the newest event (${log.lastAt}); at most ${WITNESS_MAX_LAG_MINUTES} minutes are allowed`);
  }

  // Content: report.json and lineage.prov.json against the "audit.export" event, files against manifest.json.
  checkReportContent(dir, log, content);

  const chainOk = chainProblems.length === 0;
  const anchorTreeSize = anchorBy.reduce((m, a) => Math.max(m, a.treeSize), 0);
  const anchored = chainOk && anchorProblems.length === 0 && anchorBy.length > 0;
  const problems = [...chainProblems, ...anchorProblems, ...content.problems.map((p) => p.message)];
  if (!anchored && anchorProblems.length === 0) notes.push(NOT_ANCHORED);
  if (opts.requireAnchor && !anchored && anchorProblems.length === 0) problems.push("--require-anchor: the log is not anchored (pass --trusted-checkpoint or --witness-key)");
  content.ok = content.problems.length === 0;
  const eventsChecked = log.failure ? log.failure.seq - 1 : n;
  return {
    ok: problems.length === 0,
    anchored,
    levels: {
      chain: { ok: chainOk, events: eventsChecked, checkpoints: signed.length, problem: chainProblems[0] ?? null },
      content,
      anchor: { anchored, treeSize: anchored ? anchorTreeSize : 0, by: anchorBy, problem: anchorProblems[0] ?? null },
    },
    eventsChecked,
    checkpointsChecked: signed.length,
    firstBadSeq: log.failure ? log.failure.seq : null,
    problem: problems[0] ?? null,
    problems,
    notes,
    keyFingerprint: trusted.fingerprint,
    keySource,
    latestCheckpoint: latest ? { id: latest.id, treeSize: latest.treeSize, at: latest.at } : null,
    unsignedTail,
    trustedCheckpointChecked: anchorBy.some((a) => a.kind === "trusted checkpoint"),
    durationMs: Math.round((performance.now() - started) * 10) / 10,
  };
}

/**
 * Cosignatures in the bundle's cosignatures.json by the witness keys the auditor gave: valid ones become anchors
 * (their roots are compared after the pass), one claiming a given key but not verifying is a problem. Keys shipped
 * in the bundle (witness-keys/) are not trusted: cosignatures by them are only mentioned in a note.
 */
function checkWitnesses(dir, opts, cpList, notes, anchorProblems) {
  const given = (opts.witnessKeys ?? []).map((k, i) => parseWitnessKey(k.text, k.file ?? `witness key #${i + 1}`));
  const out = { anchors: [], coveredSize: given.length > 0 ? 0 : Infinity, keysGiven: given.length > 0 };
  const file = path.join(dir, "cosignatures.json");
  const read = fs.existsSync(file) ? readJson(file, "cosignatures.json") : { value: { format: COSIGNATURES_FORMAT, cosignatures: [] } };
  if (read.error || read.value?.format !== COSIGNATURES_FORMAT || !Array.isArray(read.value.cosignatures)) {
    (given.length > 0 ? anchorProblems : notes).push(read.error ?? `cosignatures.json is not a ${COSIGNATURES_FORMAT} file`);
    return out;
  }
  // The log's origin: --origin, else the one derived from the first checkpoint's key, or the one the file declares
  // (a pinned RUNLEDGER_LOG_ORIGIN). The origin is only a name: every anchor's root is compared with the log anyway.
  const first = cpList[0];
  const origins = opts.origin ? [opts.origin] : [...(first ? [`runledger/${String(first.keyFingerprint).replace(/^SHA256:/, "").slice(0, 16)}`] : []), ...(typeof read.value.origin === "string" ? [read.value.origin] : [])];
  const check = (keys, onValid, onInvalid) => {
    for (const r of read.value.cosignatures) {
      const key = keys.find((k) => k.name === r?.witnessName && k.keyId === r?.keyId);
      if (!key || !origins.includes(r.origin) || !Number.isSafeInteger(r.treeSize) || !isHex64(r.rootHash)) continue;
      if (verifyCosignatureRecord(key, r)) onValid(r, key);
      else onInvalid(r, key);
    }
  };
  check(
    given,
    (r) => {
      if (!out.anchors.some((a) => a.name === `witness ${r.witnessName}` && a.treeSize === r.treeSize && a.rootHash === r.rootHash)) out.anchors.push({ name: `witness ${r.witnessName}`, treeSize: r.treeSize, rootHash: r.rootHash });
      out.coveredSize = Math.max(out.coveredSize, r.treeSize);
    },
    (r) => anchorProblems.push(`cosignature #${r.id} by witness ${r.witnessName} (tree size ${r.treeSize}) does not verify under the witness key given (forged or altered cosignature)`),
  );
  for (const k of given) if (!out.anchors.some((a) => a.name === `witness ${k.name}`)) notes.push(`no valid cosignature by witness ${k.name} is in the bundle${origins.length ? ` for log origin ${origins.join(" or ")} (pass --origin if RUNLEDGER_LOG_ORIGIN was set)` : ""}`);
  if (given.length === 0) {
    const shipped = listWitnessKeysIn(path.join(dir, "witness-keys"));
    let valid = 0;
    check(shipped, () => valid++, () => {});
    if (valid > 0) notes.push(`${valid} cosignature(s) in the bundle verify under the witness keys shipped with it (witness-keys/); they anchor nothing until you pass a witness key you obtained yourself with --witness-key`);
  }
  return out;
}

function listWitnessKeysIn(dir) {
  if (!fs.existsSync(dir)) return [];
  const keys = [];
  for (const f of fs.readdirSync(dir)) {
    try {
      keys.push(parseWitnessKey(fs.readFileSync(path.join(dir, f), "utf8"), f));
    } catch {
      // not a key file: ignored (these keys are informational only)
    }
  }
  return keys;
}

class BundleError extends Error {}

function contentProblem(content, entityType, entityId, field, recorded, found, seq, message) {
  content.problems.push({ entityType, entityId: String(entityId), field, recorded, found, seq, message });
}

/** report.json's facts and the PROV document hash to what the export event recorded; files match the manifest. */
function checkReportContent(dir, log, content) {
  const report = readJson(path.join(dir, "report.json"), "report.json");
  if (report.error) return contentProblem(content, "bundle", "report.json", "file", null, null, null, report.error);
  const exportSeq = report.value?.integrity?.exportEventSeq;
  const event = log.kept.find((e) => e.action === "audit.export" && e.seq === exportSeq);
  if (!event) {
    const why = exportSeq > log.events ? "is beyond the verified log" : "is not an audit.export event";
    return contentProblem(content, "bundle", "report.json", "integrity.exportEventSeq", null, String(exportSeq), null, `report.json names export event #${exportSeq}, which ${why}`);
  }
  const facts = sha256Hex(canonicalJson(report.value.facts));
  content.checked++;
  if (facts !== event.payload.factsSha256) contentProblem(content, "report", "report.json", "factsSha256", event.payload.factsSha256, facts, event.seq, `report.json facts hash ${facts.slice(0, 12)}… but export event #${event.seq} recorded ${String(event.payload.factsSha256).slice(0, 12)}… (report edited?)`);
  const prov = readJson(path.join(dir, "lineage.prov.json"), "lineage.prov.json");
  content.checked++;
  if (prov.error) contentProblem(content, "bundle", "lineage.prov.json", "file", event.payload.provSha256, null, event.seq, prov.error);
  else {
    const provSha = sha256Hex(canonicalJson(prov.value));
    if (provSha !== event.payload.provSha256) contentProblem(content, "report", "lineage.prov.json", "provSha256", event.payload.provSha256, provSha, event.seq, `lineage.prov.json hashes to ${provSha.slice(0, 12)}… but export event #${event.seq} recorded ${String(event.payload.provSha256).slice(0, 12)}… (lineage edited?)`);
  }
  const manifest = readJson(path.join(dir, "manifest.json"), "manifest.json");
  if (manifest.error) return contentProblem(content, "bundle", "manifest.json", "file", null, null, null, manifest.error);
  for (const [file, m] of Object.entries(manifest.value.files ?? {})) {
    const abs = path.join(dir, file);
    if (file.split(/[\\/]/).includes("..")) continue;
    content.checked++;
    const found = fs.existsSync(abs) ? sha256Hex(fs.readFileSync(abs)) : null;
    if (found !== m.sha256) contentProblem(content, "file", file, "sha256", m.sha256, found, null, found === null ? `${file} is listed in manifest.json but missing` : `${file} does not match its manifest.json sha256 (replaced?)`);
  }
  content.notCovered.push("report.html and charts/*.svg are checked against manifest.json only, which is not signed; `npm run cli -- export --verify` re-renders them from report.json");
}

// ------------------------------------------------------------------------------------------------------------
// Command line.

function formatText(dir, r) {
  const c = r.levels.content;
  const lines = [
    `Runledger bundle ${dir}: ${r.ok ? "VERIFIED" : "FAILED"}`,
    `  chain:    ${r.levels.chain.ok ? "intact" : "BROKEN"}: ${r.levels.chain.events} events, ${r.levels.chain.checkpoints} signed checkpoints` + (r.latestCheckpoint ? ` (latest #${r.latestCheckpoint.id}, tree size ${r.latestCheckpoint.treeSize}, ${r.latestCheckpoint.at})` : ""),
    `  content:  ${c.skipped ? `not checked (${c.skipped})` : c.ok ? `intact: ${c.checked} facts checked` : `FAILED: ${c.problems.length} problem(s) in ${c.checked} facts checked`}`,
    `  anchored: ${r.anchored ? `yes, up to tree size ${r.levels.anchor.treeSize} (${r.levels.anchor.by.map((a) => a.name).join("; ")})` : r.levels.anchor.problem ? `NO: ${r.levels.anchor.problem}` : "no"}`,
    `  server key: ${r.keyFingerprint} (from ${r.keySource})`,
  ];
  if (r.firstBadSeq !== null) lines.push(`  first bad seq: ${r.firstBadSeq}`);
  for (const [i, p] of r.problems.slice(0, 30).entries()) lines.push(`  ${i === 0 ? "problem" : "also"}: ${p}`);
  if (r.problems.length > 30) lines.push(`  ... and ${r.problems.length - 30} more`);
  for (const nc of c.notCovered) lines.push(`  not covered: ${nc}`);
  for (const note of r.notes) lines.push(`  note: ${note}`);
  return lines.join("\n") + "\n";
}

const USAGE = "usage: node verify-bundle.mjs [--public-key FILE] [--trusted-checkpoint FILE] [--witness-key FILE]... [--origin LOG_ORIGIN] [--require-anchor] [--json]";

export async function main(argv, io = { out: (t) => process.stdout.write(t), err: (t) => process.stderr.write(t) }, dir = path.dirname(fileURLToPath(import.meta.url))) {
  try {
    const { values } = parseArgs({ args: argv, options: { "public-key": { type: "string" }, "trusted-checkpoint": { type: "string" }, "witness-key": { type: "string", multiple: true }, origin: { type: "string" }, "require-anchor": { type: "boolean", default: false }, json: { type: "boolean", default: false }, help: { type: "boolean", default: false } }, strict: true, allowPositionals: false });
    if (values.help) {
      io.out(`${USAGE}\nVerifies the Runledger report bundle in ${dir}. Exit 0 verified, 1 failed, 2 usage error.\n`);
      return 0;
    }
    const opts = {
      publicKeyPem: values["public-key"] ? readUserFile(values["public-key"], "public key file") : undefined,
      trustedCheckpoint: values["trusted-checkpoint"] ? parseTrustedCheckpoint(readUserFile(values["trusted-checkpoint"], "trusted checkpoint file"), values["trusted-checkpoint"]) : undefined,
      witnessKeys: (values["witness-key"] ?? []).map((f) => ({ file: f, text: readUserFile(f, "witness key file") })),
      origin: values.origin,
      requireAnchor: values["require-anchor"],
    };
    const r = await verifyBundleDir(dir, opts);
    io.out(values.json ? JSON.stringify({ bundle: dir, ...r }) + "\n" : formatText(dir, r));
    return r.ok ? 0 : 1;
  } catch (err) {
    if (err instanceof UsageError || String(err?.code).startsWith("ERR_PARSE_ARGS")) {
      io.err(`${err.message}\n${USAGE}\n`);
      return 2;
    }
    io.err(`FAILED: ${err instanceof BundleError ? err.message : `cannot verify the bundle: ${err?.message ?? err}`}\n`);
    return 1;
  }
}

if (process.argv[1] && path.resolve(process.argv[1]) === fileURLToPath(import.meta.url)) process.exitCode = await main(process.argv.slice(2));
