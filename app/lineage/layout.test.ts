/** The lineage layout: boxes never overlap, edges go downwards, wide groups of leaves are stacked to fit a width. */
import { describe, expect, it } from "vitest";
import { layoutLineage, lineageOf, NODE_W, type Box, type GraphLayout, type LayoutEdge } from "./layout";

/** A lineage shaped like a real one: data → split → a chain of forks, each run with notes, → checkpoint → version → requests. */
function forkChain(runs: number, notesPerRun: number) {
  const nodes: { id: string }[] = [];
  const edges: LayoutEdge[] = [];
  const node = (id: string) => nodes.push({ id });
  const edge = (source: string, target: string, label: string) => edges.push({ id: `${source}->${target}`, source, target, label });
  node("dataset");
  node("dv");
  node("split");
  edge("dataset", "dv", "cleaned into");
  edge("dv", "split", "split into");
  for (let r = 1; r <= runs; r++) {
    node(`run${r}`);
    edge("split", `run${r}`, "trained on");
    if (r > 1) edge(`run${r - 1}`, `run${r}`, "forked into");
    for (let d = 0; d < notesPerRun; d++) {
      node(`note${r}.${d}`);
      edge(`note${r}.${d}`, `run${r}`, "note on");
    }
  }
  node("checkpoint");
  node("version");
  edge(`run${runs}`, "checkpoint", "saved");
  edge("checkpoint", "version", "registered as");
  for (let p = 0; p < 3; p++) {
    node(`request${p}`);
    edge("version", `request${p}`, "proposed");
  }
  return { nodes, edges };
}

const overlaps = (a: Box, b: Box) => a.x < b.x + b.width && b.x < a.x + a.width && a.y < b.y + b.height && b.y < a.y + a.height;

function expectSound(layout: GraphLayout, graph: ReturnType<typeof forkChain>) {
  const boxes = graph.nodes.map((n) => layout.boxes.get(n.id)!);
  expect(boxes.every(Boolean)).toBe(true);
  for (let i = 0; i < boxes.length; i++)
    for (let j = i + 1; j < boxes.length; j++)
      expect(overlaps(boxes[i]!, boxes[j]!), `${graph.nodes[i]!.id} / ${graph.nodes[j]!.id}`).toBe(false);
  for (const e of graph.edges) {
    const s = layout.boxes.get(e.source)!;
    const t = layout.boxes.get(e.target)!;
    expect(s.y + s.height, `${e.id} goes downwards`).toBeLessThanOrEqual(t.y);
  }
  for (const b of boxes) {
    expect(b.x).toBeGreaterThanOrEqual(0);
    expect(b.y).toBeGreaterThanOrEqual(0);
    expect(b.x + b.width).toBeLessThanOrEqual(layout.width);
    expect(b.y + b.height).toBeLessThanOrEqual(layout.height);
  }
  // Every edge is drawn: itself, or (a grouped leaf's edge) as its group's edge; each drawn edge has a path.
  const drawn = new Set(layout.edges.map((e) => `${e.source}->${e.target}`));
  const groupOf = new Map(layout.groups.flatMap((g) => g.members.map((m) => [m, g] as const)));
  for (const e of graph.edges) {
    const s = groupOf.get(e.source);
    const t = groupOf.get(e.target);
    const key = s ? `${s.id}->${e.target}` : t ? `${e.source}->${t.id}` : e.id;
    expect(drawn.has(key), key).toBe(true);
  }
  for (const e of layout.edges) expect(e.points.length).toBeGreaterThanOrEqual(2);
  // A group's members lie inside its block, and the block sits on the right side of its anchor.
  for (const g of layout.groups) {
    for (const m of g.members) {
      const b = layout.boxes.get(m)!;
      expect(b.x >= g.box.x && b.y >= g.box.y && b.x + b.width <= g.box.x + g.box.width && b.y + b.height <= g.box.y + g.box.height).toBe(
        true,
      );
    }
    const a = layout.boxes.get(g.anchor)!;
    if (g.side === "above") expect(g.box.y + g.box.height).toBeLessThanOrEqual(a.y);
    else expect(a.y + a.height).toBeLessThanOrEqual(g.box.y);
    for (const n of graph.nodes)
      if (!g.members.includes(n.id)) expect(overlaps(layout.boxes.get(n.id)!, g.box), `${n.id} in ${g.id}`).toBe(false);
  }
}

describe("layoutLineage", () => {
  it("lays out a 50-box lineage in layers without overlaps", () => {
    const graph = forkChain(6, 6);
    expect(graph.nodes.length).toBeGreaterThanOrEqual(50);
    expectSound(layoutLineage(graph), graph);
  });

  it("stacks the notes of a run so the graph fits a readable width, still sound", () => {
    const graph = forkChain(6, 6);
    const wide = layoutLineage(graph);
    const maxWidth = 1100;
    expect(wide.width).toBeGreaterThan(maxWidth);
    const narrow = layoutLineage(graph, { maxWidth });
    expect(narrow.width).toBeLessThanOrEqual(maxWidth);
    expect(narrow.perRow).toBeLessThan(Infinity);
    expect(narrow.groups.find((g) => g.anchor === "run3")?.members).toHaveLength(6);
    expect(narrow.edges.find((e) => e.target === "run3" && e.source.startsWith("group:"))?.label).toBe("note on (6)");
    expectSound(narrow, graph);
  });

  it("keeps the plain layout when it already fits, and the narrowest one when nothing fits", () => {
    const small = forkChain(2, 1);
    expect(layoutLineage(small, { maxWidth: 5000 }).perRow).toBe(Infinity);
    const graph = forkChain(3, 8);
    const impossible = layoutLineage(graph, { maxWidth: NODE_W });
    expect(impossible.width).toBeLessThan(layoutLineage(graph).width);
    expectSound(impossible, graph);
  });

  it("finds a box's ancestors and descendants", () => {
    const graph = forkChain(3, 1);
    const { ancestors, descendants } = lineageOf(graph.edges, "run2");
    expect([...ancestors].sort()).toEqual(["dataset", "dv", "note1.0", "note2.0", "run1", "split"]);
    expect([...descendants].sort()).toEqual(["checkpoint", "request0", "request1", "request2", "run3", "version"]);
    expect(ancestors.has("note3.0")).toBe(false);
  });
});
