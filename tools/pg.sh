#!/usr/bin/env bash
# A throw-away PostgreSQL for the database workloads and their tests.
#
#   tools/pg.sh start DIR    install PostgreSQL if missing (Debian's package), create a cluster
#                            in DIR, start it on a free loopback port, load the tables; prints
#                            the DATABASE_URL (also written to DIR/url)
#   tools/pg.sh stop DIR     stop that cluster and remove DIR
#   tools/pg.sh load URL     create and fill the tables in an existing database
#   tools/pg.sh run CMD ...  run CMD with DATABASE_URL set: the one in the environment (its
#                            tables loaded if missing), else a throw-away cluster for CMD's
#                            duration
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
schema="$here/db/schema.sql"

bindir() {
  local d
  for d in /usr/lib/postgresql/*/bin; do
    [ -x "$d/initdb" ] && { echo "$d"; return 0; }
  done
  return 1
}

install_postgres() {
  bindir >/dev/null && return 0
  if [ "$(id -u)" != 0 ]; then
    echo "pg.sh: PostgreSQL is not installed; as root: apt-get install -y postgresql" >&2
    exit 1
  fi
  echo "pg.sh: installing PostgreSQL (Debian's postgresql package)" >&2
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq >&2
  apt-get install -y -qq postgresql >&2
  bindir >/dev/null || { echo "pg.sh: initdb not found after installing postgresql" >&2; exit 1; }
}

# Runs a server binary as the cluster's owner: root may not run PostgreSQL.
as_owner() {
  if [ "$(id -u)" = 0 ]; then
    runuser -u postgres -- "$@"
  else
    "$@"
  fi
}

free_port() {
  python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'
}

psql_bin() {
  command -v psql || echo "$(bindir)/psql"
}

load() {
  local url=$1
  PGOPTIONS="-c client_min_messages=warning" "$(psql_bin)" -q -v ON_ERROR_STOP=1 -d "$url" -f "$schema" >/dev/null
}

start() {
  local dir=$1
  install_postgres
  local bin port
  bin=$(bindir)
  port=$(free_port)
  mkdir -p "$dir"
  [ "$(id -u)" = 0 ] && chown postgres: "$dir"
  as_owner "$bin/initdb" -D "$dir/data" -U spikard --auth=trust -E UTF8 --locale=C.UTF-8 >"$dir/initdb.log" 2>&1 \
    || { cat "$dir/initdb.log" >&2; exit 1; }
  # A benchmark cluster: commits are not waited on disk (a crash loses the last moments, which
  # a throw-away cluster does not mind); enough connections for every server's pools.
  as_owner "$bin/pg_ctl" -D "$dir/data" -l "$dir/server.log" -w -t 60 start \
    -o "-c listen_addresses=127.0.0.1 -c port=$port -c unix_socket_directories=$dir \
        -c max_connections=400 -c synchronous_commit=off -c shared_buffers=128MB" >/dev/null \
    || { cat "$dir/server.log" >&2; exit 1; }
  "$bin/createdb" -h 127.0.0.1 -p "$port" -U spikard spikard
  local url="postgresql://spikard@127.0.0.1:$port/spikard"
  load "$url"
  echo "$url" | tee "$dir/url"
}

stop() {
  local dir=$1
  local bin
  bin=$(bindir) || return 0
  [ -d "$dir/data" ] && as_owner "$bin/pg_ctl" -D "$dir/data" -m fast -w stop >/dev/null 2>&1 || true
  rm -rf "$dir"
}

run() {
  if [ -n "${DATABASE_URL:-}" ]; then
    load "$DATABASE_URL"
    exec "$@"
  fi
  pg_dir=$(mktemp -d /tmp/spikard-pg.XXXXXX)
  trap 'stop "$pg_dir"' EXIT
  trap 'exit 130' INT TERM
  DATABASE_URL=$(start "$pg_dir")
  export DATABASE_URL
  echo "pg.sh: PostgreSQL at $DATABASE_URL for: $*" >&2
  "$@"
}

case "${1:-}" in
  start) start "${2:?pg.sh start DIR}" ;;
  stop) stop "${2:?pg.sh stop DIR}" ;;
  load) load "${2:?pg.sh load URL}" ;;
  run) shift; run "$@" ;;
  *) sed -n '2,12p' "$0" >&2; exit 2 ;;
esac
