/**
 * A run's "Versions" line (run page): tfjs, node, then the app's version and git commit as recorded when it started
 * (server/runs/app-provenance.ts). Runs recorded before the version was (environment.appVersion absent) show only
 * their commit; a commit a run recorded as "unknown" (git was unavailable) is not shown as one: the record itself is
 * kept as it is.
 */
const COMMIT = /^[0-9a-f]{7,64}$/;

export function versionsText(env: Record<string, unknown>): string {
  const parts = [`tfjs ${String(env.tfjs)}`, `node ${String(env.node)}`];
  const version = typeof env.appVersion === "string" && env.appVersion ? env.appVersion : undefined;
  const commit = typeof env.appCommit === "string" && COMMIT.test(env.appCommit) ? env.appCommit.slice(0, 10) : undefined;
  if (version) parts.push(`app ${version}${commit ? ` (${commit})` : ""}`);
  else parts.push(commit ? `app ${commit}` : "app version not recorded");
  return parts.join(" · ");
}
