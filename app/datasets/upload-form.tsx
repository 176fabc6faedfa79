"use client";
/**
 * The CSV upload form: the file streams to the server (upload-request.ts) with a progress bar for the bytes sent,
 * then for the server's check (rows read so far, polled from datasets.uploadProgress). The limits shown and
 * pre-checked here are the server's own (datasets.uploadLimits); the server enforces them regardless.
 */
import { useState } from "react";
import { useQuery, useQueryClient } from "@tanstack/react-query";
import { useTRPC } from "@/app/_trpc/client";
import { FormError } from "@/app/_components/states";
import { Hash } from "@/app/_components/hash";
import { formatBytes, formatCount } from "@/app/_components/format";
import { newUploadId, uploadCsvFile, type UploadedDataset } from "./upload-request";

type Phase = { step: "idle" } | { step: "sending"; sent: number; total: number } | { step: "checking"; uploadId: string; total: number };

function UploadProgress({ phase }: { phase: Phase }) {
  const trpc = useTRPC();
  const checking = phase.step === "checking";
  const server = useQuery({
    ...trpc.datasets.uploadProgress.queryOptions({ uploadId: checking ? phase.uploadId : "00000000" }),
    enabled: checking,
    refetchInterval: 500,
  });
  if (phase.step === "idle") return null;
  if (phase.step === "sending") {
    return (
      <div className="row" style={{ marginTop: 8 }}>
        <progress aria-label="Upload progress" max={phase.total || 1} value={phase.sent} />
        <span className="muted">
          Sending {formatBytes(phase.sent)} of {formatBytes(phase.total)}
        </span>
      </div>
    );
  }
  const p = server.data;
  return (
    <div className="row" style={{ marginTop: 8 }}>
      <progress aria-label="Upload progress" max={phase.total || 1} value={p?.checkedBytes ?? 0} />
      <span className="muted">
        Checking the file on the server
        {p ? `: ${formatCount(p.rows)} rows, ${formatBytes(p.checkedBytes)} of ${formatBytes(phase.total)}` : "…"}
      </span>
    </div>
  );
}

export function UploadForm() {
  const trpc = useTRPC();
  const queryClient = useQueryClient();
  const limits = useQuery(trpc.datasets.uploadLimits.queryOptions());
  const [name, setName] = useState("");
  const [labelColumn, setLabelColumn] = useState("");
  const [licence, setLicence] = useState("");
  const [origin, setOrigin] = useState("");
  const [file, setFile] = useState<File | null>(null);
  const [kind, setKind] = useState<"auto" | "tabular" | "image" | "text">("auto");
  const [imageShape, setImageShape] = useState<[string, string, string]>(["", "", "1"]);
  const [textColumn, setTextColumn] = useState("");
  const [error, setError] = useState<string | null>(null);
  const [phase, setPhase] = useState<Phase>({ step: "idle" });
  const [uploaded, setUploaded] = useState<UploadedDataset | null>(null);
  const maxBytes = limits.data?.maxBytes;
  const busy = phase.step !== "idle";
  return (
    <form
      className="panel"
      aria-label="Upload a CSV dataset"
      onSubmit={async (e) => {
        e.preventDefault();
        setError(null);
        setUploaded(null);
        if (!file) return setError("choose a CSV file");
        if (maxBytes !== undefined && file.size > maxBytes)
          return setError(`the file is ${formatBytes(file.size)}; the limit is ${formatBytes(maxBytes)}`);
        const shape = imageShape.map((v) => Number(v));
        if (kind === "image" && !shape.every((v) => Number.isInteger(v) && v >= 1))
          return setError("give the image height, width and channels as whole numbers ≥ 1");
        const uploadId = newUploadId();
        setPhase({ step: "sending", sent: 0, total: file.size });
        try {
          const row = await uploadCsvFile(
            file,
            {
              name: name || file.name.replace(/\.csv$/i, ""),
              labelColumn: labelColumn || undefined,
              licence,
              origin,
              ...(kind === "auto" ? {} : { kind }),
              ...(kind === "image" ? { imageShape: shape as [number, number, number] } : {}),
              ...(kind === "text" && textColumn.trim() ? { textColumn: textColumn.trim() } : {}),
            },
            uploadId,
            (sent, total) => setPhase({ step: "sending", sent, total }),
            () => setPhase({ step: "checking", uploadId, total: file.size }),
          );
          setUploaded(row);
          setName("");
          setFile(null);
          void queryClient.invalidateQueries({ queryKey: trpc.datasets.list.queryKey() });
        } catch (err) {
          setError((err as Error).message);
        } finally {
          setPhase({ step: "idle" });
        }
      }}
    >
      <h2 style={{ marginTop: 0 }}>Upload a CSV</h2>
      <p className="muted">
        Comma-separated, with a header row and one label column. Tabular: numeric feature columns; image: one column per pixel in row-major
        order (height × width × channels of them); text: one text column.
        {limits.data ? (
          <>
            {" "}
            Up to {formatBytes(limits.data.maxBytes)}, {formatCount(limits.data.maxRows)} rows, {formatCount(limits.data.maxColumns)}{" "}
            columns and {formatCount(limits.data.maxCellChars)} characters per cell.
          </>
        ) : null}{" "}
        The raw bytes are hashed (SHA-256) and kept unchanged.
      </p>
      <div className="form-grid">
        <label className="field">
          <span>File</span>
          <input type="file" accept=".csv,text/csv" aria-label="CSV file" onChange={(e) => setFile(e.target.files?.[0] ?? null)} />
        </label>
        <label className="field">
          <span>Name</span>
          <input aria-label="Dataset name" value={name} onChange={(e) => setName(e.target.value)} placeholder="defaults to the file name" />
        </label>
        <label className="field">
          <span>Label column</span>
          <input
            aria-label="Label column"
            value={labelColumn}
            onChange={(e) => setLabelColumn(e.target.value)}
            placeholder="label, class, target…"
          />
        </label>
        <label className="field">
          <span>Kind</span>
          <select aria-label="Kind" value={kind} onChange={(e) => setKind(e.target.value as typeof kind)}>
            <option value="auto">detect (text if one text column, else tabular)</option>
            <option value="tabular">tabular (numeric features)</option>
            <option value="image">image (pixel columns)</option>
            <option value="text">text (one text column)</option>
          </select>
        </label>
        {kind === "image"
          ? (["height", "width", "channels"] as const).map((dim, i) => (
              <label key={dim} className="field">
                <span>Image {dim}</span>
                <input
                  type="number"
                  min={1}
                  aria-label={`Image ${dim}`}
                  value={imageShape[i]}
                  onChange={(e) => setImageShape(imageShape.map((v, j) => (j === i ? e.target.value : v)) as [string, string, string])}
                />
              </label>
            ))
          : null}
        {kind === "text" ? (
          <label className="field">
            <span>Text column</span>
            <input
              aria-label="Text column"
              value={textColumn}
              onChange={(e) => setTextColumn(e.target.value)}
              placeholder="the only non-label column if empty"
            />
          </label>
        ) : null}
        <label className="field">
          <span>Licence</span>
          <input aria-label="Licence" value={licence} onChange={(e) => setLicence(e.target.value)} placeholder="e.g. CC BY 4.0" />
        </label>
        <label className="field">
          <span>Source</span>
          <input aria-label="Source" value={origin} onChange={(e) => setOrigin(e.target.value)} placeholder="where the data came from" />
        </label>
      </div>
      <FormError error={error} />
      <UploadProgress phase={phase} />
      <button className="primary" type="submit" disabled={busy} style={{ marginTop: 12 }}>
        {busy ? "Uploading…" : "Upload"}
      </button>
      {uploaded ? (
        <p role="status">
          Uploaded “{uploaded.name}”: {formatCount(uploaded.rowCount)} rows, sha256 <Hash value={uploaded.sha256} />
        </p>
      ) : null}
    </form>
  );
}
