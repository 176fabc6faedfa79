/**
 * Layered layout of a lineage graph, top to bottom (cause above effect), computed by @dagrejs/dagre. Pure: no DOM,
 * so it is unit-tested (app/lineage/layout.test.ts) and the view only scales what it returns.
 *
 * Invariants: boxes never overlap; every edge goes downwards (its source's box ends above its target's box).
 *
 * Readability: a plain layered layout puts all the notes of one run (or all the signatures of one request) side by
 * side in one layer, so a 50-box lineage becomes far wider than a screen and only fits at an unreadable zoom. When
 * the layout is wider than `maxWidth`, each group of leaves hanging off the same box (sources whose only edge goes to
 * it, or sinks whose only edge comes from it) is laid out as one block: a grid of its boxes, a few per row, joined to
 * that box by one edge ("note on (6)"). It tries 4, 3, 2 then 1 per row and keeps the widest grid that fits (or the
 * narrowest layout when none does). Every edge of the graph is drawn, either itself or as its group's edge.
 */
import dagre from "@dagrejs/dagre";

export type LayoutNode = { id: string };
export type LayoutEdge = { id: string; source: string; target: string; label: string };
export type Box = { x: number; y: number; width: number; height: number };
export type Point = { x: number; y: number };
export type PlacedEdge = LayoutEdge & { points: Point[]; labelBox: Box | null };
export type GraphLayout = {
  /** Top-left positions in layout units (1 unit = 1 CSS px at zoom 1). */
  boxes: Map<string, Box>;
  /** The edges to draw: each edge of the graph, except that a group's edges are drawn as one edge of the group. */
  edges: PlacedEdge[];
  /** Blocks of leaves laid out as a grid (empty when the plain layout fits). */
  groups: LeafGroup[];
  width: number;
  height: number;
  /** Leaves per row in the groups' grids (Infinity when nothing is grouped). */
  perRow: number;
};

export const NODE_W = 220;
export const NODE_H = 100;
/** Edge labels are drawn at 12 px: about 7 px per character plus padding. */
export const LABEL_FONT = 12;
export const labelWidth = (label: string) => Math.ceil(label.length * 7) + 10;
const LABEL_H = 18;
const MARGIN = 16;

export type LeafGroup = { id: string; anchor: string; side: "above" | "below"; members: string[]; box: Box };

/** Groups of more than one leaf hanging off the same box: sources feeding one target, sinks fed by one source. */
function leafGroups(nodes: LayoutNode[], edges: LayoutEdge[]): Omit<LeafGroup, "box">[] {
  const ids = new Set(nodes.map((n) => n.id));
  const inn = new Map<string, LayoutEdge[]>();
  const out = new Map<string, LayoutEdge[]>();
  for (const e of edges) {
    if (!ids.has(e.source) || !ids.has(e.target) || e.source === e.target) continue;
    out.set(e.source, [...(out.get(e.source) ?? []), e]);
    inn.set(e.target, [...(inn.get(e.target) ?? []), e]);
  }
  const above = new Map<string, string[]>();
  const below = new Map<string, string[]>();
  for (const n of nodes) {
    const i = inn.get(n.id) ?? [];
    const o = out.get(n.id) ?? [];
    if (i.length === 0 && o.length === 1) above.set(o[0]!.target, [...(above.get(o[0]!.target) ?? []), n.id]);
    else if (o.length === 0 && i.length === 1) below.set(i[0]!.source, [...(below.get(i[0]!.source) ?? []), n.id]);
  }
  return [
    ...[...above].map(([anchor, members]) => ({ id: `group:above:${anchor}`, anchor, side: "above" as const, members })),
    ...[...below].map(([anchor, members]) => ({ id: `group:below:${anchor}`, anchor, side: "below" as const, members })),
  ].filter((g) => g.members.length > 1);
}

const GRID_GAP = 16;
const GROUP_PAD = 10;

/** "note on (5)" or "shaped (1) · note on (4)": the labels of a group's edges with their counts. */
function groupLabel(edges: LayoutEdge[]): string {
  const counts = new Map<string, number>();
  for (const e of edges) counts.set(e.label, (counts.get(e.label) ?? 0) + 1);
  return [...counts].map(([label, n]) => `${label} (${n})`).join(" · ");
}

function place(nodes: LayoutNode[], edges: LayoutEdge[], groups: Omit<LeafGroup, "box">[], perRow: number): GraphLayout {
  const g = new dagre.graphlib.Graph({ multigraph: true });
  g.setGraph({ rankdir: "TB", nodesep: 28, ranksep: 36, edgesep: 12, marginx: MARGIN, marginy: MARGIN });
  g.setDefaultEdgeLabel(() => ({}));
  const ids = new Set(nodes.map((n) => n.id));
  const groupOf = new Map<string, Omit<LeafGroup, "box">>();
  for (const gr of groups) for (const m of gr.members) groupOf.set(m, gr);
  const grid = (n: number) => {
    const cols = Math.min(perRow, n);
    const rows = Math.ceil(n / cols);
    return {
      cols,
      width: cols * NODE_W + (cols - 1) * GRID_GAP + 2 * GROUP_PAD,
      height: rows * NODE_H + (rows - 1) * GRID_GAP + 2 * GROUP_PAD,
    };
  };
  for (const n of nodes) if (!groupOf.has(n.id)) g.setNode(n.id, { width: NODE_W, height: NODE_H });
  for (const gr of groups) {
    const { width, height } = grid(gr.members.length);
    g.setNode(gr.id, { width, height });
  }
  const real = edges.filter((e) => ids.has(e.source) && ids.has(e.target) && e.source !== e.target);
  const drawn: LayoutEdge[] = real.filter((e) => !groupOf.has(e.source) && !groupOf.has(e.target));
  for (const gr of groups) {
    const own = real.filter((e) => gr.members.includes(gr.side === "above" ? e.source : e.target));
    const label = groupLabel(own);
    drawn.push(
      gr.side === "above"
        ? { id: `${gr.id}->${gr.anchor}`, source: gr.id, target: gr.anchor, label }
        : { id: `${gr.anchor}->${gr.id}`, source: gr.anchor, target: gr.id, label },
    );
  }
  for (const e of drawn) g.setEdge(e.source, e.target, { width: labelWidth(e.label), height: LABEL_H, labelpos: "c" }, e.id);
  dagre.layout(g);
  const boxes = new Map<string, Box>();
  const placedGroups: LeafGroup[] = [];
  for (const n of nodes) {
    if (groupOf.has(n.id)) continue;
    const p = g.node(n.id) as { x: number; y: number };
    boxes.set(n.id, { x: p.x - NODE_W / 2, y: p.y - NODE_H / 2, width: NODE_W, height: NODE_H });
  }
  for (const gr of groups) {
    const p = g.node(gr.id) as { x: number; y: number; width: number; height: number };
    const box = { x: p.x - p.width / 2, y: p.y - p.height / 2, width: p.width, height: p.height };
    const { cols } = grid(gr.members.length);
    gr.members.forEach((m, i) =>
      boxes.set(m, {
        x: box.x + GROUP_PAD + (i % cols) * (NODE_W + GRID_GAP),
        y: box.y + GROUP_PAD + Math.floor(i / cols) * (NODE_H + GRID_GAP),
        width: NODE_W,
        height: NODE_H,
      }),
    );
    placedGroups.push({ ...gr, box });
  }
  const placed: PlacedEdge[] = drawn.map((e) => {
    const d = g.edge({ v: e.source, w: e.target, name: e.id }) as { points?: Point[]; x?: number; y?: number };
    const w = labelWidth(e.label);
    return {
      ...e,
      points: d.points ?? [],
      labelBox:
        e.label && d.x !== undefined && d.y !== undefined ? { x: d.x - w / 2, y: d.y - LABEL_H / 2, width: w, height: LABEL_H } : null,
    };
  });
  const graph = g.graph() as { width?: number; height?: number };
  return { boxes, edges: placed, groups: placedGroups, width: graph.width ?? 0, height: graph.height ?? 0, perRow };
}

export function layoutLineage(graph: { nodes: LayoutNode[]; edges: LayoutEdge[] }, opts: { maxWidth?: number } = {}): GraphLayout {
  const maxWidth = opts.maxWidth ?? Infinity;
  const plain = place(graph.nodes, graph.edges, [], Infinity);
  if (plain.width <= maxWidth) return plain;
  const groups = leafGroups(graph.nodes, graph.edges);
  if (groups.length === 0) return plain;
  let narrowest = plain;
  for (const perRow of [4, 3, 2, 1]) {
    const l = place(graph.nodes, graph.edges, groups, perRow);
    if (l.width <= maxWidth) return l;
    if (l.width < narrowest.width) narrowest = l;
  }
  return narrowest;
}

/** The ids of a box's ancestors (everything with a path to it) and descendants (everything it has a path to). */
export function lineageOf(edges: LayoutEdge[], id: string): { ancestors: Set<string>; descendants: Set<string> } {
  const walk = (start: string, next: (e: LayoutEdge) => [string, string]) => {
    const seen = new Set<string>();
    const stack = [start];
    while (stack.length) {
      const cur = stack.pop()!;
      for (const e of edges) {
        const [from, to] = next(e);
        if (from === cur && !seen.has(to) && to !== start) {
          seen.add(to);
          stack.push(to);
        }
      }
    }
    return seen;
  };
  return { ancestors: walk(id, (e) => [e.target, e.source]), descendants: walk(id, (e) => [e.source, e.target]) };
}
