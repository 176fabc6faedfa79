/**
 * Appendix: integrity evidence. The signed checkpoint the report cites, the server's public key, how to verify the
 * bundle (with the CLI or the verifier shipped in it), and every cited ledger event with its inclusion proof.
 * Each cited event row carries the anchor (#ev-SEQ) the ledger links elsewhere in the page point at.
 */
import type { ReportFacts } from "../collect-report";
import { Code, EventLink, Facts, Table, time } from "./primitives";
import type { ReportIntegrity } from "./report-types";

export function IntegrityAppendix({ f, integrity }: { f: ReportFacts; integrity: ReportIntegrity }) {
  const cp = integrity.checkpoint;
  const proofBySeq = new Map(integrity.proofs.map((p) => [p.seq, p]));
  const rows = f.citedEvents.map((e) => {
    const p = proofBySeq.get(e.seq);
    return [
      <span id={`ev-${e.seq}`}>#{e.seq}</span>,
      time(e.at),
      e.action,
      `${e.entityType} ${e.entityId}`,
      e.actorName,
      <Code value={e.leafHash} />,
      p ? <code className="proof">{`${p.leafIndex} / ${p.treeSize}: ${p.proof.join(" ")}`}</code> : "not covered by the checkpoint",
    ];
  });
  return (
    <section id="integrity" className="appendix">
      <h2>Appendix: integrity evidence</h2>
      <p>
        Every fact above comes from Runledger&apos;s append-only audit ledger. The events cited (ledger numbers) are included in the signed
        tree head below; each inclusion proof (RFC 6962/9162) recomputes that root from the event&apos;s leaf hash. To check this bundle
        offline: <code>{"npm run cli -- audit verify --bundle <this folder> --public-key <the key you trust>"}</code>.
      </p>
      <h3 id="verify-yourself">Verify this bundle yourself</h3>
      <p>
        This folder carries its own verifier, a single script that needs Node.js 20 or later and nothing else (no Runledger source, no npm
        packages). In the folder, run{" "}
        <code>node verify-bundle.mjs [--public-key FILE] [--trusted-checkpoint FILE] [--witness-key FILE] [--json]</code>. It recomputes
        every event&apos;s leaf and chain hash, every checkpoint&apos;s Merkle root and Ed25519 signature, and checks that this report and
        its lineage are the ones the ledger recorded; it says which levels it proved (chain, content, anchored) and exits 0 when verified, 1
        when not. Pass the server key you trust with <code>--public-key</code> (otherwise the key in this folder is used, and the script
        says so), and a checkpoint you kept earlier with <code>--trusted-checkpoint</code> or a witness key with <code>--witness-key</code>:
        without such an anchor, a holder of the server&apos;s signing key could have rewritten history and re-signed it.
      </p>
      <Facts
        items={[
          ["Server key fingerprint", <code className="fingerprint">{cp.keyFingerprint}</code>],
          ["Signed checkpoint", `#${cp.id}, ${cp.reason}, ${time(cp.at)}`],
          ["Tree size", cp.treeSize],
          ["Root hash", <Code value={cp.rootHash} />],
          ["Ed25519 signature", <code className="wrap">{cp.signature}</code>],
          [
            "This export",
            <>
              recorded as ledger event <EventLink seq={integrity.exportEventSeq} />
            </>,
          ],
        ]}
      />
      <pre className="pem">{integrity.publicKeyPem}</pre>
      <Table
        caption="Cited ledger events with inclusion proofs"
        head={["Seq", "Time", "Action", "Entity", "Actor", "Leaf hash", "Inclusion proof (leaf index, tree size, path)"]}
        rows={rows}
      />
    </section>
  );
}
