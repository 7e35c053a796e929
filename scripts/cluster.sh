#!/usr/bin/env bash
# Several hipusers servers on one PostgreSQL, behind HAProxy, on this machine.
#
#   scripts/cluster.sh run DIR [options] [-- SERVE-ARGS...]
#       start PostgreSQL, N servers and HAProxy, print how to reach them, and stay in the
#       foreground; Ctrl-C (SIGINT) or SIGTERM stops everything it started, then it exits
#   scripts/cluster.sh stop DIR
#       stop what a run for DIR left behind (only processes and a cluster it recorded in DIR)
#
# Options of run:
#   --servers N        hipusers processes (default 3)
#   --listen H:P       HAProxy's address (default 127.0.0.1:8080)
#   --no-proxy         no HAProxy: one server (--servers 1) listens on --listen itself
#   --bin PATH         the hipusers binary (default ./build/hipusers)
#   --no-fsync         PostgreSQL without fsync (quicker, not crash-safe: for throwaway data)
#   --fresh            remove the data a previous run kept in DIR first
#   --hints            once ready, print how to create a business and client and log in
#   --pg-conf NAME=VAL a PostgreSQL setting (repeatable), e.g. autovacuum_naptime=1s
#   SERVE-ARGS         more arguments for every `hipusers serve` (e.g. --no-access-log)
#
# What lives in DIR: the PostgreSQL cluster (pg/, kept between runs; run as root, it belongs to
# the unprivileged user `nobody`, and lives in a throwaway folder under /tmp when `nobody`
# cannot reach DIR), the signing secret every server shares (jwt-secret, made once, mode 0600,
# unless HIPUSERS_JWT_SECRET is set), the database URL (url), the HAProxy config, and one log
# per process (logs/). The servers listen on free loopback ports, with /metrics, /healthz and
# /readyz on an admin port each; HAProxy balances round robin and takes a server out of
# rotation while its /readyz does not answer 200. The script never touches a PostgreSQL
# cluster it did not start.
set -euo pipefail

cmd=${1:-}
dir=${2:-}
[ -n "$cmd" ] && [ -n "$dir" ] || { sed -n '2,9p' "$0" >&2; exit 2; }
shift 2

servers=3 listen=127.0.0.1:8080 proxy=1 bin=./build/hipusers fsync=on fresh=0 hints=0
serve_args=()
pg_conf=""
while [ $# -gt 0 ]; do
    case "$1" in
    --servers) servers=$2; shift 2 ;;
    --listen) listen=$2; shift 2 ;;
    --no-proxy) proxy=0; shift ;;
    --bin) bin=$2; shift 2 ;;
    --no-fsync) fsync=off; shift ;;
    --fresh) fresh=1; shift ;;
    --hints) hints=1; shift ;;
    --pg-conf)
        case "$2" in *[!A-Za-z0-9_.=-]* | *=*=* | =* | *=) echo "cluster.sh: --pg-conf wants NAME=VALUE" >&2; exit 2 ;; esac
        case "$2" in *=*) ;; *) echo "cluster.sh: --pg-conf wants NAME=VALUE" >&2; exit 2 ;; esac
        pg_conf="$pg_conf -c $2"; shift 2 ;;
    --) shift; serve_args=("$@"); break ;;
    *) echo "cluster.sh: unknown option $1" >&2; exit 2 ;;
    esac
done
case "$servers" in '' | *[!0-9]*) echo "cluster.sh: --servers wants a number" >&2; exit 2 ;; esac
[ "$servers" -ge 1 ] || { echo "cluster.sh: --servers wants at least 1" >&2; exit 2; }
[ "$proxy" = 1 ] || [ "$servers" = 1 ] || { echo "cluster.sh: --no-proxy serves one server only" >&2; exit 2; }
haproxy=/usr/sbin/haproxy
[ "$proxy" = 0 ] || [ -x "$haproxy" ] || { echo "cluster.sh: $haproxy is missing (scripts/deps.sh cluster)" >&2; exit 1; }

[ "$cmd" = run ] && mkdir -p "$dir"
[ -d "$dir" ] || exit 0 # stop: nothing was ever started here
dir=$(cd "$dir" && pwd)
pgport=${HIPUSERS_CLUSTER_PG_PORT:-54330} # names the unix socket only: no TCP
owner=nobody
pidfile=$dir/pids    # pid and name of each process we started, one a line
basefile=$dir/pg.base # where our PostgreSQL cluster lives (written before initdb)

bindir=$(pg_config --bindir 2>/dev/null || true)
if [ ! -x "$bindir/initdb" ]; then
    bindir=$(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -n 1)
fi
[ -x "$bindir/initdb" ] || { echo "cluster.sh: PostgreSQL's initdb not found (scripts/deps.sh installs it)" >&2; exit 1; }

as_owner() {
    if [ "$(id -u)" = 0 ]; then runuser -u "$owner" -- "$@"; else "$@"; fi
}

log() { echo "cluster.sh: $*" >&2; }

free_port() {
    python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'
}

# Stops the processes recorded in $pidfile (SIGTERM, SIGKILL after 15 s), then our cluster.
stop_all() {
    if [ -f "$pidfile" ]; then
        # a pid is signalled only while it still runs the program we started under it
        local live=""
        while read -r pid name; do
            case "$(tr '\0' ' ' 2>/dev/null <"/proc/$pid/cmdline" || true)" in
            *hipusers\ serve* | *haproxy\ -db*) kill -TERM "$pid" 2>/dev/null && live="$live$pid $name"$'\n' ;;
            esac
        done <"$pidfile"
        printf '%s' "$live" >"$pidfile"
        while read -r pid name; do
            for _ in $(seq 150); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
            if kill -0 "$pid" 2>/dev/null; then
                log "$name (pid $pid) still running 15 s after SIGTERM: SIGKILL"
                kill -KILL "$pid" 2>/dev/null || true
            fi
        done <"$pidfile"
        rm -f "$pidfile"
    fi
    if [ -f "$basefile" ]; then
        base=$(cat "$basefile")
        if [ -f "$base/data/postmaster.pid" ]; then
            as_owner "$bindir/pg_ctl" -D "$base/data" -m fast -w -t 60 stop >/dev/null 2>&1 || true
        fi
        case "$base" in
        /tmp/hipusers-cluster-pg.*) rm -rf "$base"; rm -f "$basefile" ;; # throwaway by design
        esac
    fi
}

start_pg() {
    local base
    if [ -f "$basefile" ]; then
        base=$(cat "$basefile")
        [ -d "$base/data" ] || base=""
    else
        base=""
    fi
    if [ -z "$base" ]; then
        base=$dir/pg
        if [ -e "$base" ]; then
            log "$base exists but this script has no record of making it; not touching it"
            exit 1
        fi
        mkdir -p "$base"
        chmod 700 "$base"
        if [ "$(id -u)" = 0 ]; then
            chown "$owner" "$base"
            if ! runuser -u "$owner" -- test -w "$base" || [ ${#base} -gt 80 ]; then
                rmdir "$base"
                base=$(mktemp -d /tmp/hipusers-cluster-pg.XXXXXX)
                chown "$owner" "$base"
            fi
        elif [ ${#base} -gt 80 ]; then
            rmdir "$base"
            base=$(mktemp -d /tmp/hipusers-cluster-pg.XXXXXX)
        fi
        echo "$base" >"$basefile"
        as_owner mkdir -p "$base/sock"
        as_owner "$bindir/initdb" -D "$base/data" -A trust -U postgres -E UTF8 --locale=C \
            >"$dir/logs/initdb.log" 2>&1 || { cat "$dir/logs/initdb.log" >&2; exit 1; }
    fi
    if [ -f "$base/data/postmaster.pid" ]; then
        log "a PostgreSQL of an earlier run is still up in $base; stopping it"
        as_owner "$bindir/pg_ctl" -D "$base/data" -m fast -w -t 60 stop >/dev/null
    fi
    # the log goes where the owner may write; linked from logs/
    as_owner "$bindir/pg_ctl" -D "$base/data" -l "$base/server.log" -w -t 60 \
        -o "-h '' -k $base/sock -p $pgport -c fsync=$fsync -c max_connections=200$pg_conf" start >/dev/null ||
        { cat "$base/server.log" >&2; exit 1; }
    ln -sfn "$base/server.log" "$dir/logs/postgresql.log"
    url="postgresql:///hipusers?host=$base/sock&port=$pgport&user=postgres"
    local admin="postgresql:///postgres?host=$base/sock&port=$pgport&user=postgres"
    if [ -z "$("$bindir/psql" -X -At -d "$admin" -c "SELECT 1 FROM pg_database WHERE datname = 'hipusers'")" ]; then
        "$bindir/psql" -X -q -v ON_ERROR_STOP=1 -d "$admin" -c "CREATE DATABASE hipusers" >/dev/null
    fi
    echo "$url" >"$dir/url"
}

# Polls URL until it answers with the status CODE (for 30 s at most, and while process PID
# runs); false when it never does.
wait_code() {
    local url=$1 code=$2 pid=$3 deadline=$((SECONDS + 30))
    while [ $SECONDS -lt "$deadline" ] && kill -0 "$pid" 2>/dev/null; do
        [ "$(curl -s -o /dev/null -w '%{http_code}' --max-time 1 "$url" || true)" = "$code" ] && return 0
        sleep 0.1
    done
    return 1
}

# How to get a token from this cluster: the admin CLI on the same database, then the login.
print_hints() {
    local secret_opt=""
    [ -f "$dir/jwt-secret" ] && secret_opt=" --jwt-secret-file $dir/jwt-secret"
    cat <<EOF

A business, an API client and a login (the admin CLI works on the same database):

  export HIPUSERS_DB='$url'
  B_ID=\$($bin_shown business create --name "Sunrise Health")
  CLIENT=\$($bin_shown client create --b-id "\$B_ID" --name "HIS sync")
  CLIENT_ID=\$(echo "\$CLIENT" | sed -n 's/^client_id=//p')
  CLIENT_SECRET=\$(echo "\$CLIENT" | sed -n 's/^client_secret=//p')
  curl -s -X POST http://$listen/connect-auth/v1/account/login -H 'Content-Type: application/json' \\
    -d "{\"client_id\":\"\$CLIENT_ID\",\"client_secret\":\"\$CLIENT_SECRET\"}"

Or a token signed with the servers' shared secret:

  TOKEN=\$($bin_shown token --b-id "\$B_ID"$secret_opt)
  curl -s http://$listen/cdr/v1/get_business_info/ -H "auth: \$TOKEN"

Ctrl-C stops the servers, HAProxy and PostgreSQL (the data stays in $dir).
EOF
}

run() {
    bin_shown=$bin
    [ -x "$bin" ] || { log "$bin not found (make build)"; exit 1; }
    bin=$(cd "$(dirname "$bin")" && pwd)/$(basename "$bin")
    stop_all # what an interrupted run of ours may have left
    if [ "$fresh" = 1 ] && [ -f "$basefile" ]; then
        rm -rf "$(cat "$basefile")" "$basefile" "$dir/url"
    fi
    mkdir -p "$dir/logs"
    trap 'trap - INT TERM EXIT; stop_all; log "stopped"; exit 0' INT TERM
    trap 'stop_all' EXIT
    start_pg
    if [ -z "${HIPUSERS_JWT_SECRET:-}" ]; then
        if [ ! -s "$dir/jwt-secret" ]; then
            (umask 077 && head -c 32 /dev/urandom | od -An -tx1 | tr -d ' \n' >"$dir/jwt-secret")
        fi
        HIPUSERS_JWT_SECRET=$(cat "$dir/jwt-secret")
    fi
    export HIPUSERS_JWT_SECRET
    # every server would migrate at start (under a lock); once here is quicker to read in logs
    "$bin" migrate --db "$url" >/dev/null
    : >"$pidfile"
    local backends="" i port admin
    for i in $(seq "$servers"); do
        if [ "$proxy" = 1 ]; then port=$(free_port); else port=${listen##*:}; fi
        admin=$(free_port)
        local host=127.0.0.1
        [ "$proxy" = 1 ] || host=${listen%:*}
        "$bin" serve --listen "$host:$port" --admin-listen "127.0.0.1:$admin" --db "$url" \
            --trusted-proxy 127.0.0.1/32 "${serve_args[@]}" >>"$dir/logs/server$i.log" 2>&1 &
        local pid=$!
        echo "$pid server$i" >>"$pidfile"
        backends="$backends    server s$i 127.0.0.1:$port check port $admin"$'\n'
        wait_code "http://127.0.0.1:$admin/readyz" 200 "$pid" || { log "server$i did not become ready:"; tail "$dir/logs/server$i.log" >&2; exit 1; }
        log "server$i: $host:$port (admin 127.0.0.1:$admin), pid $pid"
    done
    if [ "$proxy" = 1 ]; then
        cat >"$dir/haproxy.cfg" <<EOF
# Written by scripts/cluster.sh; rewritten at every run.
global
    maxconn 4096
defaults
    mode http
    timeout connect 2s
    timeout client 60s
    timeout server 60s
    timeout http-request 10s
    retries 2
    option redispatch
frontend hipusers
    bind $listen
    option forwardfor
    default_backend servers
backend servers
    balance roundrobin
    option httpchk GET /readyz
    http-check expect status 200
    default-server inter 1s fall 2 rise 1
$backends
EOF
        "$haproxy" -c -q -f "$dir/haproxy.cfg" || exit 1
        "$haproxy" -db -f "$dir/haproxy.cfg" >>"$dir/logs/haproxy.log" 2>&1 &
        pid=$!
        echo "$pid haproxy" >>"$pidfile"
        # a request without a token: 401 from a server (HAProxy alone answers 503)
        wait_code "http://$listen/cdr/v1/clinic/" 401 "$pid" || { log "HAProxy did not answer:"; tail "$dir/logs/haproxy.log" >&2; exit 1; }
        log "haproxy: $listen -> $servers servers, pid $pid"
    fi
    log "ready: http://$listen (database: $url; logs in $dir/logs)"
    if [ "$hints" = 1 ]; then print_hints; fi
    # Stay up until a signal, or until any of our processes exits on its own.
    while :; do
        while read -r pid name; do
            if ! kill -0 "$pid" 2>/dev/null; then
                log "$name (pid $pid) exited; stopping the rest"
                tail -n 5 "$dir/logs/$name.log" >&2 || true
                exit 1
            fi
        done <"$pidfile"
        sleep 1 &
        wait $! || true
    done
}

case "$cmd" in
run) run ;;
stop) stop_all ;;
*) sed -n '2,9p' "$0" >&2; exit 2 ;;
esac
