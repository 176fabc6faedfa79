/**
 * How many independent approvals a promotion request needs: the one rule, used by the signing service, the model
 * page and the reviewer's inbox.
 *
 * Invariants:
 * - A request is judged by the rule in force when it was made (promotion_requests.approvals_required, copied from
 *   models.approvals_required in the same transaction as the request and recorded in its promotion.request event).
 *   Lowering the model's rule afterwards does not lower the bar for a request already made.
 * - A rule RAISED while a request is still pending applies to it too: an admin raises the bar to stop exactly such
 *   requests going through on fewer signatures (server/tests/roles-registry.test.ts relies on it).
 * - A decided request keeps the rule it was decided by; pages show it as "rule at request time".
 */

/** Approvals a pending request needs now: its rule at request time, or the model's current rule if that is higher. */
export function approvalsRequiredFor(request: { approvalsRequired: number }, currentRule: number): number {
  return Math.max(request.approvalsRequired, currentRule);
}
