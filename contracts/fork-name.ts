/**
 * The name the Fork form proposes for a fork: its parent's name with what it is a fork of ("iris baseline · fork of #12"),
 * so a list of runs does not show a parent and its forks under one name. Editable in the form; never longer than a
 * run name may be (runs.create: 120 characters), the parent's name shortened with "…" to fit.
 */
export const RUN_NAME_MAX = 120;

export function proposedForkName(parent: { id: number; name: string }): string {
  const suffix = ` · fork of #${parent.id}`;
  const room = RUN_NAME_MAX - suffix.length;
  const base = parent.name.trim();
  return `${base.length > room ? `${base.slice(0, room - 1).trimEnd()}…` : base}${suffix}`;
}
