#!/usr/bin/env bash
# The README's test command: clean install, browser, lint and format check, type check, unit/integration tests
# (against SQLite files and a throwaway PostgreSQL cluster, scripts/pg-cluster.sh; the audit tests again without the
# native extension), production build, browser tests
# (the app on SQLite, then on PostgreSQL: playwright.pg.config.ts).
# RUNLEDGER_TEST_PG_URL already set: the PostgreSQL suites use that server instead of starting one.
set -euo pipefail
cd "$(dirname "$0")/.."
t0=$(date +%s)
bash scripts/ensure-chromium.sh
npm ci --no-audit --no-fund
t1=$(date +%s)
npm run lint
npm run typecheck
tp=$(date +%s)
own_pg=""
if [ -z "${RUNLEDGER_TEST_PG_URL:-}" ]; then
  own_pg=1
  # A cluster of this run's own, removed however the run ends.
  export RUNLEDGER_PG_DIR
  RUNLEDGER_PG_DIR="$(mktemp -d /tmp/runledger-pg-test.XXXXXX)"
  trap 'bash scripts/pg-cluster.sh stop' EXIT
  RUNLEDGER_TEST_PG_URL="$(bash scripts/pg-cluster.sh start)"
  export RUNLEDGER_TEST_PG_URL
fi
tq=$(date +%s)
npm run test:unit
# The audit verifier's tests once more without its native extension (as on a machine without a C compiler): the
# JavaScript reference alone must give the same verdicts; the extension's own tests skip themselves.
RUNLEDGER_AUDIT_NATIVE=0 npx vitest run server/audit
t2=$(date +%s)
npm run build
t3=$(date +%s)
npm run test:e2e
t4=$(date +%s)
# The browser tests again with the app on PostgreSQL (a new database on the same cluster).
npm run test:e2e:pg
t5=$(date +%s)
if [ -n "$own_pg" ]; then bash scripts/pg-cluster.sh stop; fi
echo "timings: install $((t1-t0)) s, lint+typecheck+unit $((t2-t1)) s (PostgreSQL start $((tq-tp)) s), build $((t3-t2)) s, e2e $((t4-t3)) s, e2e on PostgreSQL $((t5-t4)) s, total $((t5-t0)) s"
