#!/usr/bin/env bash
# The README's test command: clean install, browser, lint and format check, type check, unit/integration tests,
# production build, browser tests.
set -euo pipefail
cd "$(dirname "$0")/.."
t0=$(date +%s)
bash scripts/ensure-chromium.sh
npm ci --no-audit --no-fund
t1=$(date +%s)
npm run lint
npm run typecheck
npm run test:unit
t2=$(date +%s)
npm run build
t3=$(date +%s)
npm run test:e2e
t4=$(date +%s)
echo "timings: install $((t1-t0)) s, lint+typecheck+unit $((t2-t1)) s, build $((t3-t2)) s, e2e $((t4-t3)) s, total $((t4-t0)) s"
