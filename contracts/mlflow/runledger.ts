/**
 * Runledger's extension of the tracking API (/api/2.0/runledger/, beside MLflow's /api/2.0/mlflow/): the request and
 * response shapes shared by the server (server/mlflow/pilot.ts) and the client (contracts/mlflow/client.ts).
 *
 * Piloting a run logged by a script: an engineer asks, on the run page, to pause, resume, stop it or change a param; the request is a
 * pending intervention. The script reads the pending ones between its epochs (GET runs/pending-interventions, no side
 * effect) and acknowledges each one it applies at a step (POST runs/ack-intervention): that is the moment the
 * intervention takes effect, recorded as an embedded run's trainer records it (a decision by the requester, the
 * metrics of that moment, run.interventionApplied), or rejects one it cannot apply, with its reason (POST
 * runs/reject-intervention: run.interventionRejected by the token's user). A pilot may also change a logged param
 * ("set": key, from, to): the script applies the new value and acknowledges it at the step from which it holds.
 * Same token authentication and error shape as the MLflow routes.
 */

/**
 * What a pilot may ask of a script's run: pause, resume, stop, or "set" new values of its logged params (a script's
 * settings are its params: the script applies the new value itself from the next step on).
 */
export const SCRIPT_INTERVENTION_KINDS = ["pause", "resume", "stop", "set"] as const;
export type ScriptInterventionKind = (typeof SCRIPT_INTERVENTION_KINDS)[number];

/** Runledger's status of the run ("paused": a pilot's pause took effect; MLflow reads it as RUNNING). */
export type RunledgerRunStatus = "queued" | "running" | "paused" | "interrupted" | "completed" | "failed" | "cancelled";

export type SettingChange = { key: string; from: string; to: string };

export type ScriptIntervention = {
  intervention_id: string;
  kind: ScriptInterventionKind;
  /**
   * A "set": the params to change, each with the value in force when it was asked for (`from`: the logged value, or
   * an earlier change's) and the value to apply (`to`); as a param's, both are text. Empty for other kinds.
   */
  changes: SettingChange[];
  /** The pilot's rationale, as recorded. */
  rationale: string;
  /** The requester's email. */
  requested_by: string;
  /** ms since the epoch */
  requested_at: number;
};

export type PendingInterventionsRequest = { run_id: string };
export type PendingInterventionsResponse = {
  run_id: string;
  run_status: RunledgerRunStatus;
  /** Not yet acknowledged, oldest first. */
  interventions: ScriptIntervention[];
};

export type AckInterventionRequest = {
  run_id: string;
  intervention_id: string;
  /** The step at which the script applied it (its last logged step, e.g. the epoch just finished). */
  step: number;
  /** The epoch of that step, when the script counts steps otherwise (default: the step, as metrics read step as epoch). */
  epoch?: number;
};
export type AckInterventionResponse = {
  intervention: ScriptIntervention & { applied_at_step: number; applied_at_epoch: number; applied_at: number; decision_id: string };
  /** The run's status after it took effect: "paused" after a pause, "running" after a resume, "completed" after a stop. */
  run_status: RunledgerRunStatus;
};

export type RejectInterventionRequest = {
  run_id: string;
  intervention_id: string;
  /** Why the script cannot apply it (shown on the run page and in the ledger). */
  reason: string;
};
export type RejectInterventionResponse = {
  intervention: ScriptIntervention & { rejected_at: number; reason: string };
  run_status: RunledgerRunStatus;
};

/** What a training loop does next (MlflowClient.betweenEpochs). */
export type PilotAction = "continue" | "pause" | "stop";

export type RunledgerEndpoints = {
  "runs/pending-interventions": { method: "GET"; req: PendingInterventionsRequest; res: PendingInterventionsResponse };
  "runs/ack-intervention": { method: "POST"; req: AckInterventionRequest; res: AckInterventionResponse };
  "runs/reject-intervention": { method: "POST"; req: RejectInterventionRequest; res: RejectInterventionResponse };
};
export type RunledgerPath = keyof RunledgerEndpoints;
export const RUNLEDGER_ROUTES: { [P in RunledgerPath]: RunledgerEndpoints[P]["method"] } = {
  "runs/pending-interventions": "GET",
  "runs/ack-intervention": "POST",
  "runs/reject-intervention": "POST",
};
