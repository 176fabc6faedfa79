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
 * - content: report.json's facts, lineage.prov.json and facts.json hash to what the "audit.export" event recorded;
 *   facts.json's records (the rows the report prints, as the tables held them at export) agree with the events that
 *   created and changed them: every recorded hash recomputed from the row (config, decisions, metric points,
 *   evaluation results, documents, recipes, manifests, promotion records), every recorded field compared, and the
 *   version's weights file re-hashed from its bytes; lineage.prov.json agrees with those records (every node, value
 *   and relation it states, and the version's whole ancestry with its authors: provLineageProblems); files match
 *   manifest.json (not signed: the ledger binds report.json and facts.json, not the rendered HTML).
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
      for (const k of Object.keys(value).sort()) {
        // default sort = UTF-16 code-unit order, as RFC 8785 requires
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

const hashOnce =
  typeof crypto.hash === "function"
    ? (data) => crypto.hash("sha256", data, "buffer")
    : (data) => crypto.createHash("sha256").update(data).digest();
function sha256(...parts) {
  return hashOnce(parts.length === 1 ? parts[0] : Buffer.concat(parts));
}
const sha256Hex = (...parts) => sha256(...parts).toString("hex");
/** "1 event", "4 events" (contracts/count-text.ts countOf; this script imports nothing of Runledger's). */
const countOf = (n, singular, plural = `${singular}s`) => `${n} ${n === 1 ? singular : plural}`;
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
  for (const k of ["oldFingerprint", "newFingerprint"])
    if (typeof p[k] !== "string" || !FINGERPRINT.test(p[k])) return `${k} is not a key fingerprint`;
  for (const k of ["oldPublicKeyPem", "newPublicKeyPem"])
    if (typeof p[k] !== "string" || !p[k].includes("BEGIN PUBLIC KEY")) return `${k} is not a PEM public key`;
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
    else if (p.oldFingerprint !== cur.fingerprint)
      fail(`key rotation replaces key ${p.oldFingerprint}, but the key in force is ${cur.fingerprint} (forged rotation?)`);
    else {
      const next = tryKey(p.newPublicKeyPem);
      const endorsed = canonicalJson({
        purpose: ROTATION_PURPOSE,
        newFingerprint: p.newFingerprint,
        newPublicKeyPem: p.newPublicKeyPem,
        previousTreeSize: p.previousTreeSize,
        previousRootHash: p.previousRootHash,
      });
      if (!next) fail("key rotation's new public key does not parse");
      else if (next.fingerprint !== p.newFingerprint)
        fail(`key rotation's new public key has fingerprint ${next.fingerprint}, not ${p.newFingerprint} as it claims`);
      else if (!verifyEd25519(cur.key, endorsed, p.endorsement))
        fail(`key rotation to ${p.newFingerprint} is not endorsed by the key in force ${cur.fingerprint} (forged rotation?)`);
      else if (
        p.previousTreeSize >= seq ||
        !checkpoints.some(
          (cp) => cp.treeSize === p.previousTreeSize && cp.rootHash === p.previousRootHash && cp.keyFingerprint === cur.fingerprint,
        )
      )
        fail(
          `key rotation endorses tree size ${p.previousTreeSize} (root ${p.previousRootHash.slice(0, 12)}…), but no checkpoint before it signed by ${cur.fingerprint} has that head`,
        );
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
      if (!checkpoints.some((cp) => cp.keyFingerprint === trusted.fingerprint && cp.treeSize >= at.fromTreeSize))
        walk.problems.push(
          `the trusted key ${trusted.fingerprint} signed no checkpoint covering its introduction at seq ${at.rotationSeq}`,
        );
      notes.push(
        `the trusted key ${trusted.fingerprint} came into force at seq ${at.rotationSeq} (a key rotation); the ${countOf(fromFirst.segments.indexOf(at), "key")} before it ${fromFirst.segments.indexOf(at) === 1 ? "is the one" : "are the ones"} the log it signed records, each endorsed by its predecessor`,
      );
    }
  }
  if (walk.segments.length > 1)
    notes.push(
      `the signing key was rotated ${walk.segments.length - 1 === 1 ? "once" : `${walk.segments.length - 1} times`}; each checkpoint was checked against the key in force at its tree size`,
    );
  const keyAt = (treeSize) => walk.segments.filter((seg) => seg.fromTreeSize <= treeSize).at(-1) ?? walk.segments[0];
  /** Fingerprint and signature of a signed tree head against the key in force at its size; null when valid. */
  const headProblem = (name, head, signature) => {
    const seg = keyAt(head.treeSize);
    if (head.keyFingerprint !== seg.key.fingerprint) {
      if (walk.segments.length === 1 && rotations.length === 0)
        return `${name} was signed with key ${head.keyFingerprint}, not the trusted server key ${seg.key.fingerprint}`;
      const inForce = `${seg.key.fingerprint} (${seg.rotationSeq === null ? "the first key" : `introduced at seq ${seg.rotationSeq}`})`;
      return walk.segments.some((x) => x.key.fingerprint === head.keyFingerprint)
        ? `${name} (tree size ${head.treeSize}) was signed with key ${head.keyFingerprint}, but the key in force at that size is ${inForce}`
        : `${name} (tree size ${head.treeSize}) was signed with key ${head.keyFingerprint}, which no valid key rotation introduced (the key in force is ${inForce})`;
    }
    return verifyEd25519(seg.key.key, treeHeadText(head), signature)
      ? null
      : `${name} signature is not valid for the server key (altered checkpoint?)`;
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
  const vkey =
    text
      .split("\n")
      .map((l) => l.trim())
      .find((l) => l.length > 0 && !l.startsWith("#")) ?? "";
  const first = vkey.indexOf("+");
  const second = first < 0 ? -1 : vkey.indexOf("+", first + 1); // the base64 key itself may contain "+"
  const [name, idHex, b64] = second < 0 ? [] : [vkey.slice(0, first), vkey.slice(first + 1, second), vkey.slice(second + 1)];
  const bad = (why) => new UsageError(`${what} is not a witness verifier key <name>+<key id>+<base64 key> (${why})`);
  if (!name || !/^[0-9a-f]{8}$/.test(idHex ?? "") || !b64) throw bad(`got "${vkey.slice(0, 80)}"`);
  const data = Buffer.from(b64, "base64");
  if (data.toString("base64") !== b64) throw bad("the key is not canonical base64");
  if (data[0] !== 0x04 || data.length !== 33) throw bad("not an Ed25519 cosignature/v1 (type 0x04) key");
  const raw = data.subarray(1);
  const keyId = sha256(Buffer.from(name, "utf8"), Buffer.from([0x0a, 0x04]), raw)
    .subarray(0, 4)
    .toString("hex");
  if (keyId !== idHex) throw bad(`key ID ${idHex} does not match the key (expected ${keyId})`);
  return {
    name,
    keyId,
    key: crypto.createPublicKey({ key: { kty: "OKP", crv: "Ed25519", x: raw.toString("base64url") }, format: "jwk" }),
    vkey,
  };
}

/** A cosignature record (the bundle's cosignatures.json) verified under a witness key; null when it does not verify. */
function verifyCosignatureRecord(key, r) {
  try {
    const blob = Buffer.from(String(r.signature), "base64");
    if (blob.length !== 76 || blob.subarray(0, 4).toString("hex") !== key.keyId || Number(blob.readBigUInt64BE(4)) !== r.timestamp)
      return false;
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
 * the events other checks need (`keep(row)`), with their payload parsed. Stops at the first bad event, whose seq and problem it returns.
 */
async function readEvents(file, wantRoots, keep, tailAfter = Infinity, coveredUpTo = 0) {
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
  const lines = readline.createInterface({
    input: fs.createReadStream(file, { encoding: "utf8", highWaterMark: 1 << 20 }),
    crlfDelay: Infinity,
  });
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
      failure =
        typeof row.seq === "number" && row.seq > expected
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
      failure = {
        seq: expected,
        problem: `seq ${expected}: chain hash does not follow from seq ${expected - 1} (row inserted, removed or rewritten?)`,
      };
      break;
    }
    prevChain = chain;
    tree.push(Buffer.from(leaf, "hex"));
    if (wantRoots.has(expected)) roots.set(expected, tree.rootHex());
    if (keep(row))
      kept.push({
        seq: row.seq,
        at: row.at,
        action: row.action,
        entityType: row.entityType,
        entityId: row.entityId,
        actorId: row.actorId ?? null,
        payload: JSON.parse(row.payload),
      });
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
  if (
    tc?.format !== "runledger-audit-checkpoint/1" ||
    !h ||
    !Number.isSafeInteger(h.treeSize) ||
    h.treeSize < 0 ||
    !isHex64(h.rootHash) ||
    typeof h.at !== "string" ||
    typeof h.keyFingerprint !== "string" ||
    typeof tc.signature !== "string"
  ) {
    throw new UsageError(
      `${file} is not a trusted checkpoint file (format runledger-audit-checkpoint/1 with treeHead {treeSize, rootHash, at, keyFingerprint} and signature)`,
    );
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
  else if (opts.trustedCheckpoint?.publicKeyPem)
    [trusted, keySource] = [
      parsePublicKey(opts.trustedCheckpoint.publicKeyPem, "the trusted checkpoint's publicKeyPem"),
      "trusted checkpoint",
    ];
  else {
    const pem = fs.existsSync(path.join(dir, "public-key.pem")) ? fs.readFileSync(path.join(dir, "public-key.pem"), "utf8") : null;
    if (!pem) throw new UsageError("the bundle has no public-key.pem: pass --public-key FILE");
    [trusted, keySource] = [parsePublicKey(pem, "the bundle's public-key.pem"), "bundle"];
    notes.push(
      `the public key was read from the bundle being verified; compare its fingerprint ${trusted.fingerprint} with one you trust, or pass --public-key or --trusted-checkpoint`,
    );
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
  const facts = readFacts(dir);
  const ledgerActions = new Set(["audit.checkpoint", "audit.export", "audit.keyRotate"]);
  const keep = (row) =>
    ledgerActions.has(row.action) ||
    (facts.keys !== null && facts.keys.has(`${row.entityType}:${row.entityId}`)) ||
    (facts.related?.has(row.seq) ?? false);
  const log = await readEvents(eventsFile, wantRoots, keep, witnesses.coveredSize, coveredUpTo);
  const n = log.events;
  const cut = log.failure ? log.failure.seq : Infinity; // nothing at or after the first bad event can be judged
  const rootProblem = (name, treeSize, rootHash, rewritten) =>
    treeSize >= cut
      ? null
      : treeSize > n
        ? `${name} covers ${treeSize} events but the log has ${n} (truncated?)`
        : log.roots.get(treeSize) !== rootHash
          ? `${name} (tree size ${treeSize}) root does not match the events (${rewritten})`
          : null;

  // Keys: the chain of keys from the trusted one, through the log's verified rotation events.
  const keys = buildKeyChain(
    trusted,
    log.kept.filter((e) => e.action === "audit.keyRotate"),
    cpList,
  );
  chainProblems.push(...keys.problems);
  notes.push(...keys.notes);

  // Checkpoints: key and signature, root, and the matching "audit.checkpoint" event both ways.
  const recorded = new Map(log.kept.filter((e) => e.action === "audit.checkpoint").map((e) => [e.payload?.checkpointId, e]));
  const signed = [];
  for (const cp of cpList) {
    const problem =
      keys.headProblem(`checkpoint #${cp.id}`, cp, cp.signature) ??
      rootProblem(`checkpoint #${cp.id}`, cp.treeSize, cp.rootHash, "rewritten history?");
    if (problem) chainProblems.push(problem);
    else if (cp.treeSize < cut && recorded.has(cp.id)) signed.push(cp);
  }
  for (const e of recorded.values()) {
    const id = e.payload?.checkpointId;
    const cp = cpList.find((c) => c.id === id);
    if (typeof id !== "number") chainProblems.push(`seq ${e.seq}: checkpoint event does not name its checkpoint`);
    else if (!cp) chainProblems.push(`seq ${e.seq} records checkpoint #${id}, but checkpoints.json has no such checkpoint (deleted?)`);
    else if (
      cp.treeSize !== e.payload.treeSize ||
      cp.rootHash !== e.payload.rootHash ||
      cp.signature !== e.payload.signature ||
      cp.at !== e.payload.at
    )
      chainProblems.push(`checkpoint #${id} differs from the copy recorded at seq ${e.seq} (altered checkpoint?)`);
  }
  if (!log.failure)
    for (const cp of cpList)
      if (!recorded.has(cp.id))
        chainProblems.push(`checkpoint #${cp.id} is not recorded by any audit.checkpoint event (inserted checkpoint?)`);
  const lastSigned = signed.reduce((m, c) => Math.max(m, c.treeSize), 0);
  const latest = signed.at(-1) ?? null;
  const unsignedTail = n - lastSigned;
  // Coverage (as server/audit/verify.ts): every writer signs within the checkpoint interval, so events covered by no
  // checkpoint yet more than the interval (+ grace) older than the newest event mean checkpoints were deleted.
  const gapMs = log.newest && log.oldestUncovered ? Date.parse(log.newest[0]) - Date.parse(log.oldestUncovered[0]) : 0;
  if (!log.failure && n > 0 && cpList.length === 0)
    chainProblems.push(
      `no signed checkpoint covers the ${n} events (an exported bundle always carries one): nothing binds them to the server key (checkpoints deleted?)`,
    );
  else if (!log.failure && gapMs > COVERAGE_LIMIT_MINUTES * 60_000) {
    const [at, seq] = log.oldestUncovered;
    chainProblems.push(
      `events from seq ${seq} (${at}) on are covered by no checkpoint, yet ${Math.round(gapMs / 60_000)} minutes older than the newest event (seq ${log.newest[1]}, ${log.newest[0]}); the app signs a checkpoint at least every ${COVERAGE_LIMIT_MINUTES - 2} minutes (checkpoints deleted?)`,
    );
  } else if (unsignedTail > 0 && signed.length > 0)
    notes.push(
      `${countOf(unsignedTail, "event")} after the last checkpoint ${unsignedTail === 1 ? "is" : "are"} chained but not yet covered by a signature`,
    );
  if (log.failure) chainProblems.push(log.failure.problem);

  // Anchors: the trusted checkpoint the auditor kept, and witness cosignatures.
  if (tc) {
    const h = tc.treeHead;
    const problem =
      keys.headProblem("the trusted checkpoint", h, tc.signature) ??
      (h.treeSize >= cut ? `the trusted checkpoint (tree size ${h.treeSize}) cannot be checked: the log is broken at seq ${cut}` : null) ??
      (h.treeSize > n ? `log has ${n} events but the trusted checkpoint covers ${h.treeSize} (truncated?)` : null) ??
      rootProblem("the trusted checkpoint", h.treeSize, h.rootHash, "history was rewritten after it was taken: split view?");
    if (problem) anchorProblems.push(problem);
    else anchorBy.push({ kind: "trusted checkpoint", name: "the trusted checkpoint", treeSize: h.treeSize });
  }
  for (const a of witnesses.anchors) {
    const problem =
      a.treeSize >= cut ? null : rootProblem(a.name, a.treeSize, a.rootHash, "split view: the witness cosigned a different history");
    if (problem) anchorProblems.push(problem);
    else if (a.treeSize < cut) anchorBy.push({ kind: "witness", name: a.name, treeSize: a.treeSize });
  }
  if (witnesses.keysGiven && !log.failure) {
    const lag =
      log.tail.count > 0 && log.lastAt && Date.parse(log.lastAt) - Date.parse(log.tail.oldestAt) > WITNESS_MAX_LAG_MINUTES * 60_000;
    if (lag)
      anchorProblems.push(
        `witness lag: ${countOf(log.tail.count, "event")} from seq ${log.tail.firstSeq} on are not covered by any witness cosignature (largest cosigned tree size ${witnesses.coveredSize}), and the oldest of them (${log.tail.oldestAt}) is ${Math.round((Date.parse(log.lastAt) - Date.parse(log.tail.oldestAt)) / 60_000)} minutes older than the newest event (${log.lastAt}); at most ${WITNESS_MAX_LAG_MINUTES} minutes are allowed`,
      );
  }

  // Content: report.json and lineage.prov.json against the "audit.export" event, files against manifest.json.
  const exportEvent = checkReportContent(dir, log, content);
  checkFacts(dir, facts, log, exportEvent, content);
  checkProvLineage(dir, facts, content);

  const chainOk = chainProblems.length === 0;
  const anchorTreeSize = anchorBy.reduce((m, a) => Math.max(m, a.treeSize), 0);
  const anchored = chainOk && anchorProblems.length === 0 && anchorBy.length > 0;
  const problems = [...chainProblems, ...anchorProblems, ...content.problems.map((p) => p.message)];
  if (!anchored && anchorProblems.length === 0) notes.push(NOT_ANCHORED);
  if (opts.requireAnchor && !anchored && anchorProblems.length === 0)
    problems.push("--require-anchor: the log is not anchored (pass --trusted-checkpoint or --witness-key)");
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
  const origins = opts.origin
    ? [opts.origin]
    : [
        ...(first
          ? [
              `runledger/${String(first.keyFingerprint)
                .replace(/^SHA256:/, "")
                .slice(0, 16)}`,
            ]
          : []),
        ...(typeof read.value.origin === "string" ? [read.value.origin] : []),
      ];
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
      if (!out.anchors.some((a) => a.name === `witness ${r.witnessName}` && a.treeSize === r.treeSize && a.rootHash === r.rootHash))
        out.anchors.push({ name: `witness ${r.witnessName}`, treeSize: r.treeSize, rootHash: r.rootHash });
      out.coveredSize = Math.max(out.coveredSize, r.treeSize);
    },
    (r) =>
      anchorProblems.push(
        `cosignature #${r.id} by witness ${r.witnessName} (tree size ${r.treeSize}) does not verify under the witness key given (forged or altered cosignature)`,
      ),
  );
  for (const k of given)
    if (!out.anchors.some((a) => a.name === `witness ${k.name}`))
      notes.push(
        `no valid cosignature by witness ${k.name} is in the bundle${origins.length ? ` for log origin ${origins.join(" or ")} (pass --origin if RUNLEDGER_LOG_ORIGIN was set)` : ""}`,
      );
  if (given.length === 0) {
    const shipped = listWitnessKeysIn(path.join(dir, "witness-keys"));
    let valid = 0;
    check(
      shipped,
      () => valid++,
      () => {},
    );
    if (valid > 0)
      notes.push(
        `${countOf(valid, "cosignature")} in the bundle ${valid === 1 ? "verifies" : "verify"} under the witness keys shipped with it (witness-keys/); they anchor nothing until you pass a witness key you obtained yourself with --witness-key`,
      );
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
  if (report.error) {
    contentProblem(content, "bundle", "report.json", "file", null, null, null, report.error);
    return null;
  }
  const exportSeq = report.value?.integrity?.exportEventSeq;
  const event = log.kept.find((e) => e.action === "audit.export" && e.seq === exportSeq);
  if (!event) {
    const why = exportSeq > log.events ? "is beyond the verified log" : "is not an audit.export event";
    contentProblem(
      content,
      "bundle",
      "report.json",
      "integrity.exportEventSeq",
      null,
      String(exportSeq),
      null,
      `report.json names export event #${exportSeq}, which ${why}`,
    );
    return null;
  }
  const facts = sha256Hex(canonicalJson(report.value.facts));
  content.checked++;
  if (facts !== event.payload.factsSha256)
    contentProblem(
      content,
      "report",
      "report.json",
      "factsSha256",
      event.payload.factsSha256,
      facts,
      event.seq,
      `report.json facts hash ${facts.slice(0, 12)}… but export event #${event.seq} recorded ${String(event.payload.factsSha256).slice(0, 12)}… (report edited?)`,
    );
  const prov = readJson(path.join(dir, "lineage.prov.json"), "lineage.prov.json");
  content.checked++;
  if (prov.error) contentProblem(content, "bundle", "lineage.prov.json", "file", event.payload.provSha256, null, event.seq, prov.error);
  else {
    const provSha = sha256Hex(canonicalJson(prov.value));
    if (provSha !== event.payload.provSha256)
      contentProblem(
        content,
        "report",
        "lineage.prov.json",
        "provSha256",
        event.payload.provSha256,
        provSha,
        event.seq,
        `lineage.prov.json hashes to ${provSha.slice(0, 12)}… but export event #${event.seq} recorded ${String(event.payload.provSha256).slice(0, 12)}… (lineage edited?)`,
      );
  }
  const manifest = readJson(path.join(dir, "manifest.json"), "manifest.json");
  if (manifest.error) {
    contentProblem(content, "bundle", "manifest.json", "file", null, null, null, manifest.error);
    return event;
  }
  for (const [file, m] of Object.entries(manifest.value.files ?? {})) {
    const abs = path.join(dir, file);
    if (file.split(/[\\/]/).includes("..")) continue;
    content.checked++;
    const found = fs.existsSync(abs) ? sha256Hex(fs.readFileSync(abs)) : null;
    if (found !== m.sha256)
      contentProblem(
        content,
        "file",
        file,
        "sha256",
        m.sha256,
        found,
        null,
        found === null ? `${file} is listed in manifest.json but missing` : `${file} does not match its manifest.json sha256 (replaced?)`,
      );
  }
  content.notCovered.push(
    "report.html and charts/*.svg are checked against manifest.json only, which is not signed; `npm run cli -- export --verify` re-renders them from report.json",
  );
  return event;
}

// ------------------------------------------------------------------------------------------------------------
// Content facts (facts.json, format server/audit/content/facts-file.ts): the rows the report prints, as the tables
// held them at export. Each is compared with the events that created and changed it (found in events.jsonl by
// entity, before the export event): every hash the ledger recorded is recomputed from the row (config, decision
// record, metric points, evaluation result, document, dataset files' schema/recipe/report/manifest, promotion record),
// the other recorded fields compared by value, the version's weights file re-hashed from its bytes. A payload field
// an older event lacks is "not covered", never a pass or a failure. Mirrors server/audit/content/check-*.ts.

const FACTS_FORMAT = "runledger-content-facts/1";
const textSha = (text) => (typeof text === "string" ? sha256Hex(Buffer.from(text, "utf8")) : null);
const parsed = (text) => {
  try {
    return typeof text === "string" ? JSON.parse(text) : null;
  } catch {
    return undefined;
  }
};
const canonOf = (v) => {
  try {
    return v === undefined ? "null" : canonicalJson(v);
  } catch {
    return "(not JSON)";
  }
};
const shown = (t) => (t !== null && t.length > 120 ? `${t.slice(0, 80)}… (${t.length} characters)` : t);

/** facts.json read before the pass, so the pass keeps the events about its records. */
function readFacts(dir) {
  const file = path.join(dir, "facts.json");
  if (!fs.existsSync(file)) return { value: null, keys: null, text: null };
  const text = fs.readFileSync(file, "utf8");
  let value;
  try {
    value = JSON.parse(text);
  } catch (err) {
    return { value: null, keys: null, text, error: `facts.json is not valid JSON: ${err.message}` };
  }
  if (value?.format !== FACTS_FORMAT || typeof value.records !== "object" || value.records === null)
    return { value: null, keys: null, text, error: `facts.json is not a ${FACTS_FORMAT} file` };
  const keys = new Set();
  for (const [type, list] of Object.entries(value.records)) {
    for (const { row } of Array.isArray(list) ? list : []) {
      if (!row || typeof row.id !== "number") continue;
      keys.add(type === "aliasMove" ? `model:${row.modelId}` : `${type}:${row.id}`);
    }
  }
  // Events facts.json names by seq (e.g. the intervention event behind a decision made while its run trained).
  const related = new Set(Array.isArray(value.relatedSeqs) ? value.relatedSeqs : []);
  return { value, keys, related, text };
}

class FactChecker {
  constructor(content) {
    this.content = content;
    this.gaps = new Map();
    this.coveredBy = new Map();
  }
  problem(entityType, id, field, recorded, found, seq, message) {
    contentProblem(this.content, entityType, id, field, shown(recorded), shown(found), seq, message);
  }
  compare(entityType, id, field, recorded, found, seq) {
    this.content.checked++;
    const r = canonOf(recorded);
    const f = canonOf(found);
    if (r === f) return true;
    this.problem(
      entityType,
      id,
      field,
      r,
      f,
      seq,
      `${entityType} ${id}: ${field} ${found === null || found === undefined ? "is missing" : "does not match the ledger"} (event #${seq} recorded ${shown(r)}, found ${shown(f)})`,
    );
    return false;
  }
  /** [payload key, value the row calls for, words for the fact]; a key the event lacks is a gap. */
  fields(entityType, id, ev, list) {
    for (const [key, expected, fact] of list) {
      if (ev.payload && typeof ev.payload === "object" && key in ev.payload)
        this.compare(entityType, id, fact, ev.payload[key], expected, ev.seq);
      else this.gap(ev.action, fact, ev.seq);
    }
  }
  actor(entityType, id, ev, userId, field = "author") {
    if (ev.actorId !== null) this.compare(entityType, id, field, ev.actorId, userId, ev.seq);
  }
  gap(action, fact, seq) {
    const k = `${action}\u0000${fact}`;
    const g = this.gaps.get(k) ?? { action, fact, count: 0, first: seq };
    g.count++;
    this.gaps.set(k, g);
  }
  finish() {
    for (const g of this.gaps.values())
      this.content.notCovered.push(
        `${g.fact}: ${countOf(g.count, `${g.action} event`)} (from seq ${g.first}) ${g.count === 1 ? "predates" : "predate"} the field, so this is not covered by the ledger`,
      );
  }
}

// ---------------------------------------------------------------------------------------------------------------
// lineage.prov.json against facts.json. The export event binds the PROV document's bytes, but a server that lies
// at export time could still describe a lineage other than the recorded one (another checkpoint hash, a run left
// out, a decision attributed to someone else). facts.json's records are checked against the ledger (checkFacts),
// so the PROV document is checked against them: every node it names ("rl:<kind>-<id>") is a record of the bundle
// with the same values, every relation holds between those records, and the version's ancestry (its checkpoint,
// the runs it descends from, their configurations, decisions, split and data, and who authored them) is all there.
// Labels, the run's configuration summary and the trainer agent's name are descriptive and not compared.

const provValue = (v) => (v !== null && typeof v === "object" && "$" in v ? v.$ : v);
const sameJsonText = (a, b) => {
  try {
    return canonicalJson(JSON.parse(a)) === canonicalJson(JSON.parse(b));
  } catch {
    return false;
  }
};
const jsonField = (field) => ({ field, same: (prov, row) => (row[field] === null ? prov === "null" : sameJsonText(prov, row[field])) });
const evaluationMetrics = {
  field: "metricsJson",
  same: (prov, row) => sameJsonText(prov, row.metricsJson),
};

/** PROV node kind → the facts.json record type it names and which PROV attribute equals which row field. */
const PROV_NODES = {
  dataset: [
    "dataset",
    {
      "runledger:sha256": "sha256",
      "runledger:rows": "rowCount",
      "runledger:source": "source",
      "runledger:origin": "origin",
      "runledger:licence": "licence",
      "prov:generatedAtTime": "createdAt",
    },
  ],
  datasetVersion: [
    "datasetVersion",
    {
      "runledger:sha256": "sha256",
      "runledger:recipeSha256": "recipeSha256",
      "runledger:rows": "rowCount",
      "runledger:recipe": jsonField("recipeJson"),
    },
  ],
  cleaning: ["datasetVersion", { "prov:startTime": "createdAt", "prov:endTime": "createdAt" }],
  split: ["split", { "runledger:sha256": "sha256" }],
  splitting: ["split", { "prov:startTime": "createdAt", "prov:endTime": "createdAt" }],
  config: ["run", { "runledger:sha256": "configSha256", "runledger:seed": "seed", "prov:generatedAtTime": "createdAt" }],
  run: ["run", { "runledger:origin": "origin", "runledger:status": "status", "prov:startTime": "startedAt", "prov:endTime": "finishedAt" }],
  decision: [
    "decision",
    {
      "runledger:kind": "kind",
      "runledger:path": "path",
      "runledger:rationale": "rationale",
      "runledger:oldValue": jsonField("oldValueJson"),
      "runledger:newValue": jsonField("newValueJson"),
      "runledger:run": { field: "runId", same: (prov, row) => prov === `rl:run-${row.runId}` },
      "prov:generatedAtTime": "createdAt",
    },
  ],
  checkpoint: [
    "checkpoint",
    {
      "runledger:sha256": "sha256",
      "runledger:epoch": "epoch",
      "runledger:bytes": "bytes",
      "runledger:isBest": "isBest",
      "prov:generatedAtTime": "createdAt",
    },
  ],
  evaluationResult: [
    "evaluation",
    { "runledger:partition": "partition", "runledger:dataSha256": "dataSha256", "runledger:metrics": evaluationMetrics },
  ],
  evaluation: ["evaluation", { "prov:startTime": "createdAt", "prov:endTime": "createdAt" }],
  modelVersion: [
    "modelVersion",
    { "runledger:version": "version", "runledger:weightsSha256": "weightsSha256", "prov:generatedAtTime": "createdAt" },
  ],
  registration: ["modelVersion", { "prov:startTime": "createdAt", "prov:endTime": "createdAt" }],
  promotionRequest: [
    "promotionRequest",
    {
      "runledger:alias": "alias",
      "runledger:status": "status",
      "runledger:rationale": "rationale",
      "runledger:recordSha256": "recordSha256",
      "prov:generatedAtTime": "createdAt",
    },
  ],
  signature: [
    "signature",
    {
      "runledger:meaning": "meaning",
      "runledger:printedName": "printedName",
      "runledger:recordSha256": "recordSha256",
      "runledger:comment": "comment",
      "prov:generatedAtTime": "createdAt",
    },
  ],
  aliasMove: ["aliasMove", { "runledger:alias": "alias", "prov:startTime": "createdAt", "prov:endTime": "createdAt" }],
  user: ["user", { "prov:label": "name", "runledger:role": "role" }],
};

/** The trainer agent a run was associated with: its backend and, when recorded, Runledger's version and commit. */
function trainerMatchesRun(agent, run) {
  let env = {};
  try {
    env = run.environmentJson ? JSON.parse(run.environmentJson) : {};
  } catch {
    return false;
  }
  return (
    provValue(agent["runledger:backend"]) === run.backend &&
    (provValue(agent["runledger:appVersion"]) ?? null) === (env.appVersion ?? null) &&
    (provValue(agent["runledger:appCommit"]) ?? null) === (env.appCommit ?? null)
  );
}

/**
 * Relation kind, the two nodes' kinds → whether the records agree. `a` and `b` are the rows (for "trainer", the
 * PROV agent itself). A relation of any other shape is a problem: this verifier ships with the exporter that wrote it.
 */
const PROV_RELATIONS = {
  "used cleaning dataset": (v, d) => v.datasetId === d.id,
  "used splitting datasetVersion": (s, v) => s.datasetVersionId === v.id,
  "used run config": (r, c) => r.id === c.id,
  "used run split": (r, s) => r.splitId === s.id,
  "used run checkpoint": (r, c) => r.parentCheckpointId === c.id,
  "used evaluation checkpoint": (e, c) => e.checkpointId === c.id,
  "used evaluation split": (e, s) => e.splitId === s.id,
  "used registration checkpoint": (m, c) => m.checkpointId === c.id,
  "used aliasMove modelVersion": (a, m) => a.modelVersionId === m.id,
  "used aliasMove promotionRequest": (a, p) => a.promotionRequestId === p.id,
  "used aliasMove signature": (a, s) =>
    s.recordType === "promotion_request" && s.recordId === a.promotionRequestId && s.meaning === "approval",
  "wasGeneratedBy datasetVersion cleaning": (v, w) => v.id === w.id,
  "wasGeneratedBy split splitting": (s, w) => s.id === w.id,
  "wasGeneratedBy checkpoint run": (c, r) => c.runId === r.id,
  "wasGeneratedBy evaluationResult evaluation": (e, w) => e.id === w.id,
  "wasGeneratedBy modelVersion registration": (m, w) => m.id === w.id,
  "wasDerivedFrom datasetVersion dataset": (v, d) => v.datasetId === d.id,
  "wasDerivedFrom split datasetVersion": (s, v) => s.datasetVersionId === v.id,
  "wasDerivedFrom config config": (r, p) => r.parentRunId === p.id,
  "wasDerivedFrom config decision": (r, d) => d.runId === r.id,
  "wasDerivedFrom decision decision": (d, c) => d.correctsDecisionId === c.id,
  "wasDerivedFrom evaluationResult checkpoint": (e, c) => e.checkpointId === c.id,
  "wasDerivedFrom modelVersion checkpoint": (m, c) => m.checkpointId === c.id,
  "wasDerivedFrom promotionRequest modelVersion": (p, m) => p.modelVersionId === m.id,
  "wasDerivedFrom promotionRequest evaluationResult": (p, e) => p.evaluationId === e.id,
  "wasDerivedFrom signature promotionRequest": (s, p) => s.recordType === "promotion_request" && s.recordId === p.id,
  "wasAssociatedWith run user": (r, u) => r.createdBy === u.id,
  "wasAssociatedWith run trainer": (r, agent) => trainerMatchesRun(agent, r),
  "wasAssociatedWith registration user": (m, u) => m.createdBy === u.id,
  "wasAssociatedWith aliasMove user": (a, u) => a.movedBy === u.id,
  "wasAttributedTo config user": (r, u) => r.createdBy === u.id,
  "wasAttributedTo decision user": (d, u) => d.authorId === u.id,
  "wasAttributedTo modelVersion user": (m, u) => m.createdBy === u.id,
  "wasAttributedTo promotionRequest user": (p, u) => p.requestedBy === u.id,
  "wasAttributedTo signature user": (s, u) => s.userId === u.id,
};
const RELATION_ENDS = {
  used: ["prov:activity", "prov:entity"],
  wasGeneratedBy: ["prov:entity", "prov:activity"],
  wasDerivedFrom: ["prov:generatedEntity", "prov:usedEntity"],
  wasAssociatedWith: ["prov:activity", "prov:agent"],
  wasAttributedTo: ["prov:entity", "prov:agent"],
};

/**
 * Problems of a PROV document against facts.json's records (both parsed), as { entityId, field, recorded, found,
 * message } with `recorded` the value of facts.json (checked against the ledger) and `found` the PROV document's.
 * Pure; exported for `audit verify --bundle` (server/audit/content/verify-bundle-content.ts), which runs the same check.
 */
export function provLineageProblems(prov, facts) {
  const problems = [];
  let checked = 0;
  const problem = (entityId, field, recorded, found, message) => problems.push({ entityId, field, recorded, found, message });
  const rows = new Map();
  for (const [type, list] of Object.entries(facts?.records ?? {}))
    for (const r of Array.isArray(list) ? list : []) if (r?.row && typeof r.row.id === "number") rows.set(`${type}:${r.row.id}`, r.row);
  const records = new Map(); // PROV id → { kind, attrs, row }
  const nodeOf = (id) => {
    const m = /^rl:([A-Za-z]+)-(\d+)$/.exec(id);
    return m ? { kind: m[1], id: Number(m[2]) } : null;
  };
  for (const section of ["entity", "activity", "agent"])
    for (const [id, attrs] of Object.entries(prov?.[section] ?? {})) {
      if (section === "agent" && id.startsWith("rl:trainer-")) {
        records.set(id, { kind: "trainer", attrs, row: attrs });
        continue;
      }
      checked++;
      const node = nodeOf(id);
      const rule = node && Object.hasOwn(PROV_NODES, node.kind) ? PROV_NODES[node.kind] : null;
      if (!rule) {
        problem(id, "id", null, id, `lineage.prov.json names ${id}, which is no kind of record this bundle describes`);
        continue;
      }
      const row = rows.get(`${rule[0]}:${node.id}`);
      if (!row) {
        problem(id, "record", null, id, `lineage.prov.json names ${id}, but the bundle holds no ${rule[0]} ${node.id}`);
        continue;
      }
      records.set(id, { kind: node.kind, attrs, row });
      for (const [attr, spec] of Object.entries(rule[1])) {
        if (!(attr in attrs)) continue; // not stated (e.g. no end time for an unfinished run): claims nothing
        const field = typeof spec === "string" ? spec : spec.field;
        const stated = provValue(attrs[attr]);
        const same = typeof spec === "string" ? stated === row[spec] : spec.same(stated, row);
        if (!same)
          problem(
            id,
            attr,
            row[field] ?? null,
            stated ?? null,
            `lineage.prov.json gives ${id} ${attr} ${JSON.stringify(stated)}, but the recorded ${rule[0]} ${node.id} has ${field} ${JSON.stringify(row[field] ?? null)}`,
          );
      }
    }
  const edges = new Set();
  for (const [kind, [fromKey, toKey]] of Object.entries(RELATION_ENDS))
    for (const rel of Object.values(prov?.[kind] ?? {})) {
      checked++;
      const from = records.get(rel?.[fromKey]);
      const to = records.get(rel?.[toKey]);
      const what = `${kind} ${rel?.[fromKey]} → ${rel?.[toKey]}`;
      if (!from || !to) {
        problem(String(rel?.[fromKey]), kind, null, what, `lineage.prov.json relation ${what} names a node the document does not describe`);
        continue;
      }
      const check = PROV_RELATIONS[`${kind} ${from.kind} ${to.kind}`];
      if (!check) problem(rel[fromKey], kind, null, what, `lineage.prov.json has a relation ${what} of a shape Runledger does not export`);
      else if (!check(from.row, to.row))
        problem(rel[fromKey], kind, null, what, `lineage.prov.json states ${what}, which the recorded records contradict`);
      else edges.add(`${kind} ${rel[fromKey]} ${rel[toKey]}`);
    }
  // The version's ancestry must all be there, with who authored it: leaving a run or a decision out would hide its
  // author from whoever reads the lineage (the people a four-eyes approval must exclude).
  const version = rows.get(`modelVersion:${facts?.modelVersionId}`);
  const need = (id, what) => {
    checked++;
    if (!records.has(id)) problem(id, "missing", id, null, `lineage.prov.json leaves out ${id} (${what})`);
  };
  const needEdge = (kind, from, to, what) => {
    checked++;
    if (!edges.has(`${kind} ${from} ${to}`))
      problem(from, kind, `${kind} ${from} → ${to}`, null, `lineage.prov.json does not state ${kind} ${from} → ${to} (${what})`);
  };
  if (!version) return { checked, problems };
  const users = (id) => rows.has(`user:${id}`);
  const decisions = (Array.isArray(facts.records?.decision) ? facts.records.decision : [])
    .map((r) => r?.row)
    .filter((r) => r && typeof r.id === "number");
  need(`rl:modelVersion-${version.id}`, "the version this bundle reports on");
  need(`rl:checkpoint-${version.checkpointId}`, "the version's checkpoint");
  needEdge("wasDerivedFrom", `rl:modelVersion-${version.id}`, `rl:checkpoint-${version.checkpointId}`, "the version's checkpoint");
  if (users(version.createdBy))
    needEdge("wasAttributedTo", `rl:modelVersion-${version.id}`, `rl:user-${version.createdBy}`, "who registered it");
  const seen = new Set();
  for (let runId = version.runId; rows.has(`run:${runId}`) && !seen.has(runId);) {
    seen.add(runId);
    const run = rows.get(`run:${runId}`);
    need(`rl:run-${run.id}`, "a run the version descends from");
    need(`rl:config-${run.id}`, "the configuration of a run the version descends from");
    if (users(run.createdBy)) needEdge("wasAttributedTo", `rl:config-${run.id}`, `rl:user-${run.createdBy}`, "who configured the run");
    if (run.splitId !== null && rows.has(`split:${run.splitId}`))
      needEdge("used", `rl:run-${run.id}`, `rl:split-${run.splitId}`, "the data split it trained on");
    for (const d of decisions)
      if (d.runId === run.id) {
        need(`rl:decision-${d.id}`, `a decision on run ${run.id}`);
        if (users(d.authorId)) needEdge("wasAttributedTo", `rl:decision-${d.id}`, `rl:user-${d.authorId}`, "who decided it");
      }
    const parent = run.parentRunId ?? (run.parentCheckpointId !== null ? rows.get(`checkpoint:${run.parentCheckpointId}`)?.runId : null);
    if (run.parentRunId !== null && rows.has(`run:${run.parentRunId}`))
      needEdge("wasDerivedFrom", `rl:config-${run.id}`, `rl:config-${run.parentRunId}`, "the run it was forked or fine-tuned from");
    if (parent === null || parent === undefined) break;
    runId = parent;
  }
  return { checked, problems };
}

/** lineage.prov.json against facts.json (provLineageProblems); what facts.json or the file lack is said elsewhere. */
function checkProvLineage(dir, facts, content) {
  if (facts.error || !facts.value) return;
  const prov = readJson(path.join(dir, "lineage.prov.json"), "lineage.prov.json");
  if (prov.error) return;
  const r = provLineageProblems(prov.value, facts.value);
  content.checked += r.checked;
  for (const p of r.problems) contentProblem(content, "lineage", p.entityId, p.field, p.recorded, p.found, null, p.message);
}

/** The record checks of facts.json against the ledger's events (those before the export event that wrote it). */
function checkFacts(dir, facts, log, exportEvent, content) {
  if (facts.error) return contentProblem(content, "bundle", "facts.json", "file", null, null, null, facts.error);
  if (!facts.value) {
    content.notCovered.push(
      "this bundle has no facts.json (exported before content facts existed): the table rows behind the report were not checked against the ledger",
    );
    return;
  }
  const f = facts.value;
  const c = new FactChecker(content);
  if (exportEvent && "contentFactsSha256" in exportEvent.payload)
    c.compare(
      "bundle",
      "facts.json",
      "facts.json sha256 (recorded by the export event)",
      exportEvent.payload.contentFactsSha256,
      textSha(facts.text),
      exportEvent.seq,
    );
  const before = exportEvent ? exportEvent.seq : Infinity;
  const events = log.kept.filter((e) => e.seq < before);
  const byAction = (action) => events.filter((e) => e.action === action);
  const have = new Set(log.kept.map((e) => e.seq));
  for (const seq of Array.isArray(f.relatedSeqs) ? f.relatedSeqs : [])
    if (!have.has(seq))
      c.problem(
        "bundle",
        String(seq),
        "event",
        `seq ${seq}`,
        null,
        seq,
        `facts.json relies on event #${seq}, which is not in the bundle's verified ledger`,
      );

  const rows = (type) =>
    new Map(
      (Array.isArray(f.records[type]) ? f.records[type] : [])
        .filter((r) => r && r.row && typeof r.row.id === "number")
        .map((r) => [r.row.id, r]),
    );
  const t = Object.fromEntries(
    [
      "user",
      "dataset",
      "datasetVersion",
      "split",
      "run",
      "decision",
      "checkpoint",
      "evaluation",
      "document",
      "model",
      "modelVersion",
      "aliasMove",
      "promotionRequest",
      "signature",
    ].map((k) => [k, rows(k)]),
  );
  const row = (type, id) => t[type].get(id)?.row;

  /** The creating event of each record (by entity id, or idOf); a record without one is a failure. */
  const created = (type, action, check, idOf = (e) => Number(e.entityId)) => {
    const found = new Map();
    for (const ev of byAction(action)) {
      const id = idOf(ev);
      if (t[type].has(id) && !found.has(id)) found.set(id, ev);
    }
    for (const [id, rec] of t[type]) {
      const ev = found.get(id);
      if (!ev) {
        c.problem(
          type,
          id,
          "ledger event",
          null,
          "row exists",
          null,
          `${type} ${id} has no ${action} event in the ledger (row written outside the app?)`,
        );
        continue;
      }
      content.checked++;
      if (rec.seq !== null && rec.seq !== ev.seq) c.compare(type, id, "covering event", rec.seq, ev.seq, ev.seq);
      if (!ev.payload || typeof ev.payload !== "object")
        c.problem(type, id, "payload", null, null, ev.seq, `event #${ev.seq} (${action}) has a payload that is not a JSON object`);
      else check(rec.row, ev);
    }
    return found;
  };
  const PARTS = ["train", "validation", "test"];

  created("user", "user.create", (u, ev) =>
    c.fields("user", u.id, ev, [
      ["email", u.email, "email"],
      ["name", u.name, "name"],
      ["role", u.role, "role"],
    ]),
  );
  created("dataset", "dataset.create", (d, ev) => {
    const schema = parsed(d.schemaJson);
    c.fields("dataset", d.id, ev, [
      ["name", d.name, "dataset name"],
      ["source", d.source, "source"],
      ["builtinName", d.builtinName, "built-in dataset name"],
      ["sha256", d.sha256, "raw bytes sha256"],
      ["bytes", d.byteSize, "size in bytes"],
      ["rows", d.rowCount, "row count"],
      ["columns", schema?.columns?.length ?? null, "number of columns"],
      ["labelColumn", schema?.labelColumn ?? null, "label column"],
      ["licence", d.licence, "licence"],
      ["origin", d.origin, "dataset origin"],
      ["schemaSha256", textSha(d.schemaJson), "column schema"],
      ["createdAt", d.createdAt, "dataset creation time"],
    ]);
    c.actor("dataset", d.id, ev, d.createdBy);
  });
  created("datasetVersion", "datasetVersion.create", (v, ev) => {
    const report = parsed(v.reportJson);
    c.compare(
      "datasetVersion",
      v.id,
      "cleaning recipe (sha256 of the stored recipe)",
      ev.payload.recipeSha256,
      textSha(v.recipeJson),
      ev.seq,
    );
    c.fields("datasetVersion", v.id, ev, [
      ["datasetId", v.datasetId, "dataset"],
      ["recipeSha256", v.recipeSha256, "recipe_sha256 column"],
      ["sha256", v.sha256, "cleaned rows sha256"],
      ["rowsIn", report?.rowsIn ?? null, "rows in (cleaning report)"],
      ["rowsOut", report?.rowsOut ?? null, "rows out (cleaning report)"],
      ["rowCount", v.rowCount, "row count"],
      ["reportSha256", textSha(v.reportJson), "cleaning report steps"],
      ["createdAt", v.createdAt, "version creation time"],
    ]);
  });
  created("split", "split.create", (sp, ev) => {
    const parts = parsed(sp.manifestJson)?.partitions;
    c.compare("split", sp.id, "manifest (sha256 of the stored manifest)", ev.payload.sha256, textSha(sp.manifestJson), ev.seq);
    c.fields("split", sp.id, ev, [
      ["datasetVersionId", sp.datasetVersionId, "dataset version"],
      ["sha256", sp.sha256, "sha256 column"],
      ["counts", Object.fromEntries(PARTS.map((k) => [k, parts?.[k]?.count ?? null])), "partition counts"],
      ["indicesSha256", Object.fromEntries(PARTS.map((k) => [k, parts?.[k]?.indicesSha256 ?? null])), "partition row digests"],
      ["specSha256", textSha(sp.specJson), "split specification"],
      ["createdAt", sp.createdAt, "split creation time"],
    ]);
  });

  // Runs: creation (config hash recomputed), start, end, status, metric points; decisions ride on run.create.
  // A run renamed after launch (run.annotate, field "name"): run.create holds the first rename's `from`, the row the
  // last rename's `to` (as server/audit/content/check-runs.ts).
  const renames = new Map();
  for (const e of byAction("run.annotate")) {
    if (e.entityType !== "run" || e.payload?.field !== "name") continue;
    const r = renames.get(e.entityId);
    if (r) r.last = e;
    else renames.set(e.entityId, { firstFrom: e.payload.from, last: e });
  }
  const runCreates = created("run", "run.create", (r, ev) => {
    const renamed = renames.get(String(r.id));
    const config = parsed(r.configJson);
    let found = textSha(r.configJson);
    if (
      found !== ev.payload.configSha256 &&
      config !== undefined &&
      canonOf(config) !== "(not JSON)" &&
      sha256Hex(canonOf(config)) === ev.payload.configSha256
    )
      found = ev.payload.configSha256; // same value, other spelling
    c.compare("run", r.id, "config (sha256 of the stored config)", ev.payload.configSha256, found, ev.seq);
    c.compare("run", r.id, "config_sha256 column", ev.payload.configSha256, r.configSha256, ev.seq);
    c.fields("run", r.id, ev, [
      ["experimentId", r.experimentId, "experiment"],
      ["name", renamed ? renamed.firstFrom : r.name, "run name"],
      ["origin", r.origin, "origin"],
      ["parentRunId", r.parentRunId, "parent run"],
      ["parentCheckpointId", r.parentCheckpointId, "parent checkpoint"],
      ["createdAt", r.createdAt, "run creation time"],
    ]);
    if (renamed) c.compare("run", r.id, "run name (latest run.annotate)", renamed.last.payload.to, r.name, renamed.last.seq);
    c.actor("run", r.id, ev, r.createdBy);
    c.compare("run", r.id, "seed (from its config)", config?.training?.seed ?? null, r.seed, ev.seq);
  });
  const ends = new Map();
  for (const r of [...t.run.values()].map((x) => x.row)) {
    const mine = events.filter((e) => e.entityType === "run" && e.entityId === String(r.id));
    const start = mine.filter((e) => e.action === "run.start").at(-1);
    if (start)
      c.fields("run", r.id, start, [
        ["backend", r.backend, "backend"],
        ["backendReason", r.backendReason, "backend reason"],
        ["environment", r.environmentJson === null ? null : parsed(r.environmentJson), "training environment"],
        ["paramCount", r.paramCount, "parameter count"],
        ["memorySha256", r.memoryJson === null ? null : textSha(r.memoryJson), "memory estimate"],
        ["datasetVersionId", r.datasetVersionId, "dataset version of the run"],
        ["splitId", r.splitId, "split of the run"],
        ["startedAt", r.startedAt, "start time"],
      ]);
    const end = mine.filter((e) => e.action === "run.complete" || e.action === "run.cancel" || e.action === "run.fail").at(-1);
    if (end) {
      ends.set(r.id, end);
      if (end.action === "run.fail")
        c.fields("run", r.id, end, [
          ["error", r.error === null ? null : r.error.slice(0, 2000), "error message"],
          ["errorSha256", r.error === null ? null : textSha(r.error), "full error message"],
          ["finishedAt", r.finishedAt, "end time"],
        ]);
      else
        c.fields("run", r.id, end, [
          ["weightsSha256", r.finalWeightsSha256, "final weights sha256"],
          ["finishedAt", r.finishedAt, "end time"],
        ]);
    }
    // The status the lifecycle events call for; a pause taking effect (run.interventionApplied) parks a queued or running run.
    const lifecycle = [
      ...mine.filter((e) => ["run.start", "run.interrupted", "run.complete", "run.cancel", "run.fail"].includes(e.action)),
      ...events.filter((e) => e.action === "run.interventionApplied" && e.payload?.kind === "pause" && e.payload?.runId === r.id),
    ].sort((a, b) => a.seq - b.seq);
    let status = "queued";
    let last;
    for (const e of lifecycle) {
      if (e.action === "run.interventionApplied") {
        if (status === "running" || status === "queued") [status, last] = ["paused", e];
        continue;
      }
      last = e;
      // run.interrupted: the process training it died; its resume is the next run.start.
      status =
        e.action === "run.start"
          ? "running"
          : e.action === "run.interrupted"
            ? "interrupted"
            : e.action === "run.fail"
              ? "failed"
              : String(e.payload.status);
    }
    const createdEv = runCreates.get(r.id);
    if (createdEv) c.compare("run", r.id, "status", status, r.status, (last ?? createdEv).seq);
    checkMetricPoints(c, f, r.id, end, content);
  }
  checkDecisions(c, t, byAction, runCreates);

  created("checkpoint", "checkpoint.create", (k, ev) => {
    c.fields("checkpoint", k.id, ev, [
      ["runId", k.runId, "run"],
      ["epoch", k.epoch, "epoch"],
      ["step", k.step, "step"],
      ["sha256", k.sha256, "weights sha256"],
      ["bytes", k.bytes, "weights size"],
      ["metrics", parsed(k.metricsJson), "metrics at the checkpoint"],
      ["createdAt", k.createdAt, "checkpoint creation time"],
    ]);
    const end = ends.get(k.runId);
    if (end || t.run.has(k.runId))
      c.compare(
        "checkpoint",
        k.id,
        "best flag",
        end && end.action !== "run.fail" ? end.payload.bestCheckpointId === k.id : false,
        k.isBest,
        end?.seq ?? ev.seq,
      );
  });
  created("evaluation", "evaluation.create", (e, ev) => {
    const metrics = parsed(e.metricsJson);
    const result =
      metrics && typeof metrics === "object"
        ? e.confusionJson === null
          ? metrics
          : { ...metrics, confusion: parsed(e.confusionJson) }
        : undefined;
    c.compare(
      "evaluation",
      e.id,
      "metrics (incl. confusion matrix)",
      ev.payload.metricsSha256,
      result === undefined ? "(metrics are not valid JSON)" : sha256Hex(canonOf(result)),
      ev.seq,
    );
    c.fields("evaluation", e.id, ev, [
      ["runId", e.runId, "run"],
      ["checkpointId", e.checkpointId, "checkpoint"],
      ["partition", e.partition, "partition"],
      ["dataSha256", e.dataSha256, "data digest"],
      ["splitId", e.splitId, "split"],
      ["createdAt", e.createdAt, "evaluation time"],
    ]);
    c.compare(
      "evaluation",
      e.id,
      "origin (trainer or requested)",
      "source" in ev.payload ? ev.payload.source : ev.payload.requested === true ? "requested" : "training",
      e.source,
      ev.seq,
    );
    const ck = row("checkpoint", e.checkpointId);
    if (ck && "checkpointSha256" in ev.payload)
      c.compare("evaluation", e.id, "checkpoint weights sha256", ev.payload.checkpointSha256, ck.sha256, ev.seq);
    if (ck && "epoch" in ev.payload) c.compare("evaluation", e.id, "checkpoint epoch", ev.payload.epoch, ck.epoch, ev.seq);
    const sp = e.splitId === null ? null : row("split", e.splitId);
    if (sp && "splitSha256" in ev.payload) c.compare("evaluation", e.id, "split sha256", ev.payload.splitSha256, sp.sha256, ev.seq);
    c.actor("evaluation", e.id, ev, e.createdBy, "evaluated by");
  });
  created("document", "document.update", (d, ev) => {
    const record = {
      subjectType: d.subjectType,
      subjectId: d.subjectId,
      section: d.section,
      version: d.version,
      body: d.body,
      supersedesId: d.supersedesId,
      authorId: d.authorId,
      createdAt: d.createdAt,
    };
    c.compare("document", d.id, "text and metadata (sha256 of the stored version)", ev.payload.sha256, sha256Hex(canonOf(record)), ev.seq);
    c.fields("document", d.id, ev, [
      ["subjectType", d.subjectType, "subject type"],
      ["subjectId", d.subjectId, "subject"],
      ["section", d.section, "section"],
      ["version", d.version, "version"],
      ["sha256", d.sha256, "sha256 column"],
      ["supersedesId", d.supersedesId, "superseded version"],
      ["characters", typeof d.body === "string" ? d.body.length : null, "text length"],
    ]);
    const prev = d.supersedesId === null ? null : row("document", d.supersedesId);
    if (prev) c.compare("document", d.id, "superseded version's sha256", ev.payload.supersedesSha256, prev.sha256, ev.seq);
    c.actor("document", d.id, ev, d.authorId);
  });
  checkRegistryFacts(c, f, t, row, byAction, created, dir);
  c.finish();
  for (const [runId, why] of Object.entries(f.metricsOmitted ?? {}))
    content.notCovered.push(`metric points of run ${runId} are not in this bundle (${why})`);
  content.notCovered.push(
    "dataset bytes and checkpoint files other than the version's weights are not in the bundle: their sha256 were compared with the ledger, their bytes were not re-hashed",
  );
  if (t.datasetVersion.size > 0)
    content.notCovered.push(
      "the cleaned rows of a dataset version are compared by their recorded sha256; they are not re-derived from the dataset bytes (that would re-run the cleaning)",
    );
}

/** A run's metric points (facts.metrics[runId], ordered by key, step) against the digest its end event recorded. */
function checkMetricPoints(c, f, runId, end, content) {
  if (!end) return;
  const p = end.payload;
  if (!("metricsSha256" in p) && !("metricPointsSha256" in p)) return c.gap(end.action, "metric points (training curves)", end.seq);
  const points = f.metrics?.[String(runId)];
  if (!Array.isArray(points)) {
    if (!(String(runId) in (f.metricsOmitted ?? {}))) content.notCovered.push(`metric points of run ${runId} are not in this bundle`);
    return;
  }
  const full = points.map(([key, step, value, epoch]) => ({ epoch, key, step, value }));
  if ("metricPointsSha256" in p)
    c.compare("run", runId, "metric points (epoch, key, step, value)", p.metricPointsSha256, sha256Hex(canonOf(full)), end.seq);
  else {
    c.gap(end.action, "epoch of each metric point (x axis of the curves)", end.seq);
    c.compare(
      "run",
      runId,
      "metric points (key, step, value)",
      p.metricsSha256,
      sha256Hex(canonOf(full.map(({ key, step, value }) => ({ key, step, value })))),
      end.seq,
    );
  }
  if ("metricPoints" in p) c.compare("run", runId, "number of metric points", p.metricPoints, points.length, end.seq);
  if ("finalMetrics" in p)
    c.compare("run", runId, "final metrics", p.finalMetrics, Object.fromEntries(points.map(([key, , value]) => [key, value])), end.seq);
}

/** Decision record hash: every column of the row (server/audit/content/records.ts decisionRecord). */
const decisionSha = (d) =>
  sha256Hex(
    canonOf({
      id: d.id,
      runId: d.runId,
      kind: d.kind,
      path: d.path,
      oldValueJson: d.oldValueJson,
      newValueJson: d.newValueJson,
      rationale: d.rationale,
      correctsDecisionId: d.correctsDecisionId,
      authorId: d.authorId,
      createdAt: d.createdAt,
    }),
  );

/**
 * Initial and change decisions are named in their run's run.create; notes and corrections have their own event;
 * intervention decisions are named by their intervention's run.interventionApplied.
 */
function checkDecisions(c, t, byAction, runCreates) {
  const claimed = new Set();
  for (const [runId, ev] of runCreates) {
    const ofRun = [...t.decision.values()]
      .map((x) => x.row)
      .filter((d) => d.runId === runId && (d.kind === "initial" || d.kind === "change"))
      .sort((a, b) => a.id - b.id);
    const refs = Array.isArray(ev.payload.decisions) ? ev.payload.decisions : [];
    refs.forEach((ref, i) => {
      const d = typeof ref?.id === "number" ? t.decision.get(ref.id)?.row : ofRun[i];
      if (!d) return; // a decision the report does not print
      claimed.add(d.id);
      c.content.checked++;
      c.compare("decision", d.id, "run", runId, d.runId, ev.seq);
      c.compare("decision", d.id, "path", ref.path, d.path, ev.seq);
      c.compare("decision", d.id, "kind", ref.kind, d.kind, ev.seq);
      c.actor("decision", d.id, ev, d.authorId);
      if (typeof ref.sha256 === "string")
        c.compare("decision", d.id, "record (rationale, old/new values, author, time)", ref.sha256, decisionSha(d), ev.seq);
      else c.gap("run.create", "decision rationale, old/new values and time", ev.seq);
    });
  }
  for (const ev of [...byAction("decision.create"), ...byAction("decision.correct")]) {
    const d = t.decision.get(Number(ev.entityId))?.row;
    if (!d || claimed.has(d.id)) continue;
    claimed.add(d.id);
    c.content.checked++;
    c.fields("decision", d.id, ev, [
      ["runId", d.runId, "run"],
      ["kind", d.kind, "kind"],
      ["path", d.path, "path"],
      ["correctsDecisionId", d.correctsDecisionId, "corrected decision"],
      ["rationale", d.rationale, "rationale"],
      ["createdAt", d.createdAt, "decision time"],
    ]);
    if ("sha256" in ev.payload)
      c.compare("decision", d.id, "record (rationale, old/new values, author, time)", ev.payload.sha256, decisionSha(d), ev.seq);
    else c.gap(ev.action, "decision old/new values", ev.seq);
    c.actor("decision", d.id, ev, d.authorId);
  }
  // Decisions of applied interventions (a pilot's change while the run trained): named by run.interventionApplied.
  for (const ev of byAction("run.interventionApplied")) {
    const d = typeof ev.payload.decisionId === "number" ? t.decision.get(ev.payload.decisionId)?.row : undefined;
    if (!d || claimed.has(d.id)) continue;
    claimed.add(d.id);
    c.content.checked++;
    c.compare("decision", d.id, "run", ev.payload.runId, d.runId, ev.seq);
    c.compare("decision", d.id, "record (rationale, old/new values, author, time)", ev.payload.decisionSha256, decisionSha(d), ev.seq);
    c.actor("decision", d.id, ev, d.authorId);
  }
  for (const [id, rec] of t.decision)
    if (!claimed.has(id))
      c.problem(
        "decision",
        id,
        "ledger event",
        null,
        "row exists",
        rec.seq,
        `decision ${id} has no ${rec.row.kind === "note" || rec.row.kind === "correction" ? "decision.create" : rec.row.kind === "intervention" ? "run.interventionApplied (of its intervention)" : "run.create (of its run)"} event in the ledger (row written outside the app?)`,
      );
}

/** Models, model versions (and the weights file), alias moves, promotion requests and signatures. */
function checkRegistryFacts(c, f, t, row, byAction, created, dir) {
  const models = created("model", "model.create", (m, ev) => {
    c.fields("model", m.id, ev, [
      ["name", m.name, "model name"],
      ["description", m.description, "model description"],
      ["createdAt", m.createdAt, "model creation time"],
    ]);
    c.actor("model", m.id, ev, m.createdBy);
  });
  for (const [id, ev] of models) {
    let approvals = { value: ev.payload.approvalsRequired, seq: ev.seq };
    for (const u of byAction("model.update"))
      if (u.entityId === String(id) && u.payload?.field === "approvalsRequired") approvals = { value: u.payload.after, seq: u.seq };
    c.compare("model", id, "approvals required for production", approvals.value, row("model", id).approvalsRequired, approvals.seq);
  }
  created("modelVersion", "modelVersion.create", (v, ev) => {
    const ck = row("checkpoint", v.checkpointId);
    c.fields("modelVersion", v.id, ev, [
      ["model", row("model", v.modelId)?.name ?? null, "model"],
      ["modelId", v.modelId, "model id"],
      ["version", v.version, "version number"],
      ["runId", v.runId, "run"],
      ["checkpointId", v.checkpointId, "checkpoint"],
      ["weightsSha256", v.weightsSha256, "weights sha256"],
      ["createdAt", v.createdAt, "registration time"],
    ]);
    if (ck) {
      c.compare("modelVersion", v.id, "weights sha256 of its checkpoint", ev.payload.weightsSha256, ck.sha256, ev.seq);
      if ("epoch" in ev.payload) c.compare("modelVersion", v.id, "checkpoint epoch", ev.payload.epoch, ck.epoch, ev.seq);
      c.compare("modelVersion", v.id, "run of its checkpoint", v.runId, ck.runId, ev.seq);
    }
    c.actor("modelVersion", v.id, ev, v.createdBy, "registered by");
    if (v.id !== f.modelVersionId) return;
    const w = f.weights ?? {};
    if (typeof w.file !== "string" || w.file.length === 0) {
      c.content.notCovered.push(
        `the model version's weights file is not in this bundle (${w.omitted ?? "not included"}); only its sha256 was compared`,
      );
      return;
    }
    const file = path.join(dir, w.file);
    c.content.checked++;
    if (w.file.split(/[\\/]/).includes("..") || !fs.existsSync(file))
      return c.problem(
        "modelVersion",
        v.id,
        "weights file",
        ev.payload.weightsSha256,
        null,
        ev.seq,
        `modelVersion ${v.id}: weights file ${w.file} is missing from the bundle (deleted?)`,
      );
    const found = sha256Hex(fs.readFileSync(file));
    if (found !== ev.payload.weightsSha256)
      c.problem(
        "modelVersion",
        v.id,
        "weights file",
        ev.payload.weightsSha256,
        found,
        ev.seq,
        `modelVersion ${v.id}: weights file was replaced: the ledger (event #${ev.seq}) recorded sha256 ${ev.payload.weightsSha256}, the file's bytes hash to ${found}`,
      );
  });
  created(
    "aliasMove",
    "alias.move",
    (a, ev) => {
      const v = a.modelVersionId === null ? null : row("modelVersion", a.modelVersionId);
      c.compare("aliasMove", a.id, "model", Number(ev.entityId), a.modelId, ev.seq);
      c.fields("aliasMove", a.id, ev, [
        ["model", row("model", a.modelId)?.name ?? null, "model name"],
        ["alias", a.alias, "alias"],
        ["toModelVersionId", a.modelVersionId, "model version"],
        ["version", v ? v.version : null, "version number"],
        ["promotionRequestId", a.promotionRequestId, "promotion request"],
        ["createdAt", a.createdAt, "move time"],
      ]);
      c.actor("aliasMove", a.id, ev, a.movedBy, "moved by");
    },
    (ev) => (typeof ev.payload?.aliasEventId === "number" ? ev.payload.aliasEventId : NaN),
  );
  const requests = created("promotionRequest", "promotion.request", (r, ev) => {
    c.fields("promotionRequest", r.id, ev, [
      ["modelVersionId", r.modelVersionId, "model version"],
      ["alias", r.alias, "alias"],
      ["evaluationId", r.evaluationId, "cited evaluation"],
      ["rationale", r.rationale, "rationale"],
      ["recordSha256", r.recordSha256, "record sha256"],
      ["createdAt", r.createdAt, "request time"],
    ]);
    const v = row("modelVersion", r.modelVersionId);
    const e = row("evaluation", r.evaluationId);
    const m = v ? row("model", v.modelId) : null;
    if (v && e && m) {
      const record = {
        model: m.name,
        alias: r.alias,
        modelVersion: {
          id: v.id,
          version: v.version,
          runId: v.runId,
          checkpointId: v.checkpointId,
          weightsSha256: v.weightsSha256,
          createdBy: v.createdBy,
          createdAt: v.createdAt,
        },
        evaluation: {
          id: e.id,
          runId: e.runId,
          checkpointId: e.checkpointId,
          splitId: e.splitId,
          partition: e.partition,
          dataSha256: e.dataSha256,
          metrics: parsed(e.metricsJson),
          confusion: e.confusionJson ? parsed(e.confusionJson) : null,
          createdAt: e.createdAt,
        },
      };
      c.compare(
        "promotionRequest",
        r.id,
        "record under review (model version and evaluation, recomputed)",
        ev.payload.recordSha256,
        sha256Hex(canonOf(record)),
        ev.seq,
      );
    }
    c.actor("promotionRequest", r.id, ev, r.requestedBy, "requested by");
  });
  for (const [id, ev] of requests) {
    let status = { status: "pending", decidedAt: null, seq: ev.seq, action: ev.action };
    for (const d of ["promotion.approve", "promotion.reject", "promotion.withdraw"]
      .flatMap(byAction)
      .filter((x) => x.entityId === String(id))
      .sort((a, b) => a.seq - b.seq)) {
      const p = d.payload ?? {};
      const s =
        d.action === "promotion.approve"
          ? "status" in p
            ? String(p.status)
            : Number(p.approvals) >= Number(p.approvalsRequired)
              ? "approved"
              : "pending"
          : d.action === "promotion.reject"
            ? "rejected"
            : "withdrawn";
      if (s !== "pending") status = { status: s, decidedAt: "decidedAt" in p ? p.decidedAt : undefined, seq: d.seq, action: d.action };
    }
    const r = row("promotionRequest", id);
    c.compare("promotionRequest", id, "status", status.status, r.status, status.seq);
    if (status.decidedAt === undefined) c.gap(status.action, "promotion decision time", status.seq);
    else c.compare("promotionRequest", id, "decision time", status.decidedAt, r.decidedAt, status.seq);
  }
  created("signature", "signature.create", (g, ev) => {
    c.fields("signature", g.id, ev, [
      ["printedName", g.printedName, "printed name"],
      ["meaning", g.meaning, "meaning"],
      ["recordType", g.recordType, "record type"],
      ["recordId", g.recordId, "record signed"],
      ["recordSha256", g.recordSha256, "record sha256"],
      ["comment", g.comment, "comment"],
      ["createdAt", g.createdAt, "signing time"],
    ]);
    c.actor("signature", g.id, ev, g.userId, "signer");
    const now =
      g.recordType === "promotion_request"
        ? row("promotionRequest", g.recordId)?.recordSha256
        : g.recordType === "document"
          ? row("document", g.recordId)?.sha256
          : undefined;
    if (now !== undefined)
      c.compare(
        "signature",
        g.id,
        `${String(g.recordType).replace("_", " ")} ${g.recordId} as signed (its sha256 now)`,
        ev.payload.recordSha256,
        now,
        ev.seq,
      );
  });
}

// ------------------------------------------------------------------------------------------------------------
// Command line.

function formatText(dir, r) {
  const c = r.levels.content;
  const lines = [
    `Runledger bundle ${dir}: ${r.ok ? "VERIFIED" : "FAILED"}`,
    `  chain:    ${r.levels.chain.ok ? "intact" : "BROKEN"}: ${r.levels.chain.events} events, ${r.levels.chain.checkpoints} signed checkpoints` +
      (r.latestCheckpoint ? ` (latest #${r.latestCheckpoint.id}, tree size ${r.latestCheckpoint.treeSize}, ${r.latestCheckpoint.at})` : ""),
    `  content:  ${c.skipped ? `not checked (${c.skipped})` : c.ok ? `intact: ${c.checked} facts checked` : `FAILED: ${countOf(c.problems.length, "problem")} in ${c.checked} facts checked`}`,
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

const USAGE =
  "usage: node verify-bundle.mjs [--public-key FILE] [--trusted-checkpoint FILE] [--witness-key FILE]... [--origin LOG_ORIGIN] [--require-anchor] [--json]";

export async function main(
  argv,
  io = { out: (t) => process.stdout.write(t), err: (t) => process.stderr.write(t) },
  dir = path.dirname(fileURLToPath(import.meta.url)),
) {
  try {
    const { values } = parseArgs({
      args: argv,
      options: {
        "public-key": { type: "string" },
        "trusted-checkpoint": { type: "string" },
        "witness-key": { type: "string", multiple: true },
        origin: { type: "string" },
        "require-anchor": { type: "boolean", default: false },
        json: { type: "boolean", default: false },
        help: { type: "boolean", default: false },
      },
      strict: true,
      allowPositionals: false,
    });
    if (values.help) {
      io.out(`${USAGE}\nVerifies the Runledger report bundle in ${dir}. Exit 0 verified, 1 failed, 2 usage error.\n`);
      return 0;
    }
    const opts = {
      publicKeyPem: values["public-key"] ? readUserFile(values["public-key"], "public key file") : undefined,
      trustedCheckpoint: values["trusted-checkpoint"]
        ? parseTrustedCheckpoint(readUserFile(values["trusted-checkpoint"], "trusted checkpoint file"), values["trusted-checkpoint"])
        : undefined,
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

// Run when Node runs this file; not when the server imports it (provLineageProblems), where a bundler may compile it to
// CommonJS: so no top-level await, and no import.meta.url there.
const thisFile = typeof import.meta.url === "string" ? fileURLToPath(import.meta.url) : null;
if (thisFile !== null && process.argv[1] && path.resolve(process.argv[1]) === thisFile)
  void main(process.argv.slice(2)).then((code) => {
    process.exitCode = code;
  });
