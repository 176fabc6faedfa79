import type { Metadata } from "next";
import type { ReactNode } from "react";
import { connection } from "next/server";
import { Providers } from "./_trpc/client";
import "./globals.css";

export const metadata: Metadata = { title: "Runledger", description: "Experiment tracking and training traceability" };

/**
 * Every page renders per request (`connection()`): Next.js puts the request's CSP nonce (proxy.ts) on its scripts
 * only when rendering dynamically, and a page prerendered at build time would have scripts the CSP blocks.
 */
export default async function RootLayout({ children }: { children: ReactNode }) {
  await connection();
  return (
    <html lang="en">
      <body>
        <Providers>{children}</Providers>
      </body>
    </html>
  );
}
