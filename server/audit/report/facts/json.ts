/** JSON columns as the report's facts hold them: parsed once, nulls kept (report.json is plain data). */
export type Json = null | boolean | number | string | Json[] | { [k: string]: Json };

export const parseJson = <T>(s: string | null): T | null => (s === null ? null : (JSON.parse(s) as T));
