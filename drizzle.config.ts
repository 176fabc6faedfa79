import { defineConfig } from "drizzle-kit";

// Migrations are generated from db/schema and committed; the app applies them at start with migrate().
export default defineConfig({
  dialect: "sqlite",
  schema: "./db/schema/index.ts",
  out: "./db/migrations",
});
