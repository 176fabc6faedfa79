"use client";
/**
 * The search box in the top bar: a combobox (ARIA 1.2 pattern) over the server's search.global query. Results are
 * grouped by kind (projects, experiments, runs, models, model versions, datasets) in a listbox; ArrowDown/ArrowUp
 * move through them (aria-activedescendant: focus stays in the box), Enter opens the active one (or, with none
 * active, the full results page /search?q=), Escape closes the list (and, when already closed, clears the box). The
 * last option, "See all results", opens /search. `/` anywhere else on the page focuses the box (keyboard-shortcuts.tsx).
 */
import { useEffect, useId, useMemo, useRef, useState } from "react";
import { useRouter } from "next/navigation";
import { useQuery } from "@tanstack/react-query";
import { useTRPC } from "@/app/_trpc/client";
import { SEARCH_BOX_ID, SEARCH_KIND_LABEL, searchPageHref } from "./search-kinds";
import "./search.css";

const DEBOUNCE_MS = 150;
const MAX_LENGTH = 100;

type Option = { key: string; href: string; title: string; context: string; matched: string; kind: string };

export function GlobalSearch() {
  const trpc = useTRPC();
  const router = useRouter();
  const listId = useId();
  const [text, setText] = useState("");
  const [q, setQ] = useState("");
  const [open, setOpen] = useState(false);
  const [active, setActive] = useState(-1);
  const box = useRef<HTMLDivElement>(null);

  useEffect(() => {
    const t = setTimeout(() => setQ(text.trim()), DEBOUNCE_MS);
    return () => clearTimeout(t);
  }, [text]);

  const search = useQuery({ ...trpc.search.global.queryOptions({ q }), enabled: q.length > 0 && q.length <= MAX_LENGTH });
  const fresh = search.data && search.data.q === q && q === text.trim();
  const groups = useMemo(() => (fresh ? search.data!.groups.filter((g) => g.hits.length > 0) : []), [fresh, search.data]);
  const options: Option[] = useMemo(() => {
    const list: Option[] = groups.flatMap((g) => g.hits.map((h) => ({ key: `${h.kind}-${h.id}`, ...h })));
    if (q) list.push({ key: "all", href: searchPageHref(q), title: `See all results for “${q}”`, context: "", matched: "", kind: "all" });
    return list;
  }, [groups, q]);

  useEffect(() => {
    const onDown = (e: MouseEvent) => {
      if (box.current && !box.current.contains(e.target as Node)) setOpen(false);
    };
    document.addEventListener("mousedown", onDown);
    return () => document.removeEventListener("mousedown", onDown);
  }, []);

  const go = (href: string) => {
    setOpen(false);
    setActive(-1);
    router.push(href);
  };

  const onKeyDown = (e: React.KeyboardEvent<HTMLInputElement>) => {
    if (e.key === "ArrowDown") {
      e.preventDefault();
      setOpen(true);
      setActive((i) => (options.length === 0 ? -1 : (i + 1) % options.length));
    } else if (e.key === "ArrowUp") {
      e.preventDefault();
      setOpen(true);
      setActive((i) => (options.length === 0 ? -1 : i <= 0 ? options.length - 1 : i - 1));
    } else if (e.key === "Enter") {
      e.preventDefault();
      const option = open ? options[active] : undefined;
      if (option) go(option.href);
      else if (text.trim()) go(searchPageHref(text));
    } else if (e.key === "Escape") {
      e.preventDefault();
      if (open && text) setOpen(false);
      else {
        setText("");
        setOpen(false);
        (e.target as HTMLInputElement).blur();
      }
    }
  };

  const tooLong = text.trim().length > MAX_LENGTH;
  const expanded = open && text.trim().length > 0;
  const optionId = (i: number) => `${listId}-opt-${i}`;
  const starts = groups.map((_, gi) => groups.slice(0, gi).reduce((n, g) => n + g.hits.length, 0));
  return (
    <div className="global-search" ref={box}>
      <input
        id={SEARCH_BOX_ID}
        type="search"
        role="combobox"
        aria-label="Search projects, experiments, runs, models and datasets"
        aria-autocomplete="list"
        aria-expanded={expanded}
        aria-controls={listId}
        aria-activedescendant={expanded && active >= 0 ? optionId(active) : undefined}
        placeholder="Search  ( / )"
        autoComplete="off"
        spellCheck={false}
        value={text}
        onChange={(e) => {
          setText(e.target.value);
          setOpen(true);
          setActive(-1);
        }}
        onFocus={() => setOpen(true)}
        onKeyDown={onKeyDown}
      />
      {expanded ? (
        <div className="global-search-popup">
          {tooLong ? (
            <p className="error-text" role="alert">
              A search is at most {MAX_LENGTH} characters; shorten it.
            </p>
          ) : search.error && q === text.trim() ? (
            <p className="error-text" role="alert">
              {search.error.message}
            </p>
          ) : !fresh ? (
            <p className="muted" role="status">
              Searching…
            </p>
          ) : groups.length === 0 ? (
            <p className="muted" role="status">
              Nothing matches “{q}”.
            </p>
          ) : null}
          <ul id={listId} role="listbox" aria-label="Search results">
            {groups.map((g, gi) => (
              <li key={g.kind} role="presentation">
                <div className="global-search-kind" aria-hidden="true">
                  {SEARCH_KIND_LABEL[g.kind]}
                </div>
                <ul role="group" aria-label={SEARCH_KIND_LABEL[g.kind]}>
                  {g.hits.map((h, hi) => {
                    const i = starts[gi]! + hi;
                    return (
                      <SearchOption
                        key={`${h.kind}-${h.id}`}
                        id={optionId(i)}
                        selected={i === active}
                        option={{ key: "", ...h }}
                        onPick={() => go(h.href)}
                        onHover={() => setActive(i)}
                      />
                    );
                  })}
                </ul>
              </li>
            ))}
            {q && !tooLong ? (
              <SearchOption
                id={optionId(options.length - 1)}
                selected={active === options.length - 1}
                option={options[options.length - 1]!}
                onPick={() => go(searchPageHref(q))}
                onHover={() => setActive(options.length - 1)}
              />
            ) : null}
          </ul>
        </div>
      ) : null}
    </div>
  );
}

function SearchOption(props: { id: string; selected: boolean; option: Option; onPick: () => void; onHover: () => void }) {
  const { option } = props;
  const ref = useRef<HTMLLIElement>(null);
  useEffect(() => {
    if (props.selected) ref.current?.scrollIntoView({ block: "nearest" });
  }, [props.selected]);
  return (
    <li
      ref={ref}
      id={props.id}
      role="option"
      aria-selected={props.selected}
      className={`global-search-option${props.selected ? " active" : ""}${option.kind === "all" ? " all" : ""}`}
      onMouseDown={(e) => e.preventDefault()}
      onClick={props.onPick}
      onMouseEnter={props.onHover}
    >
      <span className="title">{option.title}</span>
      {option.context ? <span className="muted"> · {option.context}</span> : null}
      {option.matched && option.matched !== "name" ? <span className="badge">{option.matched}</span> : null}
    </li>
  );
}
