#!/usr/bin/env bash
# Every benchmark in one command: install what is missing, run them, print each figure with its
# ratio to a ceiling measured in the same run; exit 1 when a target is missed.
#   bench/run.sh                      # all of them (~12 min)
#   bench/run.sh --only webhook       # or webhook-gthread, loop, loop-bulk, sending, fanout, contacts,
#                                     # fanout-page; --seconds 10 for shorter wrk runs
#   BENCH_VENV=/path/to/venv bench/run.sh   # another virtualenv than .venv
set -euo pipefail
cd "$(dirname "$0")/.."

if ! command -v wrk >/dev/null; then
    sudo=""; [ "$(id -u)" -eq 0 ] || sudo="sudo"
    $sudo apt-get update -qq && $sudo apt-get install -y -qq wrk >/dev/null
fi
venv="${BENCH_VENV:-.venv}"
# The virtualenv (make install) and compiled catalogs.
if ! make_log=$(make --no-print-directory -s VENV="$venv" catalogs 2>&1); then
    echo "$make_log" >&2
    exit 1
fi

# The same services the tests use, started the way .ci/run starts them when they are down.
if ! pg_isready -h 127.0.0.1 -p 5432 -q 2>/dev/null; then
    pg_ctlcluster --skip-systemctl-redirect "$(ls /etc/postgresql | head -n 1)" main start
    for _ in $(seq 1 30); do pg_isready -h 127.0.0.1 -p 5432 -q && break; sleep 1; done
fi
if ! redis-cli -h 127.0.0.1 -p 6379 ping >/dev/null 2>&1; then
    mkdir -p /var/lib/redis /var/log/redis
    redis-server --daemonize yes --bind 127.0.0.1 -::1 --port 6379 --save "" --appendonly no \
        --dir /var/lib/redis --logfile /var/log/redis/bench.log
    for _ in $(seq 1 30); do redis-cli -h 127.0.0.1 -p 6379 ping >/dev/null 2>&1 && break; sleep 1; done
fi

exec "$venv/bin/python" -m bench "$@"
