/**
 * Exponential moving average with debiasing (as TensorBoard's smoothing slider): weight 0 = raw, 0.99 =
 * very smooth. Debiasing keeps the first points from being pulled towards 0. Pure; points keep their x.
 */
export function emaSmooth(points: { x: number; y: number }[], weight: number): { x: number; y: number }[] {
  if (weight <= 0) return points;
  let last = 0;
  let n = 0;
  return points.map((p) => {
    if (!Number.isFinite(p.y)) return p;
    last = last * weight + (1 - weight) * p.y;
    n++;
    return { x: p.x, y: last / (1 - weight ** n) };
  });
}
