"use client";
/**
 * The dataset page's Rows panel: the first rows of the raw file as the upload parsed them (datasets.rows, which reads
 * a bounded prefix of the file), with the label column marked and numbers right-aligned; long text is clipped with
 * the full text in its title; an image dataset also shows its first images drawn from their pixel columns.
 */
import { useEffect, useRef } from "react";
import { useQuery } from "@tanstack/react-query";
import type { inferRouterOutputs } from "@trpc/server";
import { useTRPC } from "@/app/_trpc/client";
import type { AppRouter } from "@/server/trpc/root";
import { Empty, ErrorState, Loading } from "@/app/_components/states";
import { formatBytes, formatCount } from "@/app/_components/format";

type Preview = inferRouterOutputs<AppRouter>["datasets"]["rows"];
type Cell = Preview["rows"][number][number];

const PREVIEW_ROWS = 20;
/** Strings longer than this are clipped in the table; the full text is in the cell's title. */
const CLIP_CHARS = 60;
const IMAGES_SHOWN = 8;

export function RowsPreview({ id }: { id: number }) {
  const trpc = useTRPC();
  const q = useQuery(trpc.datasets.rows.queryOptions({ id, limit: PREVIEW_ROWS }));
  return (
    <section className="panel" aria-labelledby="rows-preview-heading">
      <h2 id="rows-preview-heading" style={{ marginTop: 0 }}>
        Rows
      </h2>
      {q.isPending ? (
        <Loading what="Loading rows" />
      ) : q.error ? (
        <ErrorState error={q.error} title="Could not read the rows" />
      ) : (
        <RowsBody p={q.data} />
      )}
    </section>
  );
}

function RowsBody({ p }: { p: Preview }) {
  if (p.rows.length === 0) return <Empty title="No row to preview" hint={p.cutShort ?? "The raw file holds a header but no data rows."} />;
  const rowsWord = p.totalRows === 1 ? "row" : "rows";
  return (
    <>
      <p className="muted" style={{ marginTop: 0 }}>
        Showing the first {formatCount(p.rows.length)} of {formatCount(p.totalRows)} {rowsWord}, as the upload parsed them (read{" "}
        {formatBytes(p.bytesRead)} of {formatBytes(p.byteSize)}).
        {p.cutShort ? ` Fewer than ${PREVIEW_ROWS} shown: ${p.cutShort}.` : ""}
      </p>
      {p.kind === "image" && p.imageShape ? <ImageStrip p={p} shape={p.imageShape} /> : null}
      <div className="table-scroll">
        <table aria-label="Rows preview">
          <thead>
            <tr>
              <th className="num" scope="col">
                #
              </th>
              {p.columns.map((c) => (
                <th key={c.name} scope="col" className={c.type === "number" ? "num" : undefined} style={{ textTransform: "none" }}>
                  <span className="mono">{c.name}</span>
                  {c.label ? (
                    <>
                      {" "}
                      {/* Not "label": a column is often named so, and its header read "label label". */}
                      <span className="badge" title="the label column: what a model learns to predict">
                        to predict
                      </span>
                    </>
                  ) : null}
                </th>
              ))}
            </tr>
          </thead>
          <tbody>
            {p.rows.map((r, i) => (
              <tr key={i}>
                <td className="num muted">{i + 1}</td>
                {r.map((v, c) => (
                  <CellView key={c} v={v} />
                ))}
              </tr>
            ))}
          </tbody>
        </table>
      </div>
    </>
  );
}

function CellView({ v }: { v: Cell }) {
  if (v === null)
    return (
      <td className="muted" title="missing value">
        –
      </td>
    );
  if (typeof v === "number") return <td className="num">{v}</td>;
  if (v.length <= CLIP_CHARS && !v.includes("\n")) return <td>{v}</td>;
  return (
    <td title={v} style={{ maxWidth: "40ch", overflow: "hidden", textOverflow: "ellipsis", whiteSpace: "nowrap" }}>
      {v}
    </td>
  );
}

/** The first images, drawn from their pixel columns (the non-label columns, row-major height × width × channels). */
function ImageStrip({ p, shape }: { p: Preview; shape: [number, number, number] }) {
  const labelAt = p.columns.findIndex((c) => c.label);
  const images = p.rows.slice(0, IMAGES_SHOWN).map((r) => ({
    label: r[labelAt],
    pixels: r.filter((_, i) => i !== labelAt).map((v) => (typeof v === "number" ? v : 0)),
  }));
  // Values in 0..1 (like the built-in digits) or in 0..255; one scale for all, so images compare.
  const max = Math.max(0, ...images.flatMap((im) => im.pixels));
  const scale = max <= 1 ? 255 : 1;
  return (
    <div className="row" style={{ marginBottom: 12 }} role="group" aria-label="First images">
      {images.map((im, i) => (
        <figure key={i} style={{ margin: 0, textAlign: "center" }}>
          <PixelCanvas pixels={im.pixels} shape={shape} scale={scale} name={`Image ${i + 1}, label ${String(im.label ?? "missing")}`} />
          <figcaption className="muted mono">{String(im.label ?? "–")}</figcaption>
        </figure>
      ))}
    </div>
  );
}

function PixelCanvas({ pixels, shape, scale, name }: { pixels: number[]; shape: [number, number, number]; scale: number; name: string }) {
  const ref = useRef<HTMLCanvasElement>(null);
  const [h, w, channels] = shape;
  useEffect(() => {
    const ctx = ref.current?.getContext("2d");
    if (!ctx) return;
    const img = ctx.createImageData(w, h);
    const at = (i: number) => Math.max(0, Math.min(255, Math.round((pixels[i] ?? 0) * scale)));
    for (let px = 0; px < w * h; px++) {
      const base = px * channels;
      const grey = at(base);
      const rgb = channels >= 3 ? [at(base), at(base + 1), at(base + 2)] : [grey, grey, grey];
      img.data.set([...rgb, channels === 4 ? at(base + 3) : channels === 2 ? at(base + 1) : 255], px * 4);
    }
    ctx.putImageData(img, 0, 0);
  }, [pixels, h, w, channels, scale]);
  return (
    <canvas
      ref={ref}
      width={w}
      height={h}
      role="img"
      aria-label={name}
      style={{ width: 64, height: Math.round((64 * h) / w), imageRendering: "pixelated", border: "1px solid var(--line)" }}
    />
  );
}
