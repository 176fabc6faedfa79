"use client";
/**
 * A model's versions: the run and checkpoint each came from, its weights hash, its test evaluation, where aliases point.
 * Engineers request a promotion from here (with the model card and datasheet checklist); a version without a test
 * evaluation says so instead (the server refuses it too), and one with a production request pending links to it.
 */
import Link from "next/link";
import { useState } from "react";
import { useMutation } from "@tanstack/react-query";
import { useTRPC } from "@/app/_trpc/client";
import type { Me } from "@/app/_components/shell";
import { Hash } from "@/app/_components/hash";
import { FormError } from "@/app/_components/states";
import { formatMetric, formatTime } from "@/app/_components/format";
import type { ModelDetail } from "@/server/registry/queries";
import { useInvalidateRegistry } from "./use-model-invalidate";
import { DocumentationChecklist, useDocumentationChecklist } from "./documentation-checklist";

type Version = ModelDetail["versions"][number];

export function VersionsTable({ model, me }: { model: ModelDetail; me: Me }) {
  const [requesting, setRequesting] = useState<number | null>(null);
  return (
    <section className="panel" aria-label="Versions">
      <h2 style={{ marginTop: 0 }}>Versions</h2>
      <div className="table-scroll">
        <table aria-label="Model versions">
          <thead>
            <tr>
              <th>Version</th>
              <th>From</th>
              <th>Weights SHA-256</th>
              <th>Test evaluation</th>
              <th>Aliases</th>
              <th>Registered</th>
              <th></th>
            </tr>
          </thead>
          <tbody>
            {model.versions.map((v) => (
              <tr key={v.id} data-version={v.version}>
                <td>
                  <Link href={`/models/${encodeURIComponent(model.name)}/versions/${v.version}`}>v{v.version}</Link>
                </td>
                <td>
                  <Link href={`/runs/${v.runId}`}>run #{v.runId}</Link> · epoch {v.epoch}
                  {v.isBest ? " (best)" : ""}
                </td>
                <td>
                  <Hash value={v.weightsSha256} label={`version ${v.version} weights sha256`} />
                </td>
                <td>
                  {v.testEvaluation ? (
                    <>accuracy {formatMetric(v.testEvaluation.metrics.accuracy as number | undefined, "accuracy")}</>
                  ) : (
                    <span className="muted">No test evaluation: this version cannot be promoted</span>
                  )}
                </td>
                <td>
                  {v.aliases.map((a) => (
                    <span key={a} className="badge" style={{ marginRight: 4 }}>
                      {a}
                    </span>
                  ))}
                </td>
                <td>
                  {formatTime(v.createdAt)} by {v.createdBy}
                </td>
                <td>
                  {/* A row that wraps whole items: "Lineage ·" once dangled above a wrapped button. */}
                  <div className="row" style={{ gap: 8 }}>
                    <Link href={`/models/${encodeURIComponent(model.name)}/versions/${v.version}`}>Lineage</Link>
                    <PromotionAction model={model} version={v} me={me} onRequest={() => setRequesting(v.version)} />
                  </div>
                </td>
              </tr>
            ))}
          </tbody>
        </table>
      </div>
      {requesting !== null ? (
        <RequestPromotionForm
          model={model}
          version={model.versions.find((v) => v.version === requesting)!}
          me={me}
          onDone={() => setRequesting(null)}
        />
      ) : null}
    </section>
  );
}

/**
 * A version's promotion action: its pending production request, linked (the server refuses a second one, so none is
 * offered), or, for an engineer, "Request production" when the version has a test evaluation and is not in production.
 */
function PromotionAction({ model, version, me, onRequest }: { model: ModelDetail; version: Version; me: Me; onRequest: () => void }) {
  const pending = model.promotionRequests.find((r) => r.version === version.version && r.alias === "production" && r.status === "pending");
  if (pending) return <a href={`#request-${pending.id}`}>production request #{pending.id} pending</a>;
  if (me.role !== "engineer" || !version.testEvaluation || version.aliases.includes("production")) return null;
  return (
    <button type="button" onClick={onRequest}>
      Request production
    </button>
  );
}

/**
 * Request production for one version: the test evaluation it relies on, the documentation checklist (missing model-card
 * and datasheet sections can be written right here), the rationale and, when sections are still missing, an explicit
 * acknowledgement (the server refuses the request without it and records it with the request). The checklist sits
 * outside the request's <form> because writing a section is a form of its own.
 */
export function RequestPromotionForm({
  model,
  version,
  me,
  onDone,
}: {
  model: Pick<ModelDetail, "name" | "approvalsRequired">;
  version: Version;
  me: Me;
  onDone: () => void;
}) {
  const trpc = useTRPC();
  const invalidate = useInvalidateRegistry();
  const [rationale, setRationale] = useState("");
  const [acknowledged, setAcknowledged] = useState(false);
  const checklist = useDocumentationChecklist(model.name, version.version);
  const missing = checklist.data?.missing.length ?? 0;
  const request = useMutation(
    trpc.models.requestPromotion.mutationOptions({
      onSuccess: () => {
        void invalidate();
        onDone();
      },
    }),
  );
  const e = version.testEvaluation!;
  const ready = checklist.isSuccess && rationale.trim() !== "" && (missing === 0 || acknowledged);
  return (
    <div role="region" aria-label="Request production" style={{ marginTop: 12 }}>
      <h3 style={{ margin: "0 0 8px" }}>Request production for v{version.version}</h3>
      <p className="muted" style={{ marginTop: 0 }}>
        Relies on evaluation #{e.id} on the test partition (accuracy {formatMetric(e.metrics.accuracy as number | undefined, "accuracy")},
        rows <Hash value={e.dataSha256} label="evaluation rows sha256" />
        ). {model.approvalsRequired} reviewer approval{model.approvalsRequired > 1 ? "s" : ""} from outside this model&apos;s lineage will
        be needed.
      </p>
      <DocumentationChecklist
        modelName={model.name}
        version={version.version}
        canWrite={me.role === "engineer" || me.role === "reviewer"}
      />
      <form
        aria-label="Request promotion"
        onSubmit={(ev) => {
          ev.preventDefault();
          request.mutate({
            modelName: model.name,
            version: version.version,
            alias: "production",
            evaluationId: e.id,
            rationale,
            acknowledgeMissingDocumentation: missing > 0 && acknowledged,
          });
        }}
      >
        <label className="field">
          <span>Why promote this version?</span>
          <textarea aria-label="Promotion rationale" value={rationale} onChange={(ev) => setRationale(ev.target.value)} />
        </label>
        {missing > 0 ? (
          <label className="row" style={{ margin: "6px 0" }}>
            <input type="checkbox" checked={acknowledged} onChange={(ev) => setAcknowledged(ev.target.checked)} />
            <span>
              Request production with {missing} section{missing > 1 ? "s" : ""} missing: the request records which, and reviewers see it
            </span>
          </label>
        ) : checklist.isSuccess ? (
          <p className="muted" style={{ margin: "6px 0" }}>
            Every model-card and datasheet section is written; the request records each section&apos;s version and sha256.
          </p>
        ) : null}
        <FormError error={request.error} />
        <div className="row">
          <button className="primary" type="submit" disabled={request.isPending || !ready}>
            Submit promotion request
          </button>
          <button type="button" onClick={onDone}>
            Cancel
          </button>
        </div>
      </form>
    </div>
  );
}
