// Every table here has its PostgreSQL form in db/schema-pg (same export name, columns, keys and indexes):
// db/tests/schema-dialects.test.ts fails until a change is made on both sides (db/schema-pg/README.md says how).
export * from "./users";
export * from "./projects";
export * from "./datasets";
export * from "./runs";
export * from "./registry";
export * from "./audit";
export * from "./audit-tree";
export * from "./documents";
export * from "./witness";
export * from "./pilot";
export * from "./run-leases";
export * from "./api";
export * from "./sweeps";
export * from "./throttle";
export * from "./resume-states";
