/**
 * `show --run ID [--data-dir DIR] [--json]`: a run's status, epochs completed, final weights hash and its decisions
 * (server/runs/run-record.ts: creation, planned, interventions, notes; each with its epoch, changes old → new,
 * rationale, actor and the metrics at that moment). Reads only. With DATABASE_URL=postgres://… it reads the PostgreSQL
 * store (issue 16; --data-dir is refused there).
 */
import { parseArgs } from "node:util";
import { runRecord } from "@/server/runs/run-record";
import { DomainError } from "@/server/errors";
import { dataDirWithPostgresRefusal, openCliStore } from "./cli-store";

export const SHOW_USAGE = `usage: npm run cli -- show --run ID [--data-dir DIR] [--json]`;

export async function showCommand(argv: string[]): Promise<number> {
  let values;
  try {
    ({ values } = parseArgs({
      args: argv,
      options: { run: { type: "string" }, "data-dir": { type: "string" }, json: { type: "boolean", default: false } },
    }));
  } catch (err) {
    process.stderr.write(`show: ${(err as Error).message}\n${SHOW_USAGE}\n`);
    return 2;
  }
  const runId = Number(values.run);
  if (!values.run || !Number.isInteger(runId)) {
    process.stderr.write(`show: --run ID is required\n${SHOW_USAGE}\n`);
    return 2;
  }
  const refusal = dataDirWithPostgresRefusal("show", values["data-dir"]);
  if (refusal) {
    process.stderr.write(refusal);
    return 2;
  }
  const on = await openCliStore({ dataDir: values["data-dir"] });
  try {
    const record = await runRecord(on.store, runId);
    const decisions = record.decisions.map((d) => ({
      kind: d.kind,
      ...(d.action ? { action: d.action } : {}),
      atEpoch: d.atEpoch,
      changes: d.changes,
      rationale: d.rationale,
      actor: { name: d.actor.name, email: d.actor.email },
      metricsAtDecision: d.metricsAtDecision,
      at: d.at,
      ...(d.interventionId !== undefined ? { interventionId: d.interventionId } : {}),
      ...(d.replays ? { replays: d.replays } : {}),
      ...(d.reached !== undefined ? { reached: d.reached } : {}),
      ...(d.branchRunId !== undefined ? { branchRunId: d.branchRunId } : {}),
    }));
    const out = {
      runId: record.runId,
      status: record.status,
      epoch: record.epoch,
      weightsSha256: record.weightsSha256,
      origin: record.origin,
      parentRunId: record.parentRunId,
      parentCheckpointId: record.parentCheckpointId,
      configSha256: record.configSha256,
      decisions,
    };
    if (values.json) process.stdout.write(`${JSON.stringify(out)}\n`);
    else {
      const lines = [
        `run ${out.runId}: ${out.status}, epoch ${out.epoch}, weights ${out.weightsSha256 ?? "-"}`,
        ...(out.parentRunId !== null
          ? [`  ${out.origin} of run ${out.parentRunId}${out.parentCheckpointId !== null ? ` (checkpoint ${out.parentCheckpointId})` : ""}`]
          : []),
        ...decisions.map(
          (d) =>
            `  [${d.kind}${"action" in d ? ` ${d.action}` : ""}] epoch ${d.atEpoch ?? "-"}: ${
              d.changes
                .map((c) => (c.path === "stop" ? "stop" : `${c.path} ${JSON.stringify(c.oldValue)} → ${JSON.stringify(c.newValue)}`))
                .join(", ") || "(no setting changed)"
            } — “${d.rationale}” (${d.actor.name})`,
        ),
      ];
      process.stdout.write(`${lines.join("\n")}\n`);
    }
    return 0;
  } catch (err) {
    if (err instanceof DomainError) {
      process.stderr.write(`show: ${err.message}\n`);
      return 2;
    }
    throw err;
  } finally {
    await on.close();
  }
}
