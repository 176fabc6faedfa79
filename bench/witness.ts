/**
 * Witness benchmark: `witness_cosign_ms`, the median time for the app to push a routine checkpoint (100 new events
 * since the previous one, the server's default interval) to a REAL witness process on loopback and store the
 * verified cosignature: checkpoint note signing, consistency proof, HTTP round trip, the witness's checks and
 * atomic state write, cosignature verification and the insert. The log has 100,000 events first (built like the
 * audit bench), so the proof cost is that of a grown log, not of an empty one. Signing the checkpoint itself is
 * not included (that is audit_checkpoint_*_s). Temp directories are removed and the witness stopped afterwards.
 */
import fs from "node:fs";
import os from "node:os";
import path from "node:path";
import { openDatabase } from "@/db/client";
import { appendAuditEvent, SYSTEM_ACTOR } from "@/server/audit/ledger";
import { createKeyInDir, writePublicKeyFile } from "@/server/audit/keys";
import { createAuditCheckpoint } from "@/server/audit/checkpoints";
import { logOrigin, logVerifierKey } from "@/server/audit/witness/checkpoint-note";
import { parseWitnessConfig } from "@/server/audit/witness/client";
import { WitnessPusher } from "@/server/audit/witness/pusher";
import { startWitnessProcess } from "@/server/audit/witness/witness-process";
import { buildAuditDatabase } from "./audit";
import { median, type Figure } from "./figures";

export async function benchWitness(opts: { logSize?: number; rounds?: number } = {}): Promise<Figure[]> {
  const logSize = opts.logSize ?? 100_000;
  const rounds = opts.rounds ?? 15;
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), "runledger-bench-witness-"));
  const keyDir = fs.mkdtempSync(path.join(os.tmpdir(), "runledger-bench-witness-keys-"));
  let witnessProcess: { stop: () => Promise<void>; keyDir: string } | null = null;
  try {
    const keys = createKeyInDir(keyDir);
    writePublicKeyFile(dir, keys);
    buildAuditDatabase(dir, logSize, keys);
    const db = openDatabase(dir);
    const witness = await startWitnessProcess({
      logKey: logVerifierKey(logOrigin(keys.fingerprint), keys.publicKey).vkey,
      name: "bench.witness/w1",
    });
    witnessProcess = witness;
    const pusher = new WitnessPusher({ db, auditKeys: keys }, parseWitnessConfig(`${witness.url}=${witness.vkey}`), {
      log: () => undefined,
    });
    createAuditCheckpoint(db, keys, "bench baseline");
    const first = await pusher.pushNow(); // the witness's first sight of the log (no proof)
    if (first[0]?.outcome !== "cosigned") throw new Error(`bench witness: first push failed: ${JSON.stringify(first)}`);
    const times: number[] = [];
    for (let r = 0; r < rounds; r++) {
      for (let i = 0; i < 100; i++) {
        db.transaction((tx) =>
          appendAuditEvent(tx, {
            actor: SYSTEM_ACTOR,
            action: "run.tag",
            entityType: "run",
            entityId: i,
            payload: { tag: `bench-${r}-${i}` },
          }),
        );
      }
      createAuditCheckpoint(db, keys, "bench");
      const started = performance.now();
      const [result] = await pusher.pushNow();
      const ms = performance.now() - started;
      if (result?.outcome !== "cosigned") throw new Error(`bench witness: push ${r} was not cosigned: ${JSON.stringify(result)}`);
      times.push(ms);
    }
    db.$client.close();
    return [{ name: "witness_cosign_ms", value: Math.round(median(times) * 10) / 10, unit: "ms", target: "< 100 ms" }];
  } finally {
    await witnessProcess?.stop();
    if (witnessProcess) fs.rmSync(witnessProcess.keyDir, { recursive: true, force: true });
    fs.rmSync(dir, { recursive: true, force: true });
    fs.rmSync(keyDir, { recursive: true, force: true });
  }
}

// Run directly: `npx tsx bench/witness.ts`
if (process.argv[1] && path.resolve(process.argv[1]) === path.resolve(__filename)) {
  void benchWitness().then((figures) => {
    for (const f of figures) console.log(`${f.name}: ${f.value} ${f.unit} (target ${f.target})`);
  });
}
