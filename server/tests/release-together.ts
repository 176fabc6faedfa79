/**
 * A barrier for race tests: each caller of `arrive()` waits until `expected` callers have arrived, then all go on
 * together, so concurrent requests reach their transactions at the same moment instead of being staggered by the
 * slow work before them. Unarmed (`expected` 0), `arrive()` does not wait. No imports: suites load it from
 * `vi.hoisted`, before their mocks.
 */
export function releaseTogether(): { arm(expected: number): void; arrive(): Promise<void> } {
  const b = { expected: 0, arrived: 0, release: () => {}, opened: Promise.resolve() };
  return {
    arm(expected: number) {
      b.expected = expected;
      b.arrived = 0;
      b.opened = new Promise<void>((resolve) => (b.release = resolve));
    },
    async arrive() {
      if (b.expected === 0) return;
      if (++b.arrived === b.expected) b.release();
      await b.opened;
    },
  };
}
