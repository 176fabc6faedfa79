/**
 * Divergence: a loss or metric that is no longer a finite number (NaN or ±Infinity, e.g. a learning rate too large
 * for unnormalised targets). Training stops at the first such value, as Keras's TerminateOnNaN does, and the run fails
 * with a message that says where and what to change. The non-finite value itself is never reported: what was
 * reported before it (earlier batches and epochs, their checkpoints) is what a person needs to see the curve go up,
 * and a ledger hashes canonical JSON, which has no NaN or Infinity.
 */

/** Throws when a value of `metrics` is not finite, naming it, `where` it happened and the learning rate then. */
export function checkFiniteMetrics(metrics: Readonly<Record<string, number>>, where: string, learningRate: number): void {
  for (const [name, value] of Object.entries(metrics))
    if (!Number.isFinite(value))
      throw new Error(
        `training diverged: ${name} became ${value} at ${where} with learning rate ${learningRate}; ` +
          "lower the learning rate, or normalise the inputs and scale the targets",
      );
}
