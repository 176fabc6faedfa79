/**
 * Signed notes, checkpoint notes and cosignatures against fixed vectors: the Go reference implementation's
 * PeterNeumann key and note (golang.org/x/mod/sumdb/note tests), the examples in C2SP tlog-checkpoint,
 * tlog-cosignature and tlog-witness, and a cosignature whose bytes the test assembles by hand.
 */
import crypto from "node:crypto";
import { describe, expect, it } from "vitest";
import {
  NoteFormatError,
  SIG_TYPE_COSIGNATURE_V1,
  SIG_TYPE_ED25519,
  formatVerifierKey,
  keyIdFor,
  parseSignatureLine,
  parseSignedNote,
  parseVerifierKey,
  rawEd25519PublicKey,
  signNoteEd25519,
  verifyNoteEd25519,
} from "../note";
import { cosignNote, verifyCosignature } from "../cosignature";
import { defaultLogOrigin, formatCheckpointBody, parseCheckpointBody, signCheckpointNote, logVerifierKey } from "../checkpoint-note";
import { parseAddCheckpointBody, formatAddCheckpointBody } from "../witness";

/** An Ed25519 private key from its 32-byte seed (PKCS8 DER: fixed prefix || seed). */
function keyFromSeed(seed: Buffer) {
  return crypto.createPrivateKey({
    key: Buffer.concat([Buffer.from("302e020100300506032b657004220420", "hex"), seed]),
    format: "der",
    type: "pkcs8",
  });
}

describe("signed notes (Go reference vectors)", () => {
  const VKEY = "PeterNeumann+c74f20a3+ARpc2QcUPDhMQegwxbzhKqiBfsVkmqq/LDE4izWy10TW";
  const SEED_B64 = "AYEKFALVFGyNhPJEMzD1QIDr+Y7hfZx09iUvxdXHKDFz"; // from "PRIVATE+KEY+PeterNeumann+c74f20a3+<this>": 0x01 || seed
  const TEXT = "If you think cryptography is the answer to your problem,\nthen you don't know what your problem is.\n";
  const SIG_LINE = "— PeterNeumann x08go/ZJkuBS9UG/SffcvIAQxVBtiFupLLr8pAcElZInNIuGUgYN1FFYC2pZSNXgKvqfqdngotpRZb6KE6RyyBwJnAM=\n";

  it("computes the key ID as SHA-256(name || \\n || 0x01 || key)[:4] and round-trips the vkey", () => {
    const k = parseVerifierKey(VKEY);
    const raw = Buffer.from("ARpc2QcUPDhMQegwxbzhKqiBfsVkmqq/LDE4izWy10TW", "base64").subarray(1);
    const expectedId = crypto
      .createHash("sha256")
      .update(Buffer.concat([Buffer.from("PeterNeumann\n"), Buffer.from([0x01]), raw]))
      .digest()
      .subarray(0, 4);
    expect(expectedId.toString("hex")).toBe("c74f20a3");
    expect(k.keyId.toString("hex")).toBe("c74f20a3");
    expect(k.type).toBe(SIG_TYPE_ED25519);
    expect(formatVerifierKey("PeterNeumann", SIG_TYPE_ED25519, k.rawPublicKey)).toBe(VKEY);
  });

  it("reproduces the reference signature byte for byte and verifies it", () => {
    const seed = Buffer.from(SEED_B64, "base64");
    expect(seed[0]).toBe(0x01);
    const priv = keyFromSeed(seed.subarray(1));
    expect(rawEd25519PublicKey(priv).equals(parseVerifierKey(VKEY).rawPublicKey)).toBe(true);
    expect(signNoteEd25519("PeterNeumann", priv, TEXT)).toBe(SIG_LINE);
    const note = parseSignedNote(`${TEXT}\n${SIG_LINE}`);
    expect(note.text).toBe(TEXT);
    expect(verifyNoteEd25519(parseVerifierKey(VKEY), note.text, note.signatures[0]!)).toBe(true);
    expect(verifyNoteEd25519(parseVerifierKey(VKEY), TEXT.replace("cryptography", "cryptographY"), note.signatures[0]!)).toBe(false);
  });

  it("refuses mangled vkeys and malformed notes with a reason", () => {
    expect(() => parseVerifierKey("PeterNeumann+c74f20a4+ARpc2QcUPDhMQegwxbzhKqiBfsVkmqq/LDE4izWy10TW")).toThrow(/does not match the key/);
    expect(() => parseVerifierKey("PeterNeumann+c74f20a3+BRpc2QcUPDhMQegwxbzhKqiBfsVkmqq/LDE4izWy10TW")).toThrow(
      /unsupported signature type 0x05/,
    );
    expect(() => parseVerifierKey("Peter Neumann+c74f20a3+ARpc")).toThrow(NoteFormatError);
    expect(() => parseSignedNote(TEXT)).toThrow(/no blank line|newline/);
    expect(() => parseSignedNote(`${TEXT}\n— PeterNeumann !!!\n`)).toThrow(/base64/);
    expect(() => parseSignedNote(`${TEXT}\n${SIG_LINE.slice(0, -1)}`)).toThrow(/end with a newline/);
    expect(() => parseSignedNote(`bell\u0007\n\n${SIG_LINE}`)).toThrow(/control character/);
  });
});

describe("checkpoint notes (C2SP tlog-checkpoint example)", () => {
  const BODY = "example.com/behind-the-sofa\n20852163\nCsUYapGGPo4dkMgIAUqom/Xajj7h2fB2MPA3j2jxq2I=\n";

  it("parses and re-formats the example body exactly", () => {
    const cp = parseCheckpointBody(BODY);
    expect(cp).toMatchObject({ origin: "example.com/behind-the-sofa", treeSize: 20852163, extensions: [] });
    expect(cp.rootHash).toBe(Buffer.from("CsUYapGGPo4dkMgIAUqom/Xajj7h2fB2MPA3j2jxq2I=", "base64").toString("hex"));
    expect(formatCheckpointBody(cp)).toBe(BODY);
  });

  it("refuses leading zeros, short roots and missing lines", () => {
    expect(() => parseCheckpointBody(BODY.replace("20852163", "020852163"))).toThrow(/leading zeros/);
    expect(() => parseCheckpointBody("o\n1\nAAAA\n")).toThrow(/3 bytes, expected 32/);
    expect(() => parseCheckpointBody("o\n1\n")).toThrow(/needs origin, tree size and root/);
  });

  it("the log's note is signed under the origin's Ed25519 note key", () => {
    const keys = crypto.generateKeyPairSync("ed25519");
    const fp =
      "SHA256:" +
      crypto
        .createHash("sha256")
        .update(keys.publicKey.export({ type: "spki", format: "der" }))
        .digest("hex");
    const origin = defaultLogOrigin(fp);
    expect(origin).toBe(`runledger/${fp.slice(7, 23)}`);
    const root = crypto.createHash("sha256").update("x").digest("hex");
    const note = parseSignedNote(signCheckpointNote(keys.privateKey, { origin, treeSize: 5, rootHash: root }));
    expect(note.text).toBe(`${origin}\n5\n${Buffer.from(root, "hex").toString("base64")}\n`);
    expect(note.signatures[0]!.name).toBe(origin);
    expect(verifyNoteEd25519(logVerifierKey(origin, keys.publicKey), note.text, note.signatures[0]!)).toBe(true);
  });
});

describe("cosignature/v1", () => {
  it("reads key ID and timestamp from the tlog-cosignature example line", () => {
    const sig = parseSignatureLine(
      "— witness.example.com/w1 jWbPPwAAAABkGFDLEZMHwSRaJNiIDoe9DYn/zXcrtPHeolMI5OWXEhZCB9dlrDJsX3b2oyin1nPZqhf5nNo0xUe+mbIUBkBIfZ+qnA==",
    );
    expect(sig.name).toBe("witness.example.com/w1");
    expect(sig.keyId.toString("hex")).toBe("8d66cf3f");
    expect(sig.signature.length).toBe(72);
    expect(Number(sig.signature.readBigUInt64BE(0))).toBe(1679315147); // "time 1679315147" in the spec's signed message
  });

  it('matches a cosignature assembled by hand: keyID(0x04) || u64be(time) || Ed25519("cosignature/v1\\ntime T\\n" || body)', () => {
    const priv = keyFromSeed(Buffer.alloc(32, 7));
    const raw = rawEd25519PublicKey(priv);
    const name = "witness.example/w1";
    const body = "example.com/behind-the-sofa\n20852163\nCsUYapGGPo4dkMgIAUqom/Xajj7h2fB2MPA3j2jxq2I=\n";
    const T = 1679315147;
    const keyId = crypto
      .createHash("sha256")
      .update(Buffer.concat([Buffer.from(`${name}\n`), Buffer.from([0x04]), raw]))
      .digest()
      .subarray(0, 4);
    const ts = Buffer.alloc(8);
    ts.writeUInt32BE(Math.floor(T / 2 ** 32), 0);
    ts.writeUInt32BE(T % 2 ** 32, 4);
    const sig = crypto.sign(null, Buffer.from(`cosignature/v1\ntime ${T}\n${body}`), priv);
    const expected = `— ${name} ${Buffer.concat([keyId, ts, sig]).toString("base64")}\n`;
    expect(cosignNote(name, priv, body, T)).toBe(expected);
    expect(keyIdFor(name, SIG_TYPE_COSIGNATURE_V1, raw).equals(keyId)).toBe(true);

    const vkey = parseVerifierKey(`${name}+${keyId.toString("hex")}+${Buffer.concat([Buffer.from([0x04]), raw]).toString("base64")}`);
    expect(verifyCosignature(vkey, body, parseSignatureLine(expected))).toMatchObject({ name, keyId: keyId.toString("hex"), timestamp: T });
    expect(verifyCosignature(vkey, body.replace("20852163", "20852164"), parseSignatureLine(expected))).toBeNull();
    // The same key under type 0x01 has another key ID: a cosignature is never taken for a log signature.
    const asLogKey = parseVerifierKey(formatVerifierKey(name, SIG_TYPE_ED25519, raw));
    expect(verifyNoteEd25519(asLogKey, body, parseSignatureLine(expected))).toBe(false);
  });
});

describe("add-checkpoint request body (tlog-witness example)", () => {
  const EXAMPLE =
    "old 20852014\n" +
    "PlRNCrwHpqhGrupue0L7gxbjbMiKA9temvuZZDDpkaw=\n" +
    "jrJZDmY8Y7SyJE0MWLpLozkIVMSMZcD5kvuKxPC3swk=\n" +
    "5+pKlUdi2LeF/BcMHBn+Ku6yhPGNCswZZD1X/6QgPd8=\n" +
    "/6WVhPs2CwSsb5rYBH5cjHV/wSmA79abXAwhXw3Kj/0=\n" +
    "\n" +
    "example.com/behind-the-sofa\n20852163\nCsUYapGGPo4dkMgIAUqom/Xajj7h2fB2MPA3j2jxq2I=\n\n" +
    "— example.com/behind-the-sofa Az3grlgtzPICa5OS8npVmf1Myq/5IZniMp+ZJurmRDeOoRDe4URYN7u5/Zhcyv2q1gGzGku9nTo+zyWE+xeMcTOAYQ8=\n" +
    "— example.com/behind-the-sofa opLqBQsREYCgu6xQkYQwJr9fo45a62DN9EdmHXnZdXNqlcVGlCum2Wks+49/V6267UEjw6QUXTS5Rovnzv++qbSzm9Q=\n";

  it("parses the example and formats it back", () => {
    const req = parseAddCheckpointBody(EXAMPLE);
    expect(req.oldSize).toBe(20852014);
    expect(req.proof.map((p) => p.toString("base64"))[3]).toBe("/6WVhPs2CwSsb5rYBH5cjHV/wSmA79abXAwhXw3Kj/0=");
    const note = parseSignedNote(req.note);
    expect(note.signatures.map((s) => s.name)).toEqual(["example.com/behind-the-sofa", "example.com/behind-the-sofa"]);
    expect(parseCheckpointBody(note.text).treeSize).toBe(20852163);
    expect(formatAddCheckpointBody(req)).toBe(EXAMPLE);
  });

  it("refuses malformed bodies", () => {
    expect(() => parseAddCheckpointBody("old 01\n\nx")).toThrow(/leading zeros/);
    expect(() => parseAddCheckpointBody("new 1\n\nx")).toThrow(/old <size>/);
    expect(() => parseAddCheckpointBody(`old 1\n${"AAAA\n"}\n`)).toThrow(/3 bytes, expected 32/);
    const tooMany = `old 1\n${`${Buffer.alloc(32).toString("base64")}\n`.repeat(64)}\nx`;
    expect(() => parseAddCheckpointBody(tooMany)).toThrow(/more than 63/);
  });
});
