/** @type {import('next').NextConfig} */
const nextConfig = {
  // Native and heavy server-side packages stay outside the bundle; training runs in worker threads that load them.
  serverExternalPackages: [
    "better-sqlite3",
    "@tensorflow/tfjs",
    "@tensorflow/tfjs-node",
    "@tensorflow/tfjs-backend-wasm",
    "tsx",
    "graphile-worker",
  ],
  typedRoutes: false,
  poweredByHeader: false,
  // Types are checked once, by `npm run typecheck` (tsc over the same tsconfig), which the test command and CI run
  // before the build; next build's own check would repeat that run. Measured on the 2-core dev machine: cold build
  // 71 s without it, 185 s with it (its TypeScript step alone 85 s); with a warm Turbopack cache 31 s vs 56 s.
  typescript: { ignoreBuildErrors: true },
  /** Addresses people guess from the menu ("Projects") or a breadcrumb ("experiment") lead to the projects page, which lists both. */
  async redirects() {
    return [
      { source: "/projects", destination: "/", permanent: false },
      { source: "/experiments", destination: "/", permanent: false },
    ];
  },
  /**
   * Security headers on every response. Pages also get a per-request Content-Security-Policy with a script nonce
   * from proxy.ts; API responses get a deny-all policy; the auditor's report HTML (shown in a sandboxed iframe on
   * the report page) may be framed by this site only, with inline styles and no scripts (keep REPORT_CSP equal to
   * server/http/security-headers.ts). For the same header, a later entry overrides an earlier one.
   */
  async headers() {
    const REPORT_CSP =
      "default-src 'none'; style-src 'unsafe-inline'; img-src data:; base-uri 'none'; form-action 'none'; frame-ancestors 'self'";
    return [
      {
        source: "/:path*",
        headers: [
          { key: "X-Content-Type-Options", value: "nosniff" },
          { key: "Referrer-Policy", value: "same-origin" },
          { key: "X-Frame-Options", value: "DENY" },
        ],
      },
      { source: "/api/:path*", headers: [{ key: "Content-Security-Policy", value: "default-src 'none'; frame-ancestors 'none'" }] },
      {
        source: "/api/report/:path*",
        headers: [
          { key: "Content-Security-Policy", value: REPORT_CSP },
          { key: "X-Frame-Options", value: "SAMEORIGIN" },
        ],
      },
    ];
  },
};
module.exports = nextConfig;
