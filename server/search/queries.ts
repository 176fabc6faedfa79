/**
 * Global search (the search box in the top bar and /search): projects, experiments (by name, description or a
 * tracking-API tag "key=value"), runs (by name, tag, description or tracking-API tag), models, model versions and datasets whose text contains the query, grouped by kind.
 *
 * Invariants:
 * - Read-only; any signed-in role may search (every role may already read all of these rows).
 * - The query is matched literally and case-insensitively (ASCII) as a substring: `%`, `_` and `\` are escaped and
 *   the pattern uses `ESCAPE '\'`, so "a_b" does not match "axb" and "100%" does not match "1000".
 * - Each kind returns at most `limit` rows (newest first) plus whether more exist (`more`), so one request never
 *   reads an unbounded result; the SQL is bound (drizzle `sql` template), never concatenated.
 * - The search reads the tables of several domains; like the verifier and the report, it reads them only. It runs on
 *   either store (issue 16) with the same answers (searchGlobal).
 */
import { sql, type SQL } from "drizzle-orm";
import { z } from "zod";
import type { Db } from "@/db/client";
import { asStore, type Store } from "@/db/store";

export const SEARCH_MAX_QUERY_LENGTH = 100;
export const SEARCH_DEFAULT_LIMIT = 5;
export const SEARCH_MAX_LIMIT = 50;

export const searchInput = z.object({
  q: z
    .string()
    .trim()
    .min(1, "type something to search for")
    .max(SEARCH_MAX_QUERY_LENGTH, `a search is at most ${SEARCH_MAX_QUERY_LENGTH} characters; shorten it`),
  limit: z.number().int().min(1).max(SEARCH_MAX_LIMIT).default(SEARCH_DEFAULT_LIMIT),
});
export type SearchInput = z.input<typeof searchInput>;

export const SEARCH_KINDS = ["project", "experiment", "run", "model", "modelVersion", "dataset"] as const;
export type SearchKind = (typeof SEARCH_KINDS)[number];

export type SearchHit = {
  kind: SearchKind;
  id: number;
  /** What the result is called (run name, "model v2", …). */
  title: string;
  /** Where it sits (project / experiment) or what it is. */
  context: string;
  /** Which field matched: name, tag, description, … */
  matched: string;
  href: string;
};
export type SearchGroup = { kind: SearchKind; hits: SearchHit[]; more: boolean };
export type SearchResult = { q: string; groups: SearchGroup[]; total: number };

/** `text` as a LIKE pattern matching it literally anywhere (escape character `\`). */
export function likeContains(text: string): string {
  return `%${text.replace(/[\\%_]/g, (c) => `\\${c}`)}%`;
}

type Row = { id: number; title: string; context: string; matched: string; extra: string | null };

function group(kind: SearchKind, rows: Row[], limit: number, href: (r: Row) => string): SearchGroup {
  return {
    kind,
    more: rows.length > limit,
    hits: rows.slice(0, limit).map((r) => ({ kind, id: r.id, title: r.title, context: r.context, matched: r.matched, href: href(r) })),
  };
}

/**
 * The search on either store (issue 16), one SQL text per kind with two dialect fragments: the ASCII-only
 * case-insensitive match (SQLite's LIKE; PostgreSQL's ILIKE under COLLATE "C", which folds ASCII letters only whatever
 * the database's locale) and byte order for the tag picked when several match (SQLite's BINARY).
 */
export async function searchGlobal(db: Store | Db, input: z.output<typeof searchInput>): Promise<SearchResult> {
  const store = asStore(db);
  const p = likeContains(input.q);
  const n = input.limit + 1; // one more than shown, to say whether there are more
  const pg = store.dialect === "pg";
  // Ids are bigint on PostgreSQL, which node-postgres returns as text.
  const all = async (query: SQL): Promise<Row[]> => {
    const found = store.dialect === "sqlite" ? store.db.all<Row>(query) : (await store.db.execute<Row>(query)).rows;
    return found.map((r) => ({ ...r, id: Number(r.id) }));
  };
  const like = (col: SQL) => (pg ? sql`(${col}) COLLATE "C" ILIKE ${p} ESCAPE '\\'` : sql`${col} LIKE ${p} ESCAPE '\\'`);
  const byBytes = (col: SQL) => (pg ? sql`${col} COLLATE "C"` : col);

  const projects = all(sql`
    SELECT id, name AS title, '' AS context,
           CASE WHEN ${like(sql`name`)} THEN 'name' ELSE 'description' END AS matched, NULL AS extra
    FROM projects WHERE ${like(sql`name`)} OR ${like(sql`description`)}
    ORDER BY id DESC LIMIT ${n}`);

  // Key/value tags set through the tracking API (experiment_tags, run_tag_values) match as "key=value".
  const kv = (alias: string) => like(sql.raw(`${alias}.key || '=' || ${alias}.value`));
  const experiments = all(sql`
    SELECT e.id, e.name AS title, 'project ' || p.name AS context,
           CASE WHEN ${like(sql`e.name`)} THEN 'name'
                WHEN ${like(sql`e.description`)} THEN 'description'
                ELSE 'tag ' || (SELECT t.key || '=' || t.value FROM experiment_tags t
                                WHERE t.experiment_id = e.id AND ${kv("t")} ORDER BY ${byBytes(sql`t.key`)} LIMIT 1) END AS matched,
           NULL AS extra
    FROM experiments e JOIN projects p ON p.id = e.project_id
    WHERE ${like(sql`e.name`)} OR ${like(sql`e.description`)}
       OR e.id IN (SELECT t.experiment_id FROM experiment_tags t WHERE ${kv("t")})
    ORDER BY e.id DESC LIMIT ${n}`);

  const runs = all(sql`
    SELECT r.id, r.name AS title, p.name || ' / ' || e.name AS context,
           CASE WHEN ${like(sql`r.name`)} THEN 'name'
                WHEN EXISTS (SELECT 1 FROM run_tags t WHERE t.run_id = r.id AND ${like(sql`t.tag`)})
                  THEN 'tag ' || (SELECT t.tag FROM run_tags t WHERE t.run_id = r.id AND ${like(sql`t.tag`)} ORDER BY ${byBytes(sql`t.tag`)} LIMIT 1)
                WHEN ${like(sql`r.description`)} THEN 'description'
                ELSE 'tag ' || (SELECT t.key || '=' || t.value FROM run_tag_values t
                                WHERE t.run_id = r.id AND ${kv("t")} ORDER BY ${byBytes(sql`t.key`)} LIMIT 1) END AS matched,
           NULL AS extra
    FROM runs r JOIN experiments e ON e.id = r.experiment_id JOIN projects p ON p.id = e.project_id
    WHERE ${like(sql`r.name`)} OR ${like(sql`r.description`)}
       OR r.id IN (SELECT t.run_id FROM run_tags t WHERE ${like(sql`t.tag`)})
       OR r.id IN (SELECT t.run_id FROM run_tag_values t WHERE ${kv("t")})
    ORDER BY r.id DESC LIMIT ${n}`);

  const models = all(sql`
    SELECT id, name AS title, '' AS context,
           CASE WHEN ${like(sql`name`)} THEN 'name' ELSE 'description' END AS matched, NULL AS extra
    FROM models WHERE ${like(sql`name`)} OR ${like(sql`description`)}
    ORDER BY id DESC LIMIT ${n}`);

  const versions = all(sql`
    SELECT v.id, m.name || ' v' || v.version AS title, 'from run #' || v.run_id AS context, 'name' AS matched,
           m.name || '|' || v.version AS extra
    FROM model_versions v JOIN models m ON m.id = v.model_id
    WHERE ${like(sql`m.name || ' v' || v.version`)}
    ORDER BY v.id DESC LIMIT ${n}`);

  const datasets = all(sql`
    SELECT id, name AS title, source AS context,
           CASE WHEN ${like(sql`name`)} THEN 'name' ELSE 'origin' END AS matched, NULL AS extra
    FROM datasets WHERE ${like(sql`name`)} OR ${like(sql`origin`)}
    ORDER BY id DESC LIMIT ${n}`);

  // Awaited together: on PostgreSQL the six statements go out at once (the pool's connections), and a failure in one
  // is never left unobserved while another is awaited.
  const [projectRows, experimentRows, runRows, modelRows, versionRows, datasetRows] = await Promise.all([
    projects,
    experiments,
    runs,
    models,
    versions,
    datasets,
  ]);
  const limit = input.limit;
  const groups: SearchGroup[] = [
    group("project", projectRows, limit, (r) => `/#project-${r.id}`),
    group("experiment", experimentRows, limit, (r) => `/experiments/${r.id}`),
    group("run", runRows, limit, (r) => `/runs/${r.id}`),
    group("model", modelRows, limit, (r) => `/models/${encodeURIComponent(r.title)}`),
    group("modelVersion", versionRows, limit, (r) => {
      const [name, version] = splitLast(r.extra ?? "", "|");
      return `/models/${encodeURIComponent(name)}/versions/${version}`;
    }),
    group("dataset", datasetRows, limit, (r) => `/datasets/${r.id}`),
  ];
  return { q: input.q, groups, total: groups.reduce((t, g) => t + g.hits.length, 0) };
}

function splitLast(s: string, sep: string): [string, string] {
  const i = s.lastIndexOf(sep);
  return [s.slice(0, i), s.slice(i + 1)];
}
