/** How each kind of search result is named in the search box and on /search (server/search/queries.ts kinds). */
import type { SearchKind } from "@/server/search/queries";

export const SEARCH_KIND_LABEL: Record<SearchKind, string> = {
  project: "Projects",
  experiment: "Experiments",
  run: "Runs",
  model: "Models",
  modelVersion: "Model versions",
  dataset: "Datasets",
};

export const SEARCH_BOX_ID = "global-search";

export function searchPageHref(q: string): string {
  return `/search?q=${encodeURIComponent(q.trim())}`;
}
