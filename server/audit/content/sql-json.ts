/**
 * SQL expressions giving a column's JSON text as JavaScript would print the value better-sqlite3 reads, or NULL
 * when they cannot be sure (so a payload text built with them is NULL, never equal to a payload, and the row goes
 * to the JavaScript check, which decides): check-checkpoints-sql.ts and check-evaluations-sql.ts build the fast-path
 * payload texts with them.
 */

export const SAFE_INTEGER = 9007199254740991;

/** JSON text of an integer column, as JavaScript prints it; NULL when not a safe integer (a REAL, a text, a BLOB...). */
export const int = (col: string) =>
  `(CASE WHEN typeof(${col}) = 'integer' AND ${col} BETWEEN -${SAFE_INTEGER} AND ${SAFE_INTEGER} THEN CAST(${col} AS TEXT) END)`;

/** As int(), with SQL NULL printed as null. */
export const intOrNull = (col: string) => `(CASE WHEN ${col} IS NULL THEN 'null' ELSE ${int(col)} END)`;

/** JSON text of a text column that needs no escaping (then JSON.stringify prints the same); NULL otherwise. */
export const str = (col: string) =>
  `(CASE WHEN typeof(${col}) = 'text' AND json_quote(${col}) = '"' || ${col} || '"' THEN '"' || ${col} || '"' END)`;

/** A text column holding JSON text inserted as it is (the JavaScript text embeds the string); NULL when not a TEXT. */
export const rawText = (col: string) => `(CASE WHEN typeof(${col}) = 'text' THEN ${col} END)`;
