"use client";
/**
 * The reviewer's inbox in the navigation: a link to /inbox with the number of pending promotion requests the reviewer
 * may decide (the server's models.inbox query, the same rule as signing). Shown to reviewers only; the count refreshes
 * on focus, every 30 s, and after any registry write (those invalidate every models.* query).
 */
import Link from "next/link";
import { useQuery } from "@tanstack/react-query";
import { useTRPC } from "@/app/_trpc/client";

export const INBOX_REFRESH_MS = 30_000;

export function useReviewerInbox(enabled: boolean) {
  const trpc = useTRPC();
  return useQuery({ ...trpc.models.inbox.queryOptions(), enabled, refetchInterval: enabled ? INBOX_REFRESH_MS : false });
}

export function inboxLabel(n: number): string {
  return n === 0 ? "Inbox: nothing waiting for your review" : `Inbox: ${n} request${n === 1 ? "" : "s"} waiting for your review`;
}

export function InboxLink() {
  const inbox = useReviewerInbox(true);
  const n = inbox.data?.count;
  return (
    <Link href="/inbox" aria-label={n === undefined ? "Inbox" : inboxLabel(n)}>
      Inbox{" "}
      {n === undefined ? null : (
        <span className={`badge${n > 0 ? " attention" : ""}`} data-testid="inbox-count">
          {n}
        </span>
      )}
    </Link>
  );
}
