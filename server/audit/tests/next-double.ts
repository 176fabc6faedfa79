/** Tests: the double one ulp further from zero than `v` (its bit pattern plus one; 0 gives 5e-324). */
export function nextDouble(v: number): number {
  const view = new DataView(new ArrayBuffer(8));
  view.setFloat64(0, v);
  view.setBigUint64(0, view.getBigUint64(0) + 1n);
  return view.getFloat64(0);
}
