/**
 * Proves the layer boundaries of eslint.config.mjs hold: each forbidden edge of ARCHITECTURE.md, written both with
 * the `@/` alias and as a parent-relative path, makes the real config report an error from its boundary rule, and
 * the allowed edges (the AppRouter type in a page, a service on drizzle-orm, a router on its service) report none.
 *
 * Invariants: the code is linted as if it lived at the given path (ESLint's lintText with filePath), so the test
 * needs no fixture files, and every imported module is one that exists in the tree (an unresolvable import would be
 * reported by import-x/no-unresolved, never silently pass the path rule).
 */
import path from "node:path";
import { ESLint } from "eslint";
import { beforeAll, describe, expect, it } from "vitest";

const ROOT = path.resolve(__dirname, "../..");
const PATH_RULE = "import-x/no-restricted-paths";
const PAGE_RULE = "@typescript-eslint/no-restricted-imports";
const BOUNDARY_RULES = new Set([PATH_RULE, PAGE_RULE, "import-x/no-unresolved"]);

let eslint: ESLint;
beforeAll(() => {
  eslint = new ESLint({ cwd: ROOT, cache: false });
});

/** The boundary problems ESLint reports for `code` placed at `filePath` (other rules, e.g. unused imports, ignored). */
async function boundaryProblems(filePath: string, code: string) {
  const [result] = await eslint.lintText(code, { filePath: path.join(ROOT, filePath) });
  expect(result?.messages.filter((m) => m.fatal)).toEqual([]);
  return (result?.messages ?? [])
    .filter((m) => m.ruleId !== null && BOUNDARY_RULES.has(m.ruleId))
    .map((m) => ({ rule: m.ruleId, message: m.message }));
}

const forbidden: { edge: string; file: string; code: string; rule: string; says: RegExp }[] = [
  {
    edge: "router -> db (alias)",
    file: "server/runs/router.ts",
    code: `import { openDatabase } from "@/db/client";\nexport { openDatabase };\n`,
    rule: PATH_RULE,
    says: /never touch the database/,
  },
  {
    edge: "router -> db (relative)",
    file: "server/runs/router.ts",
    code: `import { openDatabase } from "../../db/client";\nexport { openDatabase };\n`,
    rule: PATH_RULE,
    says: /never touch the database/,
  },
  {
    edge: "router -> drizzle-orm",
    file: "server/projects/router.ts",
    code: `import { eq } from "drizzle-orm";\nexport { eq };\n`,
    rule: PATH_RULE,
    says: /drizzle-orm/,
  },
  {
    edge: "router -> pg (the PostgreSQL driver)",
    file: "server/runs/router.ts",
    code: `import pg from "pg";\nexport { pg };\n`,
    rule: PATH_RULE,
    says: /PostgreSQL driver belongs in db/,
  },
  {
    edge: "router -> better-sqlite3 (typed by @types/better-sqlite3)",
    file: "server/projects/router.ts",
    code: `import Database from "better-sqlite3";\nexport { Database };\n`,
    rule: PATH_RULE,
    says: /the driver belongs in db/,
  },
  {
    edge: "trainer -> pg",
    file: "trainer/fit.ts",
    code: `import pg from "pg";\nexport { pg };\n`,
    rule: PATH_RULE,
    says: /imports no pg/,
  },
  {
    edge: "tRPC setup -> db, even a type",
    file: "server/trpc/init.ts",
    code: `import type { Db } from "@/db/client";\nexport type { Db };\n`,
    rule: PATH_RULE,
    says: /never touch the database/,
  },
  {
    edge: "route handler -> db",
    file: "app/api/trpc/[trpc]/route.ts",
    code: `import { openDatabase } from "@/db/client";\nexport { openDatabase };\n`,
    rule: PATH_RULE,
    says: /never touch the database/,
  },
  {
    edge: "service -> @trpc/server",
    file: "server/runs/service.ts",
    code: `import { TRPCError } from "@trpc/server";\nexport { TRPCError };\n`,
    rule: PATH_RULE,
    says: /DomainError/,
  },
  {
    edge: "service -> next/server",
    file: "server/registry/service.ts",
    code: `import { NextResponse } from "next/server";\nexport { NextResponse };\n`,
    rule: PATH_RULE,
    says: /Next\.js/,
  },
  {
    edge: "service -> server/trpc",
    file: "server/runs/service.ts",
    code: `import { appRouter } from "@/server/trpc/root";\nexport { appRouter };\n`,
    rule: PATH_RULE,
    says: /transport/,
  },
  {
    edge: "service -> server/http (relative)",
    file: "server/audit/report/collect-report.ts",
    code: `import * as http from "../../http/same-origin";\nexport { http };\n`,
    rule: PATH_RULE,
    says: /transport/,
  },
  {
    edge: "service -> a router",
    file: "server/runs/service.ts",
    code: `import * as r from "./router";\nexport { r };\n`,
    rule: PATH_RULE,
    says: /router/,
  },
  {
    edge: "domain -> app",
    file: "server/cli/main.ts",
    code: `import * as page from "@/app/page";\nexport { page };\n`,
    rule: PATH_RULE,
    says: /top layer/,
  },
  {
    edge: "trainer -> server (alias)",
    file: "trainer/fit.ts",
    code: `import { DomainError } from "@/server/errors";\nexport { DomainError };\n`,
    rule: PATH_RULE,
    says: /sits below it/,
  },
  {
    edge: "trainer -> server (relative)",
    file: "trainer/data/split.ts",
    code: `import { DomainError } from "../../server/errors";\nexport { DomainError };\n`,
    rule: PATH_RULE,
    says: /sits below it/,
  },
  {
    edge: "trainer -> db",
    file: "trainer/fit.ts",
    code: `import type { Db } from "@/db/client";\nexport type { Db };\n`,
    rule: PATH_RULE,
    says: /sits below it/,
  },
  {
    edge: "trainer -> drizzle-orm",
    file: "trainer/run-job.ts",
    code: `import { sql } from "drizzle-orm";\nexport { sql };\n`,
    rule: PATH_RULE,
    says: /library below the server/,
  },
  {
    edge: "db -> @trpc/server",
    file: "db/client.ts",
    code: `import { TRPCError } from "@trpc/server";\nexport { TRPCError };\n`,
    rule: PATH_RULE,
    says: /library below the server/,
  },
  {
    edge: "contracts -> trainer",
    file: "contracts/canonical.ts",
    code: `import type { Table } from "@/trainer/types";\nexport type { Table };\n`,
    rule: PATH_RULE,
    says: /sits below it/,
  },
  {
    edge: "contracts -> server",
    file: "contracts/training-config.ts",
    code: `import { DomainError } from "../server/errors";\nexport { DomainError };\n`,
    rule: PATH_RULE,
    says: /sits below it/,
  },
  {
    edge: "db -> server (alias)",
    file: "db/client.ts",
    code: `import { DomainError } from "@/server/errors";\nexport { DomainError };\n`,
    rule: PATH_RULE,
    says: /sits below it/,
  },
  {
    edge: "db -> server (relative)",
    file: "db/schema/index.ts",
    code: `import { DomainError } from "../../server/errors";\nexport { DomainError };\n`,
    rule: PATH_RULE,
    says: /sits below it/,
  },
  {
    edge: "page -> server value (alias)",
    file: "app/account/page.tsx",
    code: `import { DomainError } from "@/server/errors";\nexport { DomainError };\n`,
    rule: PAGE_RULE,
    says: /only TYPES/,
  },
  {
    edge: "page -> server value (relative)",
    file: "app/account/page.tsx",
    code: `import { DomainError } from "../../server/errors";\nexport { DomainError };\n`,
    rule: PAGE_RULE,
    says: /only TYPES/,
  },
  {
    edge: "page -> server, value and type mixed",
    file: "app/page.tsx",
    code: `import { DomainError, type DomainErrorKind } from "@/server/errors";\nexport { DomainError, type DomainErrorKind };\n`,
    rule: PAGE_RULE,
    says: /only TYPES/,
  },
  {
    edge: "component -> trainer value",
    file: "app/_components/hash.tsx",
    code: `import * as t from "@/trainer/types";\nexport { t };\n`,
    rule: PAGE_RULE,
    says: /only TYPES/,
  },
  {
    edge: "page -> db, even a type",
    file: "app/users/page.tsx",
    code: `import type { Db } from "@/db/client";\nexport type { Db };\n`,
    rule: PAGE_RULE,
    says: /never import the database/,
  },
  {
    edge: "page -> drizzle-orm",
    file: "app/users/page.tsx",
    code: `import { eq } from "drizzle-orm";\nexport { eq };\n`,
    rule: PAGE_RULE,
    says: /never import the database/,
  },
];

const allowed: { edge: string; file: string; code: string }[] = [
  {
    edge: "page -> the AppRouter type",
    file: "app/_trpc/client.tsx",
    code: `import type { AppRouter } from "@/server/trpc/root";\nexport type { AppRouter };\n`,
  },
  {
    edge: "component -> a server type, inline form",
    file: "app/audit/verification-panel.tsx",
    code: `import { type DomainErrorKind } from "@/server/errors";\nexport type { DomainErrorKind };\n`,
  },
  {
    edge: "page -> contracts value",
    file: "app/runs/page.tsx",
    code: `import { sha256Hex } from "@/contracts/canonical";\nexport { sha256Hex };\n`,
  },
  {
    edge: "route handler -> tRPC root and app-context",
    file: "app/api/trpc/[trpc]/route.ts",
    code: `import { appRouter } from "@/server/trpc/root";\nimport { getAppServices } from "@/server/app-context/app-services";\nexport { appRouter, getAppServices };\n`,
  },
  {
    edge: "service -> drizzle-orm, db and DomainError",
    file: "server/runs/service.ts",
    code: `import { eq } from "drizzle-orm";\nimport { openDatabase } from "@/db/client";\nimport { DomainError } from "@/server/errors";\nexport { eq, openDatabase, DomainError };\n`,
  },
  { edge: "router -> its service", file: "server/runs/router.ts", code: `import * as service from "./service";\nexport { service };\n` },
  {
    edge: "tRPC setup -> @trpc/server and DomainError",
    file: "server/trpc/domain-error-mapping.ts",
    code: `import { TRPCError } from "@trpc/server";\nimport { DomainError } from "@/server/errors";\nexport { TRPCError, DomainError };\n`,
  },
  {
    edge: "trainer -> contracts",
    file: "trainer/fit.ts",
    code: `import { sha256Hex } from "@/contracts/canonical";\nexport { sha256Hex };\n`,
  },
  {
    edge: "server test -> a route handler and TRPCError",
    file: "server/tests/route-session.test.ts",
    code: `import { TRPCError } from "@trpc/server";\nimport * as route from "@/app/api/trpc/[trpc]/route";\nexport { TRPCError, route };\n`,
  },
];

describe("layer boundaries (eslint.config.mjs)", () => {
  it.each(forbidden)("fails: $edge", async ({ file, code, rule, says }) => {
    const problems = await boundaryProblems(file, code);
    expect(problems.length).toBeGreaterThan(0);
    expect(problems.every((p) => p.rule === rule)).toBe(true);
    expect(problems.map((p) => p.message).join("\n")).toMatch(says);
  });

  it.each(allowed)("passes: $edge", async ({ file, code }) => {
    expect(await boundaryProblems(file, code)).toEqual([]);
  });
});
