"use client";
/** Datasets: the built-in catalogue, registered datasets with their hashes, and CSV upload with clear errors. */
import Link from "next/link";
import { useState } from "react";
import { useMutation, useQuery, useQueryClient } from "@tanstack/react-query";
import { useTRPC } from "@/app/_trpc/client";
import { Shell, type Me } from "@/app/_components/shell";
import { Empty, ErrorState, FormError, Loading } from "@/app/_components/states";
import { Hash } from "@/app/_components/hash";
import { formatBytes, formatCount, formatTime } from "@/app/_components/format";

const MAX_MIB = 20;

function UploadForm() {
  const trpc = useTRPC();
  const queryClient = useQueryClient();
  const [name, setName] = useState("");
  const [labelColumn, setLabelColumn] = useState("");
  const [licence, setLicence] = useState("");
  const [origin, setOrigin] = useState("");
  const [file, setFile] = useState<File | null>(null);
  const [kind, setKind] = useState<"auto" | "tabular" | "image" | "text">("auto");
  const [imageShape, setImageShape] = useState<[string, string, string]>(["", "", "1"]);
  const [textColumn, setTextColumn] = useState("");
  const [localError, setLocalError] = useState<string | null>(null);
  const upload = useMutation(trpc.datasets.upload.mutationOptions({ onSuccess: () => { setName(""); setFile(null); void queryClient.invalidateQueries({ queryKey: trpc.datasets.list.queryKey() }); } }));
  return (
    <form
      className="panel"
      aria-label="Upload a CSV dataset"
      onSubmit={async (e) => {
        e.preventDefault();
        setLocalError(null);
        if (!file) return setLocalError("choose a CSV file");
        if (file.size > MAX_MIB * 1048576) return setLocalError(`the file is ${(file.size / 1048576).toFixed(1)} MiB; the limit is ${MAX_MIB} MiB`);
        const bytes = new Uint8Array(await file.arrayBuffer());
        let binary = "";
        for (let i = 0; i < bytes.length; i += 0x8000) binary += String.fromCharCode(...bytes.subarray(i, i + 0x8000));
        const shape = imageShape.map((v) => Number(v));
        if (kind === "image" && !shape.every((v) => Number.isInteger(v) && v >= 1)) return setLocalError("give the image height, width and channels as whole numbers ≥ 1");
        upload.mutate({
          name: name || file.name.replace(/\.csv$/i, ""), csvBase64: btoa(binary), labelColumn: labelColumn || undefined, licence, origin,
          ...(kind === "auto" ? {} : { kind }),
          ...(kind === "image" ? { imageShape: shape as [number, number, number] } : {}),
          ...(kind === "text" && textColumn.trim() ? { textColumn: textColumn.trim() } : {}),
        });
      }}
    >
      <h2 style={{ marginTop: 0 }}>Upload a CSV</h2>
      <p className="muted">Comma-separated, with a header row and one label column. Tabular: numeric feature columns; image: one column per pixel in row-major order (height × width × channels of them); text: one text column. Up to {MAX_MIB} MiB. The raw bytes are hashed (SHA-256) and kept unchanged.</p>
      <div className="form-grid">
        <label className="field"><span>File</span><input type="file" accept=".csv,text/csv" aria-label="CSV file" onChange={(e) => setFile(e.target.files?.[0] ?? null)} /></label>
        <label className="field"><span>Name</span><input aria-label="Dataset name" value={name} onChange={(e) => setName(e.target.value)} placeholder="defaults to the file name" /></label>
        <label className="field"><span>Label column</span><input aria-label="Label column" value={labelColumn} onChange={(e) => setLabelColumn(e.target.value)} placeholder="label, class, target…" /></label>
        <label className="field"><span>Kind</span>
          <select aria-label="Kind" value={kind} onChange={(e) => setKind(e.target.value as typeof kind)}>
            <option value="auto">detect (text if one text column, else tabular)</option>
            <option value="tabular">tabular (numeric features)</option>
            <option value="image">image (pixel columns)</option>
            <option value="text">text (one text column)</option>
          </select>
        </label>
        {kind === "image" ? (["height", "width", "channels"] as const).map((dim, i) => (
          <label key={dim} className="field"><span>Image {dim}</span>
            <input type="number" min={1} aria-label={`Image ${dim}`} value={imageShape[i]} onChange={(e) => setImageShape(imageShape.map((v, j) => (j === i ? e.target.value : v)) as [string, string, string])} />
          </label>
        )) : null}
        {kind === "text" ? <label className="field"><span>Text column</span><input aria-label="Text column" value={textColumn} onChange={(e) => setTextColumn(e.target.value)} placeholder="the only non-label column if empty" /></label> : null}
        <label className="field"><span>Licence</span><input aria-label="Licence" value={licence} onChange={(e) => setLicence(e.target.value)} placeholder="e.g. CC BY 4.0" /></label>
        <label className="field"><span>Source</span><input aria-label="Source" value={origin} onChange={(e) => setOrigin(e.target.value)} placeholder="where the data came from" /></label>
      </div>
      <FormError error={localError ?? upload.error} />
      <button className="primary" type="submit" disabled={upload.isPending} style={{ marginTop: 12 }}>{upload.isPending ? "Uploading…" : "Upload"}</button>
      {upload.data ? <p role="status">Uploaded “{upload.data.name}”: {formatCount(upload.data.rowCount)} rows, sha256 <Hash value={upload.data.sha256} /></p> : null}
    </form>
  );
}

function Datasets({ me }: { me: Me }) {
  const trpc = useTRPC();
  const list = useQuery(trpc.datasets.list.queryOptions());
  const builtins = useQuery(trpc.datasets.builtins.queryOptions());
  return (
    <>
      <h1>Datasets</h1>
      <p className="subtitle">Raw data, hashed and kept as uploaded. Cleaning recipes and splits create versions, recorded when a run uses them.</p>
      {list.isPending ? <Loading what="Loading datasets" /> : list.error ? <ErrorState error={list.error} /> : list.data.length === 0 ? (
        <Empty title="No datasets registered yet" hint="Built-in datasets register the first time a run uses them; engineers can upload a CSV below." />
      ) : (
        <div className="panel">
          <table aria-label="Datasets">
            <thead><tr><th>Name</th><th>Source</th><th>Kind</th><th className="num">Rows</th><th className="num">Columns</th><th>Label</th><th className="num">Size</th><th>SHA-256</th><th>Licence</th><th>Added (UTC)</th></tr></thead>
            <tbody>
              {list.data.map((d) => (
                <tr key={d.id}>
                  <td><Link href={`/datasets/${d.id}`}>{d.name}</Link></td>
                  <td>{d.source}</td>
                  <td>{d.schema.kind}</td>
                  <td className="num">{formatCount(d.rowCount)}</td>
                  <td className="num">{d.schema.columns.length}</td>
                  <td className="mono">{d.schema.labelColumn}</td>
                  <td className="num">{formatBytes(d.byteSize)}</td>
                  <td><Hash value={d.sha256} label={`${d.name} sha256`} /></td>
                  <td>{d.licence || <span className="muted">not stated</span>}</td>
                  <td>{formatTime(d.createdAt)}</td>
                </tr>
              ))}
            </tbody>
          </table>
        </div>
      )}
      <h2>Built-in datasets</h2>
      {builtins.data ? (
        <div className="panel">
          <table aria-label="Built-in datasets">
            <thead><tr><th>Name</th><th>Description</th><th className="num">Rows</th><th>Source</th><th>Licence</th></tr></thead>
            <tbody>{builtins.data.map((b) => <tr key={b.name}><td>{b.title} <span className="muted mono">{b.name}</span></td><td>{b.description}</td><td className="num">{formatCount(b.rowCount)}</td><td>{b.origin}</td><td>{b.licence}</td></tr>)}</tbody>
          </table>
        </div>
      ) : builtins.error ? <ErrorState error={builtins.error} /> : <Loading />}
      {me.role === "engineer" ? <UploadForm /> : null}
    </>
  );
}

export default function DatasetsPage() {
  return <Shell>{(me) => <Datasets me={me} />}</Shell>;
}
