/**
 * Types of what TypeScript imports from the standalone verifier (verify-bundle.mjs is plain JavaScript on Node's
 * standard library, shipped in every bundle); only the functions the server shares with it are declared.
 */
export type ProvLineageProblem = { entityId: string; field: string; recorded: unknown; found: unknown; message: string };

/** lineage.prov.json (parsed) against facts.json (parsed): every node, attribute and relation, and the version's ancestry. */
export function provLineageProblems(prov: unknown, facts: unknown): { checked: number; problems: ProvLineageProblem[] };
