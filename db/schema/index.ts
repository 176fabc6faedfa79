export * from "./users";
export * from "./projects";
export * from "./datasets";
export * from "./runs";
export * from "./registry";
export * from "./audit";
export * from "./audit-tree";
export * from "./documents";
