"use client";
/**
 * The lineage graph of a model version: @xyflow/react draws it, @dagrejs/dagre lays it out left to right (cause before
 * effect). Each node says in plain words what it is ("Raw dataset", "Training run", "Signature"), with its headline
 * hash shortened and a copy button; clicking a node (or selecting it with the keyboard) opens its details beside the graph.
 * It opens centred on the model version at a readable zoom; the minimap and the fit-view button show the whole chain.
 */
import "@xyflow/react/dist/style.css";
import { useMemo, useState } from "react";
import Link from "next/link";
import { Background, Controls, Handle, MiniMap, Position, ReactFlow, type Edge, type Node, type NodeProps } from "@xyflow/react";
import dagre from "@dagrejs/dagre";
import { Hash } from "@/app/_components/hash";
import type { LineageGraph, LineageNode } from "@/server/lineage/graph";

const NODE_W = 250;
const NODE_H = 104;

const KIND_COLOURS: Record<LineageNode["kind"], string> = {
  dataset: "#e7f0ff",
  datasetVersion: "#e7f0ff",
  split: "#e7f0ff",
  run: "#fff4e0",
  decision: "#fdf1f7",
  checkpoint: "#eaf7ee",
  evaluation: "#eaf7ee",
  modelVersion: "#efeaff",
  promotionRequest: "#f3f3f3",
  signature: "#fffbe0",
  aliasMove: "#efeaff",
};

type FlowNode = Node<{ node: LineageNode; selected: boolean }, "lineage">;

function LineageCard({ data }: NodeProps<FlowNode>) {
  const n = data.node;
  return (
    <div
      data-kind={n.kind}
      style={{
        width: NODE_W,
        minHeight: NODE_H - 8,
        boxSizing: "border-box",
        padding: "6px 10px",
        borderRadius: 8,
        border: `1px solid ${data.selected ? "#2f5bd3" : "#c9d0dc"}`,
        boxShadow: data.selected ? "0 0 0 2px #2f5bd3" : undefined,
        background: KIND_COLOURS[n.kind],
        fontSize: 12,
        cursor: "pointer",
      }}
    >
      <Handle type="target" position={Position.Left} isConnectable={false} />
      <div className="muted" style={{ fontSize: 11, textTransform: "uppercase", letterSpacing: 0.3 }}>
        {n.kindLabel}
      </div>
      <div style={{ fontWeight: 600, overflow: "hidden", textOverflow: "ellipsis", whiteSpace: "nowrap" }} title={n.title}>
        {n.title}
      </div>
      {n.lines.slice(0, 2).map((l, i) => (
        <div key={i} style={{ overflow: "hidden", textOverflow: "ellipsis", whiteSpace: "nowrap" }} title={l}>
          {l}
        </div>
      ))}
      {n.hash ? (
        <div className="nodrag" onClick={(e) => e.stopPropagation()}>
          <Hash value={n.hash.value} label={`${n.title} ${n.hash.label}`} />
        </div>
      ) : null}
      <Handle type="source" position={Position.Right} isConnectable={false} />
    </div>
  );
}
const nodeTypes = { lineage: LineageCard };

/** Positions from dagre (centre-based) converted to xyflow's top-left positions. */
function layout(graph: LineageGraph): Map<string, { x: number; y: number }> {
  const g = new dagre.graphlib.Graph();
  g.setGraph({ rankdir: "LR", nodesep: 24, ranksep: 70 });
  g.setDefaultEdgeLabel(() => ({}));
  for (const n of graph.nodes) g.setNode(n.id, { width: NODE_W, height: NODE_H });
  for (const e of graph.edges) g.setEdge(e.source, e.target);
  dagre.layout(g);
  return new Map(
    graph.nodes.map((n) => {
      const p = g.node(n.id) as { x: number; y: number };
      return [n.id, { x: p.x - NODE_W / 2, y: p.y - NODE_H / 2 }];
    }),
  );
}

export function LineageGraphView({ graph }: { graph: LineageGraph }) {
  const [selectedId, setSelectedId] = useState<string>(graph.rootId);
  const positions = useMemo(() => layout(graph), [graph]);
  const nodes = useMemo<FlowNode[]>(
    () =>
      graph.nodes.map((n) => ({
        id: n.id,
        type: "lineage",
        position: positions.get(n.id)!,
        data: { node: n, selected: n.id === selectedId },
        ariaLabel: `${n.kindLabel}: ${n.title}`,
        draggable: false,
        connectable: false,
      })),
    [graph, positions, selectedId],
  );
  const edges = useMemo<Edge[]>(
    () =>
      graph.edges.map((e) => ({
        id: e.id,
        source: e.source,
        target: e.target,
        label: e.label,
        labelStyle: { fontSize: 11 },
        style: { stroke: "#8a94a6" },
      })),
    [graph],
  );
  const selected = graph.nodes.find((n) => n.id === selectedId) ?? null;
  // Open readable (not zoomed out to fit a long chain): centred on the model version and its direct neighbours.
  const focus = useMemo(
    () =>
      [
        graph.rootId,
        ...graph.edges
          .filter((e) => e.source === graph.rootId || e.target === graph.rootId)
          .map((e) => (e.source === graph.rootId ? e.target : e.source)),
      ].map((id) => ({ id })),
    [graph],
  );
  return (
    <div style={{ display: "grid", gridTemplateColumns: "minmax(0, 1fr) 340px", gap: 16, alignItems: "start" }}>
      <div
        role="region"
        aria-label="Lineage graph"
        style={{ height: 640, border: "1px solid var(--line)", borderRadius: 8, background: "#fff" }}
        data-node-count={graph.nodes.length}
      >
        <ReactFlow
          nodes={nodes}
          edges={edges}
          nodeTypes={nodeTypes}
          onNodeClick={(_, n) => setSelectedId(n.id)}
          onSelectionChange={({ nodes: picked }) => {
            if (picked[0]) setSelectedId(picked[0].id);
          }}
          fitView
          fitViewOptions={{ nodes: focus, maxZoom: 0.95, minZoom: 0.35 }}
          minZoom={0.1}
          nodesConnectable={false}
          nodesDraggable={false}
          proOptions={{ hideAttribution: true }}
        >
          <Background />
          <Controls showInteractive={false} />
          <MiniMap pannable zoomable ariaLabel="Lineage overview" nodeColor="#9aa5b8" maskColor="rgba(240, 242, 246, 0.6)" />
        </ReactFlow>
      </div>
      <NodeDetails node={selected} />
    </div>
  );
}

function NodeDetails({ node }: { node: LineageNode | null }) {
  if (!node) return <aside className="panel muted">Select a node to see its details.</aside>;
  return (
    <aside className="panel" aria-label="Node details" style={{ margin: 0 }}>
      <div className="muted" style={{ fontSize: 12 }}>
        {node.kindLabel}
      </div>
      <h3 style={{ margin: "2px 0 8px" }}>{node.title}</h3>
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
