/** @type {import('next').NextConfig} */
const nextConfig = {
  // Native and heavy server-side packages stay outside the bundle; training runs in worker threads that load them.
  serverExternalPackages: ["better-sqlite3", "@tensorflow/tfjs", "@tensorflow/tfjs-node", "@tensorflow/tfjs-backend-wasm", "tsx"],
  typedRoutes: false,
  poweredByHeader: false,
  // Types are checked once, by `npm run typecheck`, before the build in every test run; not twice.
  typescript: { ignoreBuildErrors: true },
};
module.exports = nextConfig;
