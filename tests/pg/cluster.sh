#!/bin/sh
# A throwaway PostgreSQL cluster for the tests, private to one build folder.
#
#   cluster.sh start DIR   initdb and start a cluster for DIR (reachable only through a unix
#                          socket in a private directory: no TCP), create the database
#                          store_test, and write its base URL to DIR/url
#   cluster.sh stop DIR    stop the cluster this script started for DIR and remove it
#   cluster.sh restart DIR restart it (pg_ctl restart -m fast: sessions are ended), for tests of
#                          a database that goes away under load and comes back
#   cluster.sh pause DIR   stop it, keeping its data (pg_ctl stop -m fast)
#   cluster.sh resume DIR  start it again after pause (same socket and options: HIPUSERS_PG_PORT
#                          as at start)
#
# Run as root (CI), the cluster belongs to the unprivileged user `nobody`, in a directory it
# owns: under DIR when nobody can reach it, else a fresh directory under /tmp (and then the
# socket path stays short, too). The script only ever stops a cluster whose marker it wrote
# in DIR: it never touches one it did not start.
set -eu

cmd=${1:-}
dir=${2:-}
[ -n "$cmd" ] && [ -n "$dir" ] || { echo "usage: $0 start|stop|restart|pause|resume DIR" >&2; exit 2; }
port=${HIPUSERS_PG_PORT:-54329}
if [ "$cmd" = start ]; then mkdir -p "$dir"; fi
[ -d "$dir" ] || exit 0 # stop: nothing was ever started here
dir=$(cd "$dir" && pwd)
marker="$dir/.hipusers-test-cluster"
owner=nobody

bindir=$(pg_config --bindir 2>/dev/null || true)
if [ ! -x "$bindir/initdb" ]; then
    bindir=$(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -n 1)
fi
[ -x "$bindir/initdb" ] || { echo "cluster.sh: PostgreSQL's initdb not found (scripts/deps.sh installs it)" >&2; exit 1; }

as_owner() {
    if [ "$(id -u)" = 0 ]; then runuser -u "$owner" -- "$@"; else "$@"; fi
}

# Starts the cluster in $base (socket only, as the owner); its options are written once and
# reused by resume.
pg_start() {
    as_owner "$bindir/pg_ctl" -D "$base/data" -l "$base/server.log" -w -t 60 \
        -o "-h '' -k $base/sock -p $port -c fsync=off -c synchronous_commit=off -c full_page_writes=off -c max_connections=300" \
        start >/dev/null || { cat "$base/server.log" >&2; exit 1; }
}

stop() {
    [ -f "$marker" ] || return 0 # nothing of ours is running here
    base=$(cat "$marker")
    if [ -f "$base/data/postmaster.pid" ]; then
        as_owner "$bindir/pg_ctl" -D "$base/data" -m immediate -w -t 60 stop >/dev/null 2>&1 || true
    fi
    case "$base" in
    "$dir"/cluster | /tmp/hipusers-pg.*) rm -rf "$base" ;;
    esac
    rm -f "$marker" "$dir/url"
}

start() {
    stop # a cluster left behind by an interrupted run of ours
    base="$dir/cluster"
    if [ -e "$base/data/postmaster.pid" ]; then
        echo "cluster.sh: $base holds a running cluster this script has no record of; not touching it" >&2
        exit 1
    fi
    rm -rf "$base" # the remains of a cluster that is not running
    if [ "$(id -u)" = 0 ]; then
        mkdir -p "$base"
        chown "$owner" "$base"
        chmod 700 "$base"
        if ! runuser -u "$owner" -- test -w "$base" || [ ${#base} -gt 80 ]; then
            rmdir "$base"
            base=$(mktemp -d /tmp/hipusers-pg.XXXXXX)
            chown "$owner" "$base"
        fi
    elif [ ${#base} -gt 80 ]; then
        base=$(mktemp -d /tmp/hipusers-pg.XXXXXX)
    else
        mkdir -p "$base"
        chmod 700 "$base"
    fi
    echo "$base" >"$marker"
    as_owner mkdir -p "$base/sock"
    as_owner "$bindir/initdb" -D "$base/data" -A trust -U postgres -E UTF8 --locale=C --no-sync \
        >"$base/initdb.log" 2>&1 || { cat "$base/initdb.log" >&2; exit 1; }
    # Durability is not what these tests are about: fsync off keeps them quick.
    pg_start
    url="postgresql:///postgres?host=$base/sock&port=$port&user=postgres"
    "$bindir/psql" -X -q -v ON_ERROR_STOP=1 -d "$url" -c "CREATE DATABASE store_test" >/dev/null
    echo "$url" >"$dir/url"
    echo "cluster.sh: PostgreSQL running for $dir (socket in $base/sock)"
}

ours() {
    [ -f "$marker" ] || { echo "cluster.sh: no cluster of ours in $dir" >&2; exit 1; }
    base=$(cat "$marker")
}

restart() {
    ours
    # -l: the new postmaster must not keep our stdout open
    as_owner "$bindir/pg_ctl" -D "$base/data" -l "$base/server.log" -m fast -w -t 60 restart >/dev/null
}

case "$cmd" in
start) start ;;
stop) stop ;;
restart) restart ;;
pause) ours; as_owner "$bindir/pg_ctl" -D "$base/data" -m fast -w -t 60 stop >/dev/null ;;
resume) ours; pg_start ;;
*) echo "usage: $0 start|stop|restart|pause|resume DIR" >&2; exit 2 ;;
esac
