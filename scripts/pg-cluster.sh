#!/usr/bin/env bash
# A throwaway PostgreSQL cluster for tests and CI (issue 16): Debian's PostgreSQL 15 or later, initdb into a temp
# directory, served on a free loopback port with its socket in that directory, as an unprivileged user.
#
#   scripts/pg-cluster.sh start   installs PostgreSQL with apt-get if initdb/pg_ctl are missing, creates and starts
#                                 the cluster, prints its postgres:// URL (database "runledger", user "runledger")
#   scripts/pg-cluster.sh url     prints the URL of the running cluster
#   scripts/pg-cluster.sh stop    stops it and deletes its directory
#
# The cluster lives in $RUNLEDGER_PG_DIR (default: a directory under /tmp named after this checkout, so two
# checkouts on one machine do not meet). Loopback only, trust authentication, fsync off: test data only, never a
# store anyone keeps. As root the server runs as the `postgres` user (created by the Debian package) or, failing
# that, a system user `runledger-pg` created here; PostgreSQL refuses to run as root.
set -euo pipefail
# runuser and useradd live in sbin, which a non-login root shell may lack.
export PATH="$PATH:/usr/sbin:/sbin"

ROOT="$(cd "$(dirname "$0")/.." && pwd)"
DIR="${RUNLEDGER_PG_DIR:-/tmp/runledger-pg-$(printf '%s' "$ROOT" | sha256sum | cut -c1-12)}"
DATA="$DIR/data"
STATE="$DIR/url"
LOG="$DIR/server.log"

log() { echo "pg-cluster: $*" >&2; }

find_bin_dir() {
  local d
  if command -v initdb >/dev/null 2>&1 && command -v pg_ctl >/dev/null 2>&1; then
    dirname "$(readlink -f "$(command -v pg_ctl)")"
    return 0
  fi
  # Debian keeps the server binaries out of PATH; take the newest version installed (15 or later).
  for d in $(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -t/ -k5 -n -r); do
    if [ -x "$d/initdb" ] && [ -x "$d/pg_ctl" ]; then
      echo "$d"
      return 0
    fi
  done
  return 1
}

install_postgres() {
  if [ "$(id -u)" != 0 ]; then
    log "PostgreSQL (initdb, pg_ctl) is not installed and this user cannot apt-get install it: install Debian's postgresql package"
    exit 1
  fi
  log "installing Debian's postgresql package (no default cluster)"
  # The package would create and try to start a cluster of its own; this script only needs the binaries.
  mkdir -p /etc/postgresql-common/createcluster.d
  echo "create_main_cluster = false" >/etc/postgresql-common/createcluster.d/runledger-no-main.conf
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq
  apt-get install -y -qq --no-install-recommends postgresql >/dev/null
}

# Runs a command as the cluster's owner.
as_owner() {
  if [ "$(id -u)" = 0 ]; then
    runuser -u "$OWNER" -- "$@"
  else
    "$@"
  fi
}

choose_owner() {
  if [ "$(id -u)" != 0 ]; then
    OWNER="$(id -un)"
  elif id postgres >/dev/null 2>&1; then
    OWNER=postgres
  else
    id runledger-pg >/dev/null 2>&1 || useradd --system --no-create-home --shell /usr/sbin/nologin runledger-pg
    OWNER=runledger-pg
  fi
}

free_port() {
  node -e 'const s=require("net").createServer();s.listen(0,"127.0.0.1",()=>{console.log(s.address().port);s.close();});'
}

start() {
  if [ -f "$STATE" ] && [ -f "$DATA/postmaster.pid" ] && [ -f "$DIR/bin" ]; then
    choose_owner
    if as_owner "$(cat "$DIR/bin")/pg_ctl" -D "$DATA" status >/dev/null 2>&1; then
      log "already running ($DIR)"
      cat "$STATE"
      return 0
    fi
    # A stale pid file (the machine restarted, or the server was killed): start afresh on the same port if unset.
    log "the cluster in $DIR is not running: starting a new one"
    RUNLEDGER_PG_PORT="${RUNLEDGER_PG_PORT:-$(sed -E 's/.*:([0-9]+)\/.*/\1/' "$STATE")}"
  fi
  local bin
  bin="$(find_bin_dir)" || {
    install_postgres
    bin="$(find_bin_dir)" || {
      log "PostgreSQL installed but initdb/pg_ctl not found"
      exit 1
    }
  }
  local version
  version="$("$bin/pg_ctl" --version | sed -E 's/[^0-9]*([0-9]+).*/\1/')"
  if [ "$version" -lt 15 ]; then
    log "PostgreSQL $version found in $bin; Runledger needs 15 or later"
    exit 1
  fi
  choose_owner
  rm -rf "$DIR"
  mkdir -p "$DIR"
  chmod 700 "$DIR"
  [ "$(id -u)" = 0 ] && chown "$OWNER" "$DIR"
  as_owner "$bin/initdb" -D "$DATA" -U runledger --auth=trust --encoding=UTF8 --locale=C.UTF-8 --no-sync >"$DIR/initdb.log" 2>&1 || {
    cat "$DIR/initdb.log" >&2
    exit 1
  }
  local port
  port="${RUNLEDGER_PG_PORT:-$(free_port)}"
  # Test settings: durability traded for speed (fsync off), room for the concurrency tests' connections.
  as_owner "$bin/pg_ctl" -D "$DATA" -l "$LOG" -w -t 60 \
    -o "-c listen_addresses=127.0.0.1 -p $port -k $DIR -c fsync=off -c synchronous_commit=off -c full_page_writes=off -c max_connections=100" \
    start >/dev/null || {
    cat "$LOG" >&2
    exit 1
  }
  as_owner "$bin/createdb" -h 127.0.0.1 -p "$port" -U runledger runledger
  echo "$bin" >"$DIR/bin"
  echo "postgres://runledger@127.0.0.1:$port/runledger" | tee "$STATE"
}

stop() {
  if [ ! -d "$DIR" ]; then
    return 0
  fi
  if [ -f "$DATA/postmaster.pid" ] && [ -f "$DIR/bin" ]; then
    choose_owner
    as_owner "$(cat "$DIR/bin")/pg_ctl" -D "$DATA" -m fast -w stop >/dev/null || log "pg_ctl stop failed; see $LOG"
  fi
  rm -rf "$DIR"
}

case "${1:-}" in
  start) start ;;
  stop) stop ;;
  url)
    if [ -f "$STATE" ]; then cat "$STATE"; else
      log "no cluster running in $DIR (run: $0 start)"
      exit 1
    fi
    ;;
  *)
    echo "usage: $0 start|stop|url" >&2
    exit 2
    ;;
esac
