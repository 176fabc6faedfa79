"use client";
/**
 * The "Witnesses" panel of the Audit page: each witness configured in RUNLEDGER_WITNESSES (URL, key ID, whether it
 * is reachable, since when it fails and why), this log's verifier key for witness operators, and the latest
 * cosignatures (tree size, time, root and signature with copy, re-verified under the configured keys).
 * Refreshes on its own, since pushes happen in the background. Read-only.
 */
import { useQuery } from "@tanstack/react-query";
import { useTRPC } from "@/app/_trpc/client";
import { Empty, ErrorState, Loading } from "@/app/_components/states";
import { Hash } from "@/app/_components/hash";
import { formatCount, formatTime } from "@/app/_components/format";

type WitnessRow = {
  name: string;
  reachable: boolean | null;
  failingSince: string | null;
  lastError: string | null;
  lastSuccessAt: string | null;
};

function statusText(w: WitnessRow): { text: string; bad: boolean } {
  if (w.failingSince && w.reachable === false)
    return { text: `witness ${w.name} unreachable since ${formatTime(w.failingSince)}`, bad: true };
  if (w.failingSince) return { text: `witness ${w.name} refusing since ${formatTime(w.failingSince)}`, bad: true };
  if (w.reachable) return { text: `reachable; last cosigned ${formatTime(w.lastSuccessAt)}`, bad: false };
  return { text: "not contacted yet", bad: false };
}

export function WitnessesPanel() {
  const trpc = useTRPC();
  const q = useQuery({ ...trpc.witnesses.overview.queryOptions(), refetchInterval: 5000 });
  if (q.isPending) return <Loading what="Loading the witnesses" />;
  if (q.error) return <ErrorState error={q.error} title="Could not load the witnesses" />;
  const d = q.data;
  return (
    <section className="panel" aria-label="Witnesses">
      <h2 style={{ marginTop: 0 }}>Witnesses</h2>
      <p className="muted">
        Independent witnesses (C2SP tlog-witness) cosign each signed checkpoint after checking, with a consistency proof, that it extends
        everything they cosigned before. A history rewritten and re-signed with the server&apos;s own key then contradicts their
        cosignatures: <code>npm run cli -- audit verify --witness-key FILE</code> fails.
      </p>
      {d.logVkey ? (
        <p>
          This log: <code className="mono">{d.origin}</code> · verifier key for witness operators (<code>witness serve --log-key</code>):{" "}
          <Hash value={d.logVkey} label="log verifier key" />
        </p>
      ) : (
        <p className="error-text">{d.originError}</p>
      )}
      {d.configErrors.map((e) => (
        <p key={e} role="alert" className="error-text">
          RUNLEDGER_WITNESSES: {e}
        </p>
      ))}
      {d.witnesses.length === 0 ? (
        <Empty
          title="No witness configured"
          hint="Set RUNLEDGER_WITNESSES=URL=VKEY (comma-separated) and restart; run a witness with npm run cli -- witness serve."
        />
      ) : (
        <div className="table-scroll">
          <table aria-label="Configured witnesses">
            <thead>
              <tr>
                <th>Witness</th>
                <th>URL</th>
                <th>Key ID</th>
                <th>Status</th>
                <th>Cosigned up to</th>
                <th>Last error</th>
              </tr>
            </thead>
            <tbody>
              {d.witnesses.map((w) => {
                const s = statusText(w);
                return (
                  <tr key={w.url}>
                    <td>{w.name}</td>
                    <td>
                      <code className="mono">{w.url}</code>
                    </td>
                    <td>
                      <code className="mono">{w.keyId}</code>
                    </td>
                    <td role="status" aria-label={`Status of witness ${w.name}`} data-reachable={String(w.reachable)}>
                      {s.bad ? <strong className="error-text">{s.text}</strong> : s.text}
                    </td>
                    <td>{w.cosignedSize === null ? "–" : `tree size ${formatCount(w.cosignedSize)}`}</td>
                    <td>
                      {w.lastError ? (
                        <span title={w.lastError}>
                          {formatTime(w.lastErrorAt)}: {w.lastError.slice(0, 160)}
                        </span>
                      ) : (
                        "–"
                      )}
                    </td>
                  </tr>
                );
              })}
            </tbody>
          </table>
        </div>
      )}
      <h3>Cosignatures</h3>
      {d.cosignatures.length === 0 ? (
        <Empty title="No cosignature yet" hint="Cosignatures appear here once a witness has cosigned a checkpoint." />
      ) : (
        <div className="table-scroll">
          <table aria-label="Witness cosignatures">
            <thead>
              <tr>
                <th>Tree size</th>
                <th>Checkpoint</th>
                <th>Witness</th>
                <th>Cosigned (UTC)</th>
                <th>Root</th>
                <th>Signature</th>
                <th>Verified</th>
              </tr>
            </thead>
            <tbody>
              {d.cosignatures.map((c) => (
                <tr key={c.id} data-tree-size={c.treeSize}>
                  <td>{formatCount(c.treeSize)}</td>
                  <td>#{c.checkpointId}</td>
                  <td>
                    {c.witnessName} <code className="mono">{c.keyId}</code>
                  </td>
                  <td>{formatTime(c.cosignedAt)}</td>
                  <td>
                    <Hash value={c.rootHash} label={`root cosigned at tree size ${c.treeSize}`} />
                  </td>
                  <td>
                    <Hash value={c.signature} label={`cosignature at tree size ${c.treeSize}`} />
                  </td>
                  <td>
                    {c.verified === null ? (
                      <span className="muted">key not configured</span>
                    ) : c.verified ? (
                      "valid"
                    ) : (
                      <strong className="error-text">NOT valid</strong>
                    )}
                  </td>
                </tr>
              ))}
            </tbody>
          </table>
        </div>
      )}
    </section>
  );
}
