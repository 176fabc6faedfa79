"use client";
/**
 * The top bar's "Menu" button on narrow screens (phones): it opens and closes the main navigation and the account
 * links, which globals.css hides below 760 px unless this button is expanded (`.topbar:has(.menu-button[aria-expanded
 * ="true"])`). Wider screens never show the button and always show the navigation.
 *
 * Invariants: the state is the button's aria-expanded; the menu closes after a navigation (it belongs to the page it
 * was opened on), on any link or button pressed, on a click outside the top bar, and on Escape (focus returns here).
 */
import { usePathname } from "next/navigation";
import { useEffect, useRef, useState } from "react";

export function MenuButton({ controls }: { controls: string }) {
  const pathname = usePathname();
  const [openOn, setOpenOn] = useState<string | null>(null);
  const open = openOn === pathname;
  const button = useRef<HTMLButtonElement>(null);

  useEffect(() => {
    if (!open) return;
    const onClick = (e: MouseEvent) => {
      const target = e.target as Element | null;
      if (!target || button.current?.contains(target)) return;
      if (!target.closest(".topbar") || target.closest("a, button")) setOpenOn(null);
    };
    const onKey = (e: KeyboardEvent) => {
      if (e.key !== "Escape") return;
      setOpenOn(null);
      button.current?.focus();
    };
    document.addEventListener("click", onClick);
    document.addEventListener("keydown", onKey);
    return () => {
      document.removeEventListener("click", onClick);
      document.removeEventListener("keydown", onKey);
    };
  }, [open]);

  return (
    <button
      ref={button}
      type="button"
      className="menu-button"
      aria-expanded={open}
      aria-controls={controls}
      onClick={() => setOpenOn(open ? null : pathname)}
    >
      <span className="bars" aria-hidden="true" />
      Menu
    </button>
  );
}
