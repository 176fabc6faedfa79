/**
 * Any address no page answers (Next.js answers 404 with this page instead of its bare "This page could not be
 * found."): says so in the app's own calm style and offers the way back. Needs no session: it reads nothing.
 */
import Link from "next/link";
import { Empty } from "@/app/_components/states";

export default function NotFound() {
  return (
    <>
      <header className="topbar">
        <Link href="/" className="brand">
          Runledger
        </Link>
      </header>
      <main>
        <h1>Page not found</h1>
        <Empty
          title="There is no page at this address"
          hint="Check the link, or start from the projects: runs, datasets, models and sweeps are listed in the menu and found with the search."
        >
          <Link className="button" href="/">
            Go to projects
          </Link>
        </Empty>
      </main>
    </>
  );
}
