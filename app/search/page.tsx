"use client";
/**
 * All results of a global search: /search?q=… (the search box's "See all results", or Enter with no result chosen).
 * Same server query as the box (search.global), up to 50 results per kind, grouped by kind with links; a kind with
 * more says so. A form at the top searches again.
 */
import { Suspense, useState } from "react";
import Link from "next/link";
import { useRouter, useSearchParams } from "next/navigation";
import { useQuery } from "@tanstack/react-query";
import { useTRPC } from "@/app/_trpc/client";
import { Shell } from "@/app/_components/shell";
import { Empty, ErrorState, Loading } from "@/app/_components/states";
import { SEARCH_KIND_LABEL, searchPageHref } from "@/app/_components/search-kinds";

const PAGE_LIMIT = 50;

function Results() {
  const trpc = useTRPC();
  const router = useRouter();
  const q = (useSearchParams().get("q") ?? "").trim();
  const [text, setText] = useState(q);
  const search = useQuery({ ...trpc.search.global.queryOptions({ q, limit: PAGE_LIMIT }), enabled: q.length > 0 });
  return (
    <>
      <form
        role="search"
        className="row"
        onSubmit={(e) => {
          e.preventDefault();
          if (text.trim()) router.push(searchPageHref(text));
        }}
      >
        <input aria-label="Search for" value={text} onChange={(e) => setText(e.target.value)} style={{ flex: "1 1 240px" }} />
        <button type="submit">Search</button>
      </form>
      {!q ? (
        <Empty
          title="Type something to search for"
          hint="Names of projects, experiments, runs, models and datasets; run tags and descriptions."
        />
      ) : search.isPending ? (
        <Loading what="Searching" />
      ) : search.error ? (
        <ErrorState error={search.error} title="Could not search" />
      ) : search.data.total === 0 ? (
        <Empty title={`Nothing matches “${q}”`} hint="The search matches part of a name, a run's tag or description, literally." />
      ) : (
        <>
          <p className="muted" role="status">
            {search.data.total} result{search.data.total === 1 ? "" : "s"} for “{q}”
          </p>
          {search.data.groups
            .filter((g) => g.hits.length > 0)
            .map((g) => (
              <section className="panel" key={g.kind} aria-label={SEARCH_KIND_LABEL[g.kind]}>
                <h2 style={{ marginTop: 0 }}>
                  {SEARCH_KIND_LABEL[g.kind]} <span className="badge">{g.hits.length}</span>
                </h2>
                <ul>
                  {g.hits.map((h) => (
                    <li key={h.id}>
                      <Link href={h.href}>{h.title}</Link>
                      {h.context ? <span className="muted"> · {h.context}</span> : null}
                      {h.matched !== "name" ? <span className="muted"> · matched on {h.matched}</span> : null}
                    </li>
                  ))}
                </ul>
                {g.more ? <p className="muted">Only the newest {PAGE_LIMIT} are listed; refine the search to see the others.</p> : null}
              </section>
            ))}
        </>
      )}
    </>
  );
}

export default function SearchPage() {
  return (
    <Shell>
      {() => (
        <>
          <h1>Search</h1>
          <p className="subtitle">Projects, experiments, runs (name, tag, description), models, model versions and datasets.</p>
          <Suspense fallback={<Loading what="Loading" />}>
            <Results />
          </Suspense>
        </>
      )}
    </Shell>
  );
}
