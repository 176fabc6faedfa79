"use client";
/**
 * The signed-in frame: top bar with navigation and the user; sends signed-out visitors to /signin, and people whose
 * password was reset to /account until they change it. Administrators see a warning while demo accounts keep their
 * public passwords. On phones the navigation and account links sit behind a Menu button (menu-button.tsx).
 */
import Link from "next/link";
import { usePathname, useRouter } from "next/navigation";
import { useEffect, type ReactNode } from "react";
import { useMutation, useQuery, useQueryClient } from "@tanstack/react-query";
import { useTRPC } from "@/app/_trpc/client";
import { Loading } from "./states";
import { InboxLink } from "./inbox-link";
import { MenuButton } from "./menu-button";
import { GlobalSearch } from "./global-search";
import { KeyboardShortcuts } from "./keyboard-shortcuts";

export type Me = {
  id: number;
  name: string;
  role: "admin" | "engineer" | "reviewer" | "auditor";
  email: string;
  mustChangePassword: boolean;
  demoPasswordsInUse: string[];
};

export function useMe() {
  const trpc = useTRPC();
  return useQuery(trpc.auth.me.queryOptions());
}

export function Shell({ children }: { children: (me: Me) => ReactNode }) {
  const trpc = useTRPC();
  const router = useRouter();
  const pathname = usePathname();
  const queryClient = useQueryClient();
  const me = useMe();
  const signOut = useMutation(
    trpc.auth.signOut.mutationOptions({
      onSuccess: () => {
        queryClient.clear();
        router.push("/signin");
      },
    }),
  );
  useEffect(() => {
    if (me.isSuccess && !me.data) router.replace(`/signin?next=${encodeURIComponent(pathname)}`);
    else if (me.data?.mustChangePassword && pathname !== "/account") router.replace(`/account?next=${encodeURIComponent(pathname)}`);
  }, [me.isSuccess, me.data, router, pathname]);
  if (!me.data || (me.data.mustChangePassword && pathname !== "/account"))
    return (
      <main>
        <Loading what="Checking your session" />
      </main>
    );
  return (
    <>
      <header className="topbar">
        <Link href="/" className="brand">
          Runledger
        </Link>
        <nav aria-label="Main" id="main-nav">
          <Link href="/">Projects</Link>
          <Link href="/runs">Runs</Link>
          <Link href="/datasets">Datasets</Link>
          <Link href="/models">Models</Link>
          <Link href="/sweeps">Sweeps</Link>
          {me.data.role === "reviewer" ? <InboxLink /> : null}
          <Link href="/audit">Audit</Link>
          {me.data.role === "admin" ? <Link href="/users">Users</Link> : null}
        </nav>
        <GlobalSearch />
        <div className="who" id="main-account">
          <span>
            <Link href="/account" aria-label="Your account">
              {me.data.name}
            </Link>{" "}
            · <span className="badge">{me.data.role}</span>
          </span>
          <button type="button" onClick={() => signOut.mutate()}>
            Sign out
          </button>
        </div>
        <MenuButton controls="main-nav main-account" />
      </header>
      {me.data.demoPasswordsInUse.length > 0 ? (
        <div role="alert" className="panel" style={{ margin: "12px 24px 0", borderColor: "var(--warn)", color: "var(--warn)" }}>
          <strong>Demo accounts still use their public passwords:</strong> {me.data.demoPasswordsInUse.join(", ")}. Anyone who has read the
          README can sign in as them: reset or disable them on the <Link href="/users">Users</Link> page.
        </div>
      ) : null}
      <main>{children(me.data)}</main>
      <KeyboardShortcuts />
    </>
  );
}
