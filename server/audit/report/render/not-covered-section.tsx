/** The Annex IV points this tool does not produce, listed as such rather than left out silently. */
export function NotCoveredSection() {
  return (
    <section id="not-covered">
      <h2>Not covered by this report</h2>
      <p className="muted">
        Annex IV points outside what Runledger records: 1(b)–(c), 1(e)–(h) (interaction with other systems, hardware, user interface,
        instructions for use beyond the model card), 2(f) pre-determined changes, 2(h) cybersecurity, 5 risk-management system, 7 harmonised
        standards, 8 EU declaration of conformity, 9 post-market monitoring. The provider supplies these separately.
      </p>
    </section>
  );
}
