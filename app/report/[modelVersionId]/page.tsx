"use client";
/**
 * The auditor's report of one model version: the model card and datasheets (written and signed here by engineers and
 * reviewers), a preview of the report page exactly as exported, and the bundle download. Opening the preview or the
 * download records an export in the audit ledger (the server does it; see app/api/report), so both are form POSTs:
 * the preview form targets the (always present, hidden until used) preview iframe by name.
 */
import Link from "next/link";
import { use, useState } from "react";
import { useQuery } from "@tanstack/react-query";
import { useTRPC } from "@/app/_trpc/client";
import { Shell, type Me } from "@/app/_components/shell";
import { ErrorState, Loading } from "@/app/_components/states";
import { Hash } from "@/app/_components/hash";
import { DocumentSections } from "@/app/_components/model-card";

/** The preview iframe's name: the preview form posts into it. */
const PREVIEW_FRAME = "report-preview";

function Report({ modelVersionId, me }: { modelVersionId: number; me: Me }) {
  const trpc = useTRPC();
  const subjects = useQuery(trpc.audit.reportSubjects.queryOptions({ modelVersionId }));
  const [showPreview, setShowPreview] = useState(false);
  if (subjects.isPending) return <Loading what="Loading the report's subjects" />;
  if (subjects.error) return <ErrorState error={subjects.error} title="Could not load this model version" />;
  const s = subjects.data;
  return (
    <>
      <p className="muted">
        <Link href="/audit">Audit</Link> / <Link href={`/models/${encodeURIComponent(s.model.name)}`}>{s.model.name}</Link> / v{s.version}
      </p>
      <div className="row">
        <h1>
          Auditor&apos;s report: {s.model.name} v{s.version}
        </h1>
        <span className="spacer" />
        <form
          method="post"
          action={`/api/report/${modelVersionId}?format=html`}
          target={PREVIEW_FRAME}
          onSubmit={() => setShowPreview(true)}
          style={{ display: "inline" }}
        >
          <button type="submit" className="primary">
            {showPreview ? "Refresh preview" : "Preview report"}
          </button>
        </form>
        <form method="post" action={`/api/report/${modelVersionId}?format=tar`} style={{ display: "inline" }}>
          <button type="submit">Download bundle (.tar)</button>
        </form>
      </div>
      <p className="subtitle">
        Weights <Hash value={s.weightsSha256} label="model weights sha256" /> · the bundle holds report.html, report.json, the training
        curves, the PROV-JSON lineage, the whole audit ledger with its signed checkpoints, the server&apos;s public key and its own
        verifier. Unpack it and run <code>node verify-bundle.mjs</code> in it: Node alone, no Runledger source or npm. It checks the ledger,
        the recorded content and the report and, given a checkpoint you kept (<code>--trusted-checkpoint FILE</code>) or a witness&apos;s
        key (<code>--witness-key FILE</code>), that the history they cover was not rewritten. With Runledger&apos;s source,{" "}
        <code>npm run cli -- export --verify DIR</code> runs the same checks.
      </p>
      <section className="panel" aria-label="Report preview" hidden={!showPreview}>
        <div className="row">
          <h2 style={{ margin: 0 }}>Preview</h2>
          <span className="spacer" />
          <span className="muted">Print the preview (or open report.html from the bundle) to get a PDF.</span>
        </div>
        {/* sandbox: the report runs no script and gets an opaque origin (its response also carries a no-script CSP). */}
        <iframe
          name={PREVIEW_FRAME}
          sandbox=""
          title="Auditor's report preview"
          style={{ width: "100%", height: 900, border: "1px solid var(--line)", background: "#fff" }}
        />
      </section>
      <DocumentSections subject={{ subjectType: "model", subjectId: s.model.id }} me={me} title="Model card" />
      {s.datasets.map((d) => (
        <DocumentSections key={d.id} subject={{ subjectType: "dataset", subjectId: d.id }} me={me} title="Datasheet" />
      ))}
    </>
  );
}

export default function ReportPage({ params }: { params: Promise<{ modelVersionId: string }> }) {
  const { modelVersionId } = use(params);
  return <Shell>{(me) => <Report modelVersionId={Number(modelVersionId)} me={me} />}</Shell>;
}
