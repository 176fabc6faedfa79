/** @type {import('next').NextConfig} */
const nextConfig = {
  // Native and heavy server-side packages stay outside the bundle; training runs in worker threads that load them.
  serverExternalPackages: ["better-sqlite3", "@tensorflow/tfjs", "@tensorflow/tfjs-node", "@tensorflow/tfjs-backend-wasm", "tsx"],
  typedRoutes: false,
  poweredByHeader: false,
};
module.exports = nextConfig;
