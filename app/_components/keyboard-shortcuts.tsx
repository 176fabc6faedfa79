"use client";
/**
 * Keyboard shortcuts on every signed-in page (mounted by shell.tsx): `/` focuses the search box, `?` opens the list
 * of shortcuts (a modal dialog; Escape or Close closes it and focus returns where it was), and two-key "go to"
 * sequences (`g` then a letter within 1.5 s). None of them fire while typing in a field (input, textarea, select,
 * contenteditable) or with Ctrl/Alt/Meta held, so they never steal a character.
 */
import { useEffect, useRef, useState } from "react";
import { useRouter } from "next/navigation";
import { SEARCH_BOX_ID } from "./search-kinds";

export const GO_TO: { key: string; href: string; label: string }[] = [
  { key: "h", href: "/", label: "Home (projects)" },
  { key: "r", href: "/runs", label: "Runs" },
  { key: "d", href: "/datasets", label: "Datasets" },
  { key: "m", href: "/models", label: "Models" },
  { key: "a", href: "/audit", label: "Audit" },
];
const SEQUENCE_MS = 1500;

export const SHORTCUTS: { keys: string[]; what: string }[] = [
  { keys: ["/"], what: "Focus the search box" },
  { keys: ["↑", "↓", "Enter"], what: "In the search results: move, open" },
  { keys: ["Esc"], what: "Close the search results or this dialog" },
  { keys: ["?"], what: "Show these shortcuts" },
  ...GO_TO.map((g) => ({ keys: ["g", g.key], what: `Go to ${g.label}` })),
];

function typingIn(target: EventTarget | null): boolean {
  const el = target as HTMLElement | null;
  if (!el || !el.tagName) return false;
  const tag = el.tagName.toLowerCase();
  return tag === "input" || tag === "textarea" || tag === "select" || el.isContentEditable;
}

export function KeyboardShortcuts() {
  const router = useRouter();
  const [open, setOpen] = useState(false);
  const pendingG = useRef<number>(0);

  useEffect(() => {
    const onKey = (e: KeyboardEvent) => {
      if (e.defaultPrevented || e.ctrlKey || e.metaKey || e.altKey || typingIn(e.target)) return;
      if (document.querySelector("[role=dialog][aria-modal=true]") && !open) return; // another modal owns the keys
      if (open) return; // the dialog handles its own keys
      const now = Date.now();
      if (pendingG.current && now - pendingG.current < SEQUENCE_MS) {
        pendingG.current = 0;
        const target = GO_TO.find((g) => g.key === e.key.toLowerCase());
        if (target) {
          e.preventDefault();
          router.push(target.href);
          return;
        }
      }
      pendingG.current = 0;
      if (e.key === "/") {
        const box = document.getElementById(SEARCH_BOX_ID) as HTMLInputElement | null;
        if (box) {
          e.preventDefault();
          box.focus();
          box.select();
        }
      } else if (e.key === "?") {
        e.preventDefault();
        setOpen(true);
      } else if (e.key === "g" && !e.shiftKey) {
        pendingG.current = now;
      }
    };
    document.addEventListener("keydown", onKey);
    return () => document.removeEventListener("keydown", onKey);
  }, [open, router]);

  return open ? <ShortcutsDialog onClose={() => setOpen(false)} /> : null;
}

function ShortcutsDialog({ onClose }: { onClose: () => void }) {
  const close = useRef<HTMLButtonElement>(null);
  useEffect(() => {
    const before = document.activeElement as HTMLElement | null;
    close.current?.focus();
    return () => before?.focus?.();
  }, []);
  return (
    <div
      className="shortcuts-backdrop"
      onMouseDown={(e) => {
        if (e.target === e.currentTarget) onClose();
      }}
    >
      <div
        className="shortcuts-dialog"
        role="dialog"
        aria-modal="true"
        aria-labelledby="shortcuts-title"
        onKeyDown={(e) => {
          if (e.key === "Escape") {
            e.preventDefault();
            onClose();
          } else if (e.key === "Tab") {
            e.preventDefault(); // one focusable element: keep focus inside the dialog
            close.current?.focus();
          }
        }}
      >
        <div className="row">
          <h2 id="shortcuts-title" style={{ margin: 0 }}>
            Keyboard shortcuts
          </h2>
          <span className="spacer" />
          <button type="button" ref={close} onClick={onClose}>
            Close
          </button>
        </div>
        <table aria-label="Keyboard shortcuts">
          <tbody>
            {SHORTCUTS.map((s) => (
              <tr key={s.what}>
                <td>
                  {s.keys.map((k, i) => (
                    <span key={k}>
                      {i > 0 ? (s.keys[0] === "g" ? " then " : " ") : null}
                      <kbd>{k}</kbd>
                    </span>
                  ))}
                </td>
                <td>{s.what}</td>
              </tr>
            ))}
          </tbody>
        </table>
        <p className="muted" style={{ marginBottom: 0 }}>
          Shortcuts do nothing while you type in a field.
        </p>
      </div>
    </div>
  );
}
