/**
 * The hashes that bind a run intervention row (run_interventions) to its ledger events, shared by the pilot service
 * (server/runs/pilot.ts, which records them) and the content check (check-interventions.ts, which recomputes them).
 *
 * Invariants:
 * - interventionRequestSha256 covers every request column (what was asked, by whom, when, why); those columns never
 *   change (trigger run_interventions_one_transition).
 * - interventionOutcomeSha256 covers every outcome column (status, where it took effect, snapshot, checkpoint,
 *   decision, who closed it and why), written once by the transition out of "pending".
 */
import { sha256Canonical } from "@/contracts/canonical";

export type InterventionRecordRow = {
  id: number;
  runId: number;
  kind: string;
  changesJson: string;
  fromCheckpointId: number | null;
  rationale: string;
  requestedBy: number;
  requestedAt: string;
  status: string;
  appliedAtEpoch: number | null;
  appliedAtStep: number | null;
  appliedAt: string | null;
  metricsSnapshotJson: string | null;
  checkpointId: number | null;
  decisionId: number | null;
  closedBy: number | null;
  closedAt: string | null;
  closeReason: string | null;
};

export function interventionRequestSha256(r: InterventionRecordRow): string {
  return sha256Canonical({
    id: r.id,
    runId: r.runId,
    kind: r.kind,
    changesJson: r.changesJson,
    fromCheckpointId: r.fromCheckpointId,
    rationale: r.rationale,
    requestedBy: r.requestedBy,
    requestedAt: r.requestedAt,
  });
}

export function interventionOutcomeSha256(r: InterventionRecordRow): string {
  return sha256Canonical({
    id: r.id,
    status: r.status,
    appliedAtEpoch: r.appliedAtEpoch,
    appliedAtStep: r.appliedAtStep,
    appliedAt: r.appliedAt,
    metricsSnapshotJson: r.metricsSnapshotJson,
    checkpointId: r.checkpointId,
    decisionId: r.decisionId,
    closedBy: r.closedBy,
    closedAt: r.closedAt,
    closeReason: r.closeReason,
  });
}
