"use client";
/**
 * The lineage graph of a model version, read top to bottom (cause above effect): @dagrejs/dagre lays it out in layers
 * (app/lineage/layout.ts), and this view draws it as HTML buttons over an SVG of the edges inside a scrollable area.
 *
 * Readable by construction: everything is drawn at its real size for the current zoom (positions and font sizes are
 * multiplied by the zoom, no CSS transform), and the zoom never goes below MIN_ZOOM, where the smallest text is 10 px.
 * It opens fitted to the area's width (at most 100 %); a graph taller than the area scrolls vertically. Zoom with the
 * buttons or Ctrl + wheel, pan by scrolling or by dragging the background. Each box is a button (Tab, Enter) that
 * opens its details beside the graph; "Focus on its lineage" keeps only its ancestors and descendants, and "Show
 * whole graph" (or Escape) goes back. A legend names the kinds of box; each box also says its kind in words.
 */
import { useCallback, useEffect, useLayoutEffect, useMemo, useRef, useState } from "react";
import Link from "next/link";
import { Hash } from "@/app/_components/hash";
import type { LineageGraph, LineageNode } from "@/server/lineage/graph";
import { LABEL_FONT, layoutLineage, lineageOf, type Point } from "./layout";

/** The smallest text drawn in the graph at zoom 1 (kind labels, summary lines, edge labels). */
const SMALLEST_FONT = 12;
/** Text never drawn smaller than this many CSS px. */
export const READABLE_PX = 10;
const MIN_ZOOM = READABLE_PX / SMALLEST_FONT;
const MAX_ZOOM = 2;
const ZOOM_STEP = 1.2;

const KIND_STYLE: Record<LineageNode["kind"], { bg: string; stripe: string }> = {
  dataset: { bg: "#e7f0ff", stripe: "#2f5bd3" },
  datasetInput: { bg: "#e7f0ff", stripe: "#1f4aa8" },
  datasetVersion: { bg: "#e7f0ff", stripe: "#5b7fe0" },
  split: { bg: "#e7f0ff", stripe: "#8aa4ea" },
  run: { bg: "#fff4e0", stripe: "#c77700" },
  decision: { bg: "#fdf1f7", stripe: "#b0337a" },
  checkpoint: { bg: "#eaf7ee", stripe: "#1f7a4d" },
  evaluation: { bg: "#eaf7ee", stripe: "#5aa77c" },
  modelVersion: { bg: "#efeaff", stripe: "#6941c6" },
  promotionRequest: { bg: "#f3f3f3", stripe: "#5d6677" },
  signature: { bg: "#fffbe0", stripe: "#9a6700" },
  aliasMove: { bg: "#efeaff", stripe: "#9b7fe6" },
};
const INK = "#1d2330";
const MUTED = "#4b5464";

const clamp = (v: number, lo: number, hi: number) => Math.min(hi, Math.max(lo, v));
const shortHash = (h: string) => `${h.slice(0, 12)}…`;

function pathOf(points: Point[], z: number) {
  return points.map((p, i) => `${i === 0 ? "M" : "L"}${(p.x * z).toFixed(1)},${(p.y * z).toFixed(1)}`).join(" ");
}

export function LineageGraphView({ graph }: { graph: LineageGraph }) {
  const [selectedId, setSelectedId] = useState<string>(graph.rootId);
  const [focusId, setFocusId] = useState<string | null>(null);
  /** null: fitted to the width of the area. */
  const [zoom, setZoom] = useState<number | null>(null);
  const [areaWidth, setAreaWidth] = useState<number | null>(null);
  const areaRef = useRef<HTMLDivElement>(null);
  const nodeRefs = useRef(new Map<string, HTMLButtonElement>());
  const pendingScroll = useRef<{ left: number; top: number } | null>(null);

  // The area's inner width, in steps of 40 px so a small resize does not lay the graph out again.
  useLayoutEffect(() => {
    const el = areaRef.current;
    if (!el) return;
    const measure = () => setAreaWidth(Math.max(240, Math.floor(el.clientWidth / 40) * 40));
    measure();
    const ro = new ResizeObserver(measure);
    ro.observe(el);
    return () => ro.disconnect();
  }, []);

  const byId = useMemo(() => new Map(graph.nodes.map((n) => [n.id, n])), [graph]);
  const focus = useMemo(() => {
    if (!focusId) return null;
    const { ancestors, descendants } = lineageOf(graph.edges, focusId);
    return { ancestors, descendants, keep: new Set([focusId, ...ancestors, ...descendants]) };
  }, [graph, focusId]);
  const shown = useMemo(
    () =>
      focus
        ? {
            nodes: graph.nodes.filter((n) => focus.keep.has(n.id)),
            edges: graph.edges.filter((e) => focus.keep.has(e.source) && focus.keep.has(e.target)),
          }
        : { nodes: graph.nodes, edges: graph.edges },
    [graph, focus],
  );
  const layout = useMemo(() => (areaWidth === null ? null : layoutLineage(shown, { maxWidth: areaWidth / MIN_ZOOM })), [shown, areaWidth]);
  const fitZoom = layout && areaWidth ? clamp(areaWidth / Math.max(1, layout.width), MIN_ZOOM, 1) : 1;
  const z = zoom ?? fitZoom;
  const zRef = useRef(z);
  useLayoutEffect(() => {
    zRef.current = z;
  }, [z]);

  // The selected box's ancestors and descendants: their edges are drawn in the accent colour.
  const related = useMemo(() => {
    const { ancestors, descendants } = lineageOf(graph.edges, selectedId);
    return new Set([selectedId, ...ancestors, ...descendants]);
  }, [graph, selectedId]);

  const zoomTo = useCallback((next: number) => {
    const el = areaRef.current;
    const cur = zRef.current;
    const target = clamp(next, MIN_ZOOM, MAX_ZOOM);
    if (el) {
      // Keep the point at the centre of the area where it is.
      const cx = (el.scrollLeft + el.clientWidth / 2) / cur;
      const cy = (el.scrollTop + el.clientHeight / 2) / cur;
      pendingScroll.current = { left: cx * target - el.clientWidth / 2, top: cy * target - el.clientHeight / 2 };
    }
    setZoom(target);
  }, []);
  const fit = useCallback(() => {
    pendingScroll.current = { left: 0, top: 0 };
    setZoom(null);
  }, []);
  useLayoutEffect(() => {
    const el = areaRef.current;
    if (el && pendingScroll.current) {
      el.scrollLeft = Math.max(0, pendingScroll.current.left);
      el.scrollTop = Math.max(0, pendingScroll.current.top);
      pendingScroll.current = null;
    }
  }, [z, layout]);

  // Ctrl/Cmd + wheel zooms (a plain wheel scrolls).
  useEffect(() => {
    const el = areaRef.current;
    if (!el) return;
    const onWheel = (e: WheelEvent) => {
      if (!e.ctrlKey && !e.metaKey) return;
      e.preventDefault();
      zoomTo(zRef.current * (e.deltaY < 0 ? ZOOM_STEP : 1 / ZOOM_STEP));
    };
    el.addEventListener("wheel", onWheel, { passive: false });
    return () => el.removeEventListener("wheel", onWheel);
  }, [zoomTo]);

  // Drag the background to pan (mouse; touch scrolls natively).
  const drag = useRef<{ x: number; y: number; left: number; top: number } | null>(null);
  const onPointerDown = (e: React.PointerEvent<HTMLDivElement>) => {
    const el = areaRef.current;
    if (!el || e.pointerType !== "mouse" || e.button !== 0 || (e.target as HTMLElement).closest("button")) return;
    drag.current = { x: e.clientX, y: e.clientY, left: el.scrollLeft, top: el.scrollTop };
    el.setPointerCapture(e.pointerId);
  };
  const onPointerMove = (e: React.PointerEvent<HTMLDivElement>) => {
    const el = areaRef.current;
    if (!el || !drag.current) return;
    el.scrollLeft = drag.current.left - (e.clientX - drag.current.x);
    el.scrollTop = drag.current.top - (e.clientY - drag.current.y);
  };
  const endDrag = () => {
    drag.current = null;
  };

  const select = (id: string, moveFocus = false) => {
    setSelectedId(id);
    if (moveFocus) nodeRefs.current.get(id)?.focus();
  };
  const focusOn = (id: string) => {
    setSelectedId(id);
    setFocusId(id);
    fit();
    // The keyboard focus goes to the focused box (inside the graph, where Escape goes back to the whole graph).
    requestAnimationFrame(() => nodeRefs.current.get(id)?.focus());
  };
  const showAll = () => {
    const keep = focusId;
    setFocusId(null);
    setZoom(null);
    // Back to the whole graph with the box that was focused in view.
    requestAnimationFrame(() => (keep ? nodeRefs.current.get(keep)?.scrollIntoView({ block: "center", inline: "nearest" }) : null));
  };

  const kinds = useMemo(() => [...new Map(graph.nodes.map((n) => [n.kind, n.kindLabel]))], [graph]);
  const selected = byId.get(selectedId) ?? null;
  const focused = focusId ? (byId.get(focusId) ?? null) : null;
  const px = (v: number) => `${v * z}px`;

  if (graph.nodes.length === 0) return <p className="muted">No lineage is recorded for this version.</p>;
  return (
    // Side by side on a wide screen; on a narrow one (a phone) the details wrap below the graph.
    <div style={{ display: "flex", flexWrap: "wrap", gap: 16, alignItems: "flex-start" }}>
      <section
        aria-label="Lineage graph"
        data-node-count={graph.nodes.length}
        onKeyDown={(e) => {
          if (e.key === "Escape" && focusId) showAll();
        }}
        style={{ flex: "1 1 560px", border: "1px solid var(--line)", borderRadius: 8, background: "var(--panel)", minWidth: 0 }}
      >
        <div
          className="row"
          role="toolbar"
          aria-label="Graph view"
          style={{ padding: "6px 10px", gap: 8, borderBottom: "1px solid var(--line)", flexWrap: "wrap" }}
        >
          <button
            type="button"
            onClick={() => zoomTo(z / ZOOM_STEP)}
            disabled={z <= MIN_ZOOM + 1e-3}
            aria-label="Zoom out"
            title={z <= MIN_ZOOM + 1e-3 ? "Smallest readable size (text at 10 px)" : undefined}
          >
            −
          </button>
          <span aria-live="polite" aria-label="Zoom level" style={{ minWidth: 44, textAlign: "center" }}>
            {Math.round(z * 100)} %
          </span>
          <button type="button" onClick={() => zoomTo(z * ZOOM_STEP)} disabled={z >= MAX_ZOOM - 1e-3} aria-label="Zoom in">
            +
          </button>
          <button type="button" onClick={fit}>
            Fit view
          </button>
          <span className="spacer" />
          {focused && focus ? (
            <>
              <span role="status" aria-label="Focus">
                Lineage of <strong>{focused.title}</strong>: {focus.ancestors.size} before it, {focus.descendants.size} after it (
                {focus.keep.size} of {graph.nodes.length} boxes)
              </span>
              <button type="button" onClick={showAll}>
                Show whole graph
              </button>
            </>
          ) : (
            <span className="muted" role="status" aria-label="Focus">
              All {graph.nodes.length} boxes · select one to see its details and focus on its lineage
            </span>
          )}
        </div>
        <ul
          aria-label="Legend"
          style={{ display: "flex", flexWrap: "wrap", gap: "4px 14px", listStyle: "none", margin: 0, padding: "6px 10px", fontSize: 12 }}
        >
          {kinds.map(([kind, label]) => (
            <li key={kind} style={{ display: "inline-flex", alignItems: "center", gap: 6 }}>
              <span
                aria-hidden
                style={{
                  width: 14,
                  height: 12,
                  borderRadius: 3,
                  background: KIND_STYLE[kind].bg,
                  borderLeft: `4px solid ${KIND_STYLE[kind].stripe}`,
                  outline: "1px solid #c9d0dc",
                }}
              />
              {label}
            </li>
          ))}
        </ul>
        <div
          ref={areaRef}
          role="region"
          aria-label="Graph area"
          tabIndex={0}
          data-zoom={z.toFixed(3)}
          onPointerDown={onPointerDown}
          onPointerMove={onPointerMove}
          onPointerUp={endDrag}
          onPointerCancel={endDrag}
          style={{
            position: "relative",
            overflow: "auto",
            scrollbarGutter: "stable",
            height: layout ? `min(${Math.ceil(layout.height * z) + 4}px, 70vh)` : "60vh",
            minHeight: 200,
            background: "#fbfcfe",
            borderTop: "1px solid var(--line)",
            borderRadius: "0 0 8px 8px",
            cursor: "grab",
          }}
        >
          {layout ? (
            <div style={{ position: "relative", width: px(layout.width), height: px(layout.height), margin: "0 auto" }}>
              <svg width={layout.width * z} height={layout.height * z} style={{ position: "absolute", inset: 0 }} aria-hidden>
                <defs>
                  {["#8a94a6", "#2f5bd3"].map((c) => (
                    <marker
                      key={c}
                      id={`arrow-${c.slice(1)}`}
                      viewBox="0 0 10 10"
                      refX="9"
                      refY="5"
                      markerWidth="7"
                      markerHeight="7"
                      orient="auto-start-reverse"
                    >
                      <path d="M0,0 L10,5 L0,10 z" fill={c} />
                    </marker>
                  ))}
                </defs>
                {layout.groups.map((g) => (
                  <rect
                    key={g.id}
                    x={g.box.x * z}
                    y={g.box.y * z}
                    width={g.box.width * z}
                    height={g.box.height * z}
                    rx={8}
                    fill="none"
                    stroke="#b8c0cf"
                    strokeDasharray="6 4"
                  />
                ))}
                {layout.edges.map((e) => {
                  const ends = (id: string) => (id.startsWith("group:") ? (layout.groups.find((g) => g.id === id)?.members ?? []) : [id]);
                  const on = ends(e.source).some((s) => related.has(s)) && ends(e.target).some((t) => related.has(t));
                  const colour = on ? "#2f5bd3" : "#8a94a6";
                  return (
                    <g key={e.id}>
                      <path
                        d={pathOf(e.points, z)}
                        fill="none"
                        stroke={colour}
                        strokeWidth={on ? 2 : 1.2}
                        markerEnd={`url(#arrow-${colour.slice(1)})`}
                      />
                      {e.labelBox ? (
                        <>
                          <rect
                            x={e.labelBox.x * z}
                            y={e.labelBox.y * z}
                            width={e.labelBox.width * z}
                            height={e.labelBox.height * z}
                            rx={3}
                            fill="#fbfcfe"
                          />
                          <text
                            x={(e.labelBox.x + e.labelBox.width / 2) * z}
                            y={(e.labelBox.y + e.labelBox.height / 2) * z}
                            textAnchor="middle"
                            dominantBaseline="central"
                            style={{ fontSize: LABEL_FONT * z, fill: on ? "#2f5bd3" : MUTED }}
                          >
                            {e.label}
                          </text>
                        </>
                      ) : null}
                    </g>
                  );
                })}
              </svg>
              <ul aria-label="Lineage boxes" style={{ listStyle: "none", margin: 0, padding: 0 }}>
                {shown.nodes.map((n) => {
                  const b = layout.boxes.get(n.id)!;
                  const isSelected = n.id === selectedId;
                  const style = KIND_STYLE[n.kind];
                  return (
                    <li key={n.id} style={{ position: "absolute", left: px(b.x), top: px(b.y), width: px(b.width), height: px(b.height) }}>
                      <button
                        type="button"
                        ref={(el) => {
                          if (el) nodeRefs.current.set(n.id, el);
                          else nodeRefs.current.delete(n.id);
                        }}
                        aria-label={`${n.kindLabel}: ${n.title}`}
                        aria-describedby={`lineage-lines-${n.id}`}
                        aria-current={isSelected ? "true" : undefined}
                        data-kind={n.kind}
                        onClick={() => select(n.id)}
                        onDoubleClick={() => focusOn(n.id)}
                        style={{
                          display: "block",
                          width: "100%",
                          height: "100%",
                          boxSizing: "border-box",
                          margin: 0,
                          padding: `${px(6)} ${px(10)}`,
                          textAlign: "left",
                          overflow: "hidden",
                          borderRadius: 8,
                          border: `1px solid ${isSelected ? "#2f5bd3" : "#c9d0dc"}`,
                          borderLeft: `${Math.max(3, 5 * z)}px solid ${style.stripe}`,
                          boxShadow: isSelected ? "0 0 0 2px #2f5bd3" : undefined,
                          background: style.bg,
                          color: INK,
                          fontSize: px(12),
                          lineHeight: 1.3,
                          fontWeight: 400,
                          cursor: "pointer",
                        }}
                      >
                        <span style={{ display: "block", fontSize: px(12), color: MUTED, textTransform: "uppercase", letterSpacing: 0.3 }}>
                          {n.kindLabel}
                        </span>
                        <span
                          style={{
                            display: "block",
                            fontSize: px(14),
                            fontWeight: 600,
                            overflow: "hidden",
                            textOverflow: "ellipsis",
                            whiteSpace: "nowrap",
                          }}
                          title={n.title}
                        >
                          {n.title}
                        </span>
                        <span id={`lineage-lines-${n.id}`} style={{ display: "block" }}>
                          {n.lines.slice(0, 2).map((l, i) => (
                            <span
                              key={i}
                              style={{
                                display: "block",
                                fontSize: px(12),
                                overflow: "hidden",
                                textOverflow: "ellipsis",
                                whiteSpace: "nowrap",
                              }}
                              title={l}
                            >
                              {l}
                            </span>
                          ))}
                          {n.hash ? (
                            <span
                              style={{
                                display: "block",
                                fontSize: px(12),
                                fontFamily: "var(--mono)",
                                color: MUTED,
                                whiteSpace: "nowrap",
                                overflow: "hidden",
                              }}
                            >
                              {n.hash.label.replace(/ sha256$/, "")} {shortHash(n.hash.value)}
                            </span>
                          ) : null}
                        </span>
                      </button>
                    </li>
                  );
                })}
              </ul>
            </div>
          ) : null}
        </div>
      </section>
      <NodeDetails
        node={selected}
        graph={graph}
        byId={byId}
        focused={focusId === selectedId}
        onSelect={(id) => {
          if (focus && !focus.keep.has(id)) setFocusId(null);
          select(id, true);
        }}
        onFocus={() => focusOn(selectedId)}
        onShowAll={showAll}
      />
    </div>
  );
}

function NodeDetails({
  node,
  graph,
  byId,
  focused,
  onSelect,
  onFocus,
  onShowAll,
}: {
  node: LineageNode | null;
  graph: LineageGraph;
  byId: Map<string, LineageNode>;
  focused: boolean;
  onSelect: (id: string) => void;
  onFocus: () => void;
  onShowAll: () => void;
}) {
  if (!node)
    return (
      <aside className="panel muted" style={{ margin: 0, flex: "0 1 300px", minWidth: 0 }}>
        Select a box to see its details.
      </aside>
    );
  const from = graph.edges.filter((e) => e.target === node.id);
  const to = graph.edges.filter((e) => e.source === node.id);
  const linkList = (label: string, edges: typeof from, other: (e: (typeof from)[number]) => string) =>
    edges.length ? (
      <>
        <h4 style={{ margin: "10px 0 4px" }}>{label}</h4>
        <ul aria-label={label} style={{ margin: 0, paddingLeft: 18 }}>
          {edges.map((e) => {
            const o = byId.get(other(e));
            return o ? (
              <li key={e.id}>
                <span className="muted">{e.label}</span>{" "}
                <button
                  type="button"
                  onClick={() => onSelect(o.id)}
                  aria-label={`${o.kindLabel}: ${o.title}`}
                  style={{
                    background: "none",
                    border: "none",
                    padding: 0,
                    color: "var(--accent)",
                    textDecoration: "underline",
                    cursor: "pointer",
                    textAlign: "left",
                  }}
                >
                  {o.title}
                </button>
              </li>
            ) : null;
          })}
        </ul>
      </>
    ) : null;
  return (
    <aside className="panel" aria-label="Node details" style={{ margin: 0, flex: "0 1 300px", minWidth: 0 }}>
      <div className="muted" style={{ fontSize: 12 }}>
        {node.kindLabel}
      </div>
      <h3 style={{ margin: "2px 0 8px" }}>{node.title}</h3>
      <p style={{ margin: "0 0 8px" }}>
        {focused ? (
          <button type="button" onClick={onShowAll}>
            Show whole graph
          </button>
        ) : (
          <button type="button" onClick={onFocus}>
            Focus on its lineage
          </button>
        )}
      </p>
      <dl className="kv">
        {node.details.map((d) => (
          <Detail key={d.label} label={d.label} value={d.value} hash={d.hash} />
        ))}
      </dl>
      {node.href ? (
        <p style={{ marginBottom: 0 }}>
          <Link href={node.href}>Open {node.kindLabel.toLowerCase()}</Link>
        </p>
      ) : null}
      {linkList("Comes from", from, (e) => e.source)}
      {linkList("Leads to", to, (e) => e.target)}
    </aside>
  );
}

function Detail({ label, value, hash }: { label: string; value: string; hash?: boolean }) {
  return (
    <>
      <dt>{label}</dt>
      <dd style={{ wordBreak: "break-word" }}>{hash ? <Hash value={value} label={label} /> : value}</dd>
    </>
  );
}
