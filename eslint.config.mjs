/**
 * ESLint flat config: code-quality rules (typescript-eslint, React hooks) and the layer boundaries of
 * ARCHITECTURE.md. `npm run lint` runs it (and `prettier --check`) over the whole tree; scripts/tests/lint-boundaries.test.ts
 * proves each boundary fails when it is crossed.
 *
 * Invariants:
 * - Every boundary is checked on the RESOLVED path of an import, so `@/db/client`, `../../db/client` and a
 *   re-export all count the same (import-x/no-restricted-paths with the TypeScript resolver, which reads the `@/*`
 *   alias from tsconfig.json). An import the resolver cannot resolve would slip past a path rule, so
 *   import-x/no-unresolved is an error wherever a boundary applies.
 * - Pages and components (app/ outside app/api/) may import TYPES from server/ and trainer/ (the AppRouter type,
 *   row types) but no values: that rule needs to see `import type`, which no-restricted-paths cannot, so it is
 *   @typescript-eslint/no-restricted-imports on the specifier (alias form and parent-relative form).
 * - The layers are disjoint file sets (LAYERS below), so each file gets exactly one zone list: a later flat-config
 *   block replaces a rule's options rather than merging them, and overlapping `files` would silently drop zones.
 * - Formatting is Prettier's alone (eslint-config-prettier comes last and turns off every stylistic rule).
 */
import path from "node:path";
import { fileURLToPath } from "node:url";
import { defineConfig, globalIgnores } from "eslint/config";
import js from "@eslint/js";
import tseslint from "typescript-eslint";
import { importX } from "eslint-plugin-import-x";
import { createTypeScriptImportResolver } from "eslint-import-resolver-typescript";
import reactHooks from "eslint-plugin-react-hooks";
import prettierConfig from "eslint-config-prettier";
import globals from "globals";

const ROOT = path.dirname(fileURLToPath(import.meta.url));

const TESTS = ["**/tests/**", "**/*.test.ts", "**/*.test.tsx"];

/** Disjoint file sets, one per layer (see the invariant above). Globs are relative to the repository root. */
const LAYERS = {
  pages: { files: ["app/**"], ignores: ["app/api/**"] },
  routes: { files: ["app/api/**"], ignores: [] },
  // tRPC transport: the tRPC setup and every domain's router.
  trpc: { files: ["server/trpc/**", "server/**/router.ts"], ignores: [] },
  // HTTP transport helpers for app/api route handlers.
  http: { files: ["server/http/**"], ignores: [] },
  // Tests under server/ are harnesses: they drive routers and route handlers (app/api/) and assert on TRPCError
  // codes, so they may import every layer; only import-x/no-unresolved applies to them.
  serverTests: { files: TESTS.map((g) => `server/${g}`), ignores: ["server/trpc/**", "server/**/router.ts", "server/http/**"] },
  // Services, read queries, the ledger, the report, the orchestrator, the CLI, app-context: the domain.
  domain: {
    files: ["server/**"],
    ignores: ["server/trpc/**", "server/**/router.ts", "server/http/**", ...TESTS.map((g) => `server/${g}`)],
  },
  trainer: { files: ["trainer/**"], ignores: [] },
  contracts: { files: ["contracts/**"], ignores: [] },
  db: { files: ["db/**"], ignores: [] },
};

/** One forbidden edge: `from` is a directory (relative to the root) or a package's folder in node_modules. */
const edge = (from, message) => ({ target: ".", from, message });

const NO_APP = edge("app", "Nothing below app/ imports it: app/ is the top layer (ARCHITECTURE.md).");
const NO_DB_IN_TRANSPORT = (who) => [
  edge("db", `${who} never touch the database: call a service (server/<domain>/service.ts) instead (ARCHITECTURE.md).`),
  edge("node_modules/drizzle-orm", `${who} never touch the database: drizzle-orm belongs in services, read queries and db/.`),
  // The TypeScript resolver resolves a package with DefinitelyTyped types to node_modules/@types/<name>: both folders.
  ...["node_modules/better-sqlite3", "node_modules/@types/better-sqlite3"].map((from) =>
    edge(from, `${who} never touch the database: the driver belongs in db/.`),
  ),
  ...["node_modules/pg", "node_modules/@types/pg"].map((from) =>
    edge(from, `${who} never touch the database: the PostgreSQL driver belongs in db/ (db/pg-client.ts).`),
  ),
];
const NO_TRANSPORT_IN_DOMAIN = [
  edge(
    "node_modules/@trpc/server",
    "Services never import transport code: throw DomainError (server/errors.ts); server/trpc/domain-error-mapping.ts maps it to a tRPC code.",
  ),
  edge("server/trpc", "Services never import transport code (server/trpc/): the dependency points the other way."),
  edge("server/http", "Services never import transport code (server/http/): the dependency points the other way."),
  edge(
    "node_modules/next",
    "Services never import Next.js (next/server, next/headers): requests and responses are transport (server/http/, app/api/).",
  ),
];
// Routers are files named router.ts anywhere under server/: a glob zone of its own (a zone's `from` cannot mix globs and folders).
const NO_ROUTER_IN_DOMAIN = {
  target: ".",
  from: path.join(ROOT, "server/**/router.ts"),
  message: "Services never import a router: routers call services, not the other way round.",
};
/** A lower layer importing a higher one (`who` and each of `above` are folders). */
const below = (who, above) =>
  above.map((dir) => edge(dir, `${who}/ imports nothing from ${dir}/: ${who}/ sits below it (ARCHITECTURE.md).`));
/** A library layer importing server-side packages (`packages` are folders in node_modules). */
const noPackages = (who, packages) =>
  packages.flatMap((pkg) =>
    // The package's own folder and, for packages typed by DefinitelyTyped, the @types folder the resolver lands in.
    [`node_modules/${pkg}`, `node_modules/@types/${pkg}`].map((from) =>
      edge(from, `${who}/ imports no ${pkg}: it is a library below the server, with no transport or database (ARCHITECTURE.md).`),
    ),
  );

const ZONES = {
  routes: NO_DB_IN_TRANSPORT("Route handlers (app/api/)"),
  trpc: [...NO_DB_IN_TRANSPORT("Routers and server/trpc/"), NO_APP],
  http: [NO_APP],
  serverTests: [],
  domain: [...NO_TRANSPORT_IN_DOMAIN, NO_ROUTER_IN_DOMAIN, NO_APP],
  trainer: [
    ...below("trainer", ["server", "db", "app"]),
    ...noPackages("trainer", ["@trpc/server", "next", "drizzle-orm", "better-sqlite3", "pg"]),
  ],
  contracts: [
    ...below("contracts", ["server", "db", "app", "trainer"]),
    ...noPackages("contracts", ["@trpc/server", "next", "drizzle-orm", "better-sqlite3", "pg"]),
  ],
  db: [...below("db", ["server", "app", "trainer"]), ...noPackages("db", ["@trpc/server", "next"])],
};

/** Pages and components: types only from server/ and trainer/, nothing from db/ or the database packages. */
const PAGE_VALUE_MESSAGE =
  "Pages and components import only TYPES from server/ and trainer/ (`import type`): data comes through tRPC (app/_trpc), shared values belong in contracts/.";
const PAGE_DB_MESSAGE = "Pages and components never import the database: data comes through tRPC (app/_trpc).";
const PAGE_RESTRICTIONS = {
  paths: [
    { name: "drizzle-orm", message: PAGE_DB_MESSAGE },
    { name: "better-sqlite3", message: PAGE_DB_MESSAGE },
    { name: "pg", message: PAGE_DB_MESSAGE },
    { name: "@trpc/server", allowTypeImports: true, message: PAGE_VALUE_MESSAGE },
  ],
  patterns: [
    { group: ["@/server", "@/server/*"], allowTypeImports: true, message: PAGE_VALUE_MESSAGE },
    { group: ["@/trainer", "@/trainer/*"], allowTypeImports: true, message: PAGE_VALUE_MESSAGE },
    { group: ["@/db", "@/db/*"], message: PAGE_DB_MESSAGE },
    // Parent-relative forms (`../../server/x` from app/foo/page.tsx). app/ has no folders of these names, so a
    // `../` chain ending in one can only leave app/.
    { regex: "^(\\.\\./)+(server|trainer)(/|$)", allowTypeImports: true, message: PAGE_VALUE_MESSAGE },
    { regex: "^(\\.\\./)+db(/|$)", message: PAGE_DB_MESSAGE },
  ],
};

const layerBlocks = Object.entries(ZONES).map(([layer, zones]) => ({
  name: `runledger/layers/${layer}`,
  files: LAYERS[layer].files,
  ignores: LAYERS[layer].ignores,
  rules: {
    "import-x/no-restricted-paths": zones.length > 0 ? ["error", { basePath: ROOT, zones }] : "off",
    "import-x/no-unresolved": "error",
  },
}));

export default defineConfig(
  globalIgnores(
    [
      "node_modules/**",
      ".next/**",
      "data/**",
      "test-results/**",
      "playwright-report/**",
      "db/migrations/**",
      "next-env.d.ts",
      "**/*.tsbuildinfo",
      "tmp/**",
    ],
    "runledger/ignores",
  ),
  js.configs.recommended,
  tseslint.configs.recommended,
  {
    name: "runledger/base",
    files: ["**/*.{ts,tsx,mts,cts,js,mjs,cjs}"],
    plugins: { "import-x": importX },
    languageOptions: { ecmaVersion: 2023, globals: { ...globals.node } },
    linterOptions: { reportUnusedDisableDirectives: "error" },
    settings: {
      "import-x/resolver-next": [createTypeScriptImportResolver({ project: path.join(ROOT, "tsconfig.json"), alwaysTryTypes: true })],
    },
    rules: {
      // `_`-prefixed names are deliberately unused (a required positional parameter, a destructured-away field).
      "@typescript-eslint/no-unused-vars": [
        "error",
        {
          argsIgnorePattern: "^_",
          varsIgnorePattern: "^_",
          caughtErrorsIgnorePattern: "^_",
          destructuredArrayIgnorePattern: "^_",
          ignoreRestSiblings: true,
        },
      ],
      // Every control-character class in this tree is there to reject control characters (names, notes, canonical
      // JSON, redirects): the rule would flag only deliberate uses.
      "no-control-regex": "off",
      "@typescript-eslint/consistent-type-imports": [
        "error",
        { prefer: "type-imports", fixStyle: "inline-type-imports", disallowTypeAnnotations: false },
      ],
    },
  },
  {
    name: "runledger/commonjs",
    // Worker bootstraps (*.cjs) load TypeScript through tsx's require hook: CommonJS by necessity.
    files: ["**/*.cjs", "next.config.js"],
    languageOptions: { sourceType: "commonjs", globals: { ...globals.node } },
    rules: { "@typescript-eslint/no-require-imports": "off" },
  },
  {
    name: "runledger/browser",
    files: ["app/**/*.{ts,tsx}"],
    ignores: ["app/api/**"],
    languageOptions: { globals: { ...globals.browser } },
  },
  {
    name: "runledger/react-hooks",
    files: ["app/**/*.tsx", "app/**/use-*.ts"],
    plugins: { "react-hooks": reactHooks },
    rules: {
      // The hook rules plus the React Compiler's checks (refs read during render, setState in an effect, impure
      // render...): they flag real re-render and stale-value bugs whether or not the compiler is used.
      ...reactHooks.configs.flat.recommended.rules,
      // A missing dependency is a stale-value bug: an error, like the rest. A deliberate omission says why in its
      // eslint-disable comment (`-- reason`).
      "react-hooks/exhaustive-deps": "error",
      // Only says the React Compiler would skip a component (e.g. TanStack Virtual's hooks); this app does not use it.
      "react-hooks/incompatible-library": "off",
    },
  },
  ...layerBlocks,
  {
    name: "runledger/layers/pages",
    files: LAYERS.pages.files,
    ignores: LAYERS.pages.ignores,
    rules: {
      "@typescript-eslint/no-restricted-imports": ["error", PAGE_RESTRICTIONS],
      "import-x/no-unresolved": "error",
    },
  },
  prettierConfig,
);
