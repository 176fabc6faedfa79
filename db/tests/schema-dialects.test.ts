/**
 * The two dialects of the schema stay in step: every table of db/schema (SQLite) has its PostgreSQL form in
 * db/schema-pg, exported under the same name, with the same columns (keys, names, storage class, nullability, primary
 * key, autoincrement, unique, defaults, enum values), the same composite primary keys, unique constraints, indexes
 * and foreign keys. Read from drizzle's table configs (getTableConfig): no database needed.
 *
 * Storage classes, chosen so that the same values round-trip on both stores (db/schema-pg/README.md):
 * SQLite integer → bigint (mode number; SQLite integers are 64-bit), integer mode boolean → boolean, real → double
 * precision, text → text (JSON stays text, so canonical bytes are identical), blob (buffer) → bytea.
 */
import { describe, expect, it } from "vitest";
import { getTableColumns, is, type Column } from "drizzle-orm";
import { SQLiteTable, getTableConfig as sqliteConfig, sqliteTable, integer, text, index } from "drizzle-orm/sqlite-core";
import { PgTable, getTableConfig as pgConfig, pgTable, bigint, text as pgText, index as pgIndex } from "drizzle-orm/pg-core";
import * as sqliteSchema from "../schema";
import * as pgSchema from "../schema-pg";

/** The storage class of a column, the same word on both sides when the types correspond. */
function storageClass(c: Column): string {
  switch (c.columnType) {
    case "SQLiteInteger":
    case "PgBigInt53":
      return "integer";
    case "SQLiteBoolean":
    case "PgBoolean":
      return "boolean";
    case "SQLiteReal":
    case "PgDoublePrecision":
      return "float64";
    case "SQLiteText":
    case "PgText":
      return "text";
    case "SQLiteBlobBuffer":
      return "bytes";
    case "PgCustomColumn":
      if (c.getSQLType() === "bytea") return "bytes";
  }
  return `unmapped ${c.columnType} (${c.getSQLType()})`;
}

type AnyTable = SQLiteTable | PgTable;

/** Everything about a table that must agree across dialects, as plain comparable data. */
function shape(table: AnyTable) {
  const cfg = is(table, SQLiteTable) ? sqliteConfig(table) : pgConfig(table as PgTable);
  const columnName = (c: { name: string }) => c.name;
  const tableName = (t: AnyTable) => (is(t, SQLiteTable) ? sqliteConfig(t) : pgConfig(t as PgTable)).name;
  const columns = Object.fromEntries(
    Object.entries(getTableColumns(table)).map(([key, c]) => {
      const autoIncrement = is(table, SQLiteTable)
        ? (c as Column & { autoIncrement?: boolean }).autoIncrement === true
        : (c as Column & { generatedIdentity?: { type: string } }).generatedIdentity?.type === "byDefault";
      return [
        key,
        {
          name: c.name,
          storage: storageClass(c),
          notNull: c.notNull,
          primary: c.primary,
          autoIncrement,
          unique: c.isUnique ? (c.uniqueName ?? true) : false,
          default: c.default === undefined ? null : JSON.stringify(c.default),
          enumValues: c.enumValues ?? null,
        },
      ];
    }),
  );
  return {
    name: cfg.name,
    columns,
    primaryKeys: cfg.primaryKeys.map((pk) => `${pk.getName()} (${pk.columns.map(columnName).join(", ")})`).sort(),
    uniqueConstraints: cfg.uniqueConstraints.map((u) => `${u.getName()} (${u.columns.map(columnName).join(", ")})`).sort(),
    indexes: cfg.indexes
      .map((i) => {
        const cols = i.config.columns.map((c) => ("name" in c && typeof c.name === "string" ? c.name : "<expression>"));
        return `${i.config.name}${i.config.unique ? " unique" : ""} (${cols.join(", ")})`;
      })
      .sort(),
    foreignKeys: cfg.foreignKeys
      .map((fk) => {
        const r = fk.reference();
        return `${r.columns.map(columnName).join(", ")} -> ${tableName(r.foreignTable as AnyTable)}(${r.foreignColumns.map(columnName).join(", ")})`;
      })
      .sort(),
  };
}

/** Plain-words differences between a SQLite table and its PostgreSQL form; [] when they agree. */
function differences(sqlite: SQLiteTable, pg: PgTable): string[] {
  const a = shape(sqlite);
  const b = shape(pg);
  const out: string[] = [];
  if (a.name !== b.name) out.push(`table name: SQLite ${a.name}, PostgreSQL ${b.name}`);
  for (const key of new Set([...Object.keys(a.columns), ...Object.keys(b.columns)])) {
    const x = a.columns[key];
    const y = b.columns[key];
    if (!x) out.push(`${a.name}.${key}: only in PostgreSQL`);
    else if (!y) out.push(`${a.name}.${key}: only in SQLite`);
    else
      for (const prop of Object.keys(x) as (keyof typeof x)[]) {
        if (JSON.stringify(x[prop]) !== JSON.stringify(y[prop]))
          out.push(`${a.name}.${key} ${prop}: SQLite ${JSON.stringify(x[prop])}, PostgreSQL ${JSON.stringify(y[prop])}`);
      }
  }
  for (const part of ["primaryKeys", "uniqueConstraints", "indexes", "foreignKeys"] as const) {
    const onlyA = a[part].filter((s) => !b[part].includes(s));
    const onlyB = b[part].filter((s) => !a[part].includes(s));
    if (onlyA.length) out.push(`${a.name} ${part} only in SQLite: ${onlyA.join("; ")}`);
    if (onlyB.length) out.push(`${a.name} ${part} only in PostgreSQL: ${onlyB.join("; ")}`);
  }
  return out;
}

const tablesOf = <T>(mod: Record<string, unknown>, cls: new (...args: never[]) => T) =>
  new Map(Object.entries(mod).filter((entry): entry is [string, T] => is(entry[1], cls as never)));

const sqliteTables = tablesOf(sqliteSchema, SQLiteTable);
const pgTables = tablesOf(pgSchema, PgTable);

describe("schema dialects (db/schema vs db/schema-pg)", () => {
  it("export the same tables under the same names", () => {
    expect(sqliteTables.size).toBeGreaterThanOrEqual(30);
    expect([...pgTables.keys()].sort()).toEqual([...sqliteTables.keys()].sort());
  });

  for (const [exportName, sqlite] of sqliteTables) {
    it(`${exportName}: same columns, keys, constraints and indexes`, () => {
      const pg = pgTables.get(exportName);
      expect(pg, `db/schema-pg exports no ${exportName}`).toBeDefined();
      expect(differences(sqlite, pg!)).toEqual([]);
      // Nothing unmapped on either side: every column has a storage class the other dialect shares.
      for (const c of [...Object.values(shape(sqlite).columns), ...Object.values(shape(pg!).columns)])
        expect(c.storage).not.toMatch(/^unmapped/);
    });
  }

  it("the comparison catches a column, a nullability, a type, an index or a key on one side only", () => {
    const base = sqliteTable("t", { id: integer("id").primaryKey({ autoIncrement: true }), a: text("a").notNull() }, (t) => [
      index("t_a").on(t.a),
    ]);
    const same = pgTable(
      "t",
      { id: bigint("id", { mode: "number" }).primaryKey().generatedByDefaultAsIdentity(), a: pgText("a").notNull() },
      (t) => [pgIndex("t_a").on(t.a)],
    );
    expect(differences(base, same)).toEqual([]);

    const extraColumn = pgTable(
      "t",
      {
        id: bigint("id", { mode: "number" }).primaryKey().generatedByDefaultAsIdentity(),
        a: pgText("a").notNull(),
        b: pgText("b"),
      },
      (t) => [pgIndex("t_a").on(t.a)],
    );
    expect(differences(base, extraColumn)).toEqual(["t.b: only in PostgreSQL"]);

    const nullable = pgTable(
      "t",
      { id: bigint("id", { mode: "number" }).primaryKey().generatedByDefaultAsIdentity(), a: pgText("a") },
      (t) => [pgIndex("t_a").on(t.a)],
    );
    expect(differences(base, nullable)).toEqual(["t.a notNull: SQLite true, PostgreSQL false"]);

    const otherType = pgTable("t", { id: pgText("id").primaryKey(), a: pgText("a").notNull() }, (t) => [pgIndex("t_a").on(t.a)]);
    expect(differences(base, otherType)).toEqual([
      't.id storage: SQLite "integer", PostgreSQL "text"',
      "t.id autoIncrement: SQLite true, PostgreSQL false",
    ]);

    const uniqueIndex = pgTable(
      "t",
      { id: bigint("id", { mode: "number" }).primaryKey().generatedByDefaultAsIdentity(), a: pgText("a").notNull().unique() },
      (t) => [pgIndex("t_a").on(t.a)],
    );
    expect(differences(base, uniqueIndex)).toEqual(['t.a unique: SQLite false, PostgreSQL "t_a_unique"']);

    const noIndex = pgTable("t", {
      id: bigint("id", { mode: "number" }).primaryKey().generatedByDefaultAsIdentity(),
      a: pgText("a").notNull(),
    });
    expect(differences(base, noIndex)).toEqual(["t indexes only in SQLite: t_a (a)"]);
  });
});
