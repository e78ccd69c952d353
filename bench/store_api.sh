#!/usr/bin/env bash
# Store and API benchmark over a store of N flow records (default 10
# million), in this order:
#   1. bench_store seed: N encrypted flow records through store_put, plus
#      hourly aggregates for their 30 days and 2,000 alerts; prints the
#      LMDB ingest rate in records per second (wall clock, each 4,096-record
#      transaction synced to disk as in production)
#   2. flowveil serve on 127.0.0.1 with an analyst API token, and wrk
#      against GET /api/v1/summary, /api/v1/flows?limit=100,
#      /api/v1/alerts?limit=100 and /api/v1/series?metric=bytes&step=1h
#      (the dashboard chart, summed from aggregates): requests per second
#      and 99th percentile latency
#   3. bench_store sweep: every flow record expires and is deleted in
#      transactions of 2,000 (the pipeline tick's batch) while the writer
#      keeps storing and a reader process keeps querying; prints the
#      longest pause of each
#
# usage: bench/store_api.sh [--build-dir DIR] [--records N] [--duration S]
#                           [--smoke] [--no-docs]
#   --build-dir DIR  CMake build directory (default: build)
#   --records N      flow records in the store (default 10000000)
#   --duration S     seconds per wrk run (default 10)
#   --smoke          20,000 records, 1-second wrk runs if wrk is installed;
#                    checks that every step succeeds, leaves the docs alone
#   --no-docs        print the table but do not update docs/BENCHMARKS.md
#
# The full run needs about 4 GB of disk in the temporary directory for the
# default 10 million records and writes its table between the
# "store-api" markers of docs/BENCHMARKS.md.
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
root="$(cd "$here/.." && pwd)"
build="$root/build"
records=10000000
duration=10
smoke=0
write_docs=1

while [ $# -gt 0 ]; do
    case "$1" in
    --build-dir) build="$2"; shift 2 ;;
    --records) records="$2"; shift 2 ;;
    --duration) duration="$2"; shift 2 ;;
    --smoke) smoke=1; shift ;;
    --no-docs) write_docs=0; shift ;;
    -h | --help) awk 'NR > 1 && !/^#/ { exit } NR > 1' "$0"; exit 0 ;;
    *) echo "store_api.sh: unknown option '$1'; see --help" >&2; exit 2 ;;
    esac
done
if [ "$smoke" = 1 ]; then
    records=20000
    duration=1
    write_docs=0
fi
for value in "$records" "$duration"; do
    case "$value" in
    '' | *[!0-9]* | 0) echo "store_api.sh: --records and --duration take a positive integer, got '$value'" >&2; exit 2 ;;
    esac
done

store_bench="$build/bench/bench_store"
flowveil="$build/cli/flowveil"
for bin in "$store_bench" "$flowveil"; do
    if [ ! -x "$bin" ]; then
        echo "store_api.sh: $bin not found; build first (cmake --build $build)" >&2
        exit 1
    fi
done
have_wrk=1
if ! command -v wrk >/dev/null || ! command -v curl >/dev/null; then
    if [ "$smoke" = 1 ]; then
        echo "store_api.sh: wrk or curl not installed (apt-get install wrk curl); API step skipped" >&2
        have_wrk=0
    else
        echo "store_api.sh: wrk or curl not installed; install them with: apt-get install wrk curl" >&2
        exit 1
    fi
fi

work="$(mktemp -d)"
serve_pid=""
cleanup() {
    if [ -n "$serve_pid" ]; then kill "$serve_pid" 2>/dev/null || true; fi
    rm -rf "$work"
}
trap cleanup EXIT
db="$work/db"

seed_line="$("$store_bench" seed "$db" "$records")"
echo "$seed_line"
ingest_rate="$(echo "$seed_line" | sed -n 's/.*: \([0-9]*\) records\/s/\1/p')"

table="$work/table.md"
: >"$table"
if [ "$have_wrk" = 1 ]; then
    token="$("$flowveil" token create bench --role analyst --db "$db")"
    port="$(python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')"
    "$flowveil" serve --db "$db" --listen "127.0.0.1:$port" >"$work/serve.log" 2>&1 &
    serve_pid=$!
    for _ in $(seq 100); do
        if curl -fs "http://127.0.0.1:$port/api/v1/health" >/dev/null 2>&1; then break; fi
        sleep 0.2
    done
    if ! curl -fs "http://127.0.0.1:$port/api/v1/health" >/dev/null; then
        echo "store_api.sh: flowveil serve did not respond on 127.0.0.1:$port:" >&2
        tail -n 20 "$work/serve.log" >&2
        exit 1
    fi
    {
        echo "| endpoint (store of $records flows) | requests/s | p99 ms | one request ms |"
        echo "|---|---:|---:|---:|"
    } >"$table"
    for path in "/api/v1/summary" "/api/v1/flows?limit=100" "/api/v1/alerts?limit=100" \
        "/api/v1/series?metric=bytes&step=1h"; do
        url="http://127.0.0.1:$port$path"
        # One request alone first: a cold or slow endpoint shows here.
        # The previous wrk run closed its connections, but the server may
        # not have counted them out yet: its per-address limit (32) would
        # then reject this request. Try again briefly before giving up.
        one=""
        for _ in $(seq 25); do
            if one="$(curl -fs -o /dev/null -w '%{time_total}' -H "Authorization: Bearer $token" "$url")"; then
                break
            fi
            one=""
            sleep 0.2
        done
        if [ -z "$one" ]; then
            echo "store_api.sh: GET $path failed:" >&2
            curl -sS -o - -w '\nHTTP status %{http_code}\n' -H "Authorization: Bearer $token" "$url" >&2 || true
            tail -n 20 "$work/serve.log" >&2
            exit 1
        fi
        wrk -t 2 -c 32 -d "${duration}s" --latency -H "Authorization: Bearer $token" "$url" \
            >"$work/wrk.txt"
        if grep -q "Non-2xx" "$work/wrk.txt"; then
            echo "store_api.sh: GET $path returned errors under load:" >&2
            cat "$work/wrk.txt" >&2
            exit 1
        fi
        rps="$(awk '/^Requests\/sec/ { printf "%.0f", $2 }' "$work/wrk.txt")"
        p99="$(awk '$1 == "99%" { v = $2; if (v ~ /us$/) { sub(/us/, "", v); v /= 1000 }
                                  else if (v ~ /ms$/) { sub(/ms/, "", v) }
                                  else if (v ~ /s$/) { sub(/s/, "", v); v *= 1000 }
                                  printf "%.2f", v }' "$work/wrk.txt")"
        echo "| \`GET $path\` | $rps | $p99 | $(awk -v t="$one" 'BEGIN { printf "%.1f", t * 1000 }') |" >>"$table"
    done
    kill "$serve_pid"
    wait "$serve_pid" 2>/dev/null || true
    serve_pid=""
fi

sweep_line="$("$store_bench" sweep "$db" 2000)"
echo "$sweep_line"
{
    echo
    echo "| store (bench_store) | result |"
    echo "|---|---|"
    echo "| LMDB ingest, encrypted flow records | $ingest_rate records/s |"
    echo "| retention sweep of $records flows, 2,000 per transaction | $sweep_line |"
} >>"$table"

if [ "$smoke" = 1 ]; then
    echo "store/api smoke: seeded $records flows, API step $([ "$have_wrk" = 1 ] && echo ran || echo skipped), sweep ran"
    exit 0
fi
cat "$table"

if [ "$write_docs" = 1 ]; then
    doc="$root/docs/BENCHMARKS.md"
    commit="$(git -C "$root" rev-parse --short HEAD 2>/dev/null || echo unknown)"
    if ! git -C "$root" diff --quiet HEAD 2>/dev/null; then
        commit="$commit (with uncommitted changes)"
    fi
    section="$work/section.md"
    {
        echo "<!-- store-api:begin -->"
        echo "Measured $(date -u +%Y-%m-%d) by \`bench/store_api.sh --records $records\` (wrk: 2 threads,"
        echo "32 connections, ${duration} s per endpoint, on the same machine as the server)."
        echo
        echo "- CPU: $(lscpu | sed -n 's/^Model name: *//p' | head -1), $(nproc) cores available"
        echo "- kernel: $(uname -sr), file system of \$TMPDIR: $(df -T "$work" | awk 'NR == 2 { print $2 }')"
        echo "- build type: $(sed -n 's/^CMAKE_BUILD_TYPE:[A-Z]*=//p' "$build/CMakeCache.txt")"
        echo "- commit: $commit"
        echo
        cat "$table"
        echo "<!-- store-api:end -->"
    } >"$section"
    if [ ! -f "$doc" ] || ! grep -q '<!-- store-api:begin -->' "$doc"; then
        echo "store_api.sh: $doc has no '<!-- store-api:begin -->' marker; add the markers first" >&2
        exit 1
    fi
    awk -v f="$section" '
        /<!-- store-api:begin -->/ { while ((getline line < f) > 0) print line; skip = 1; next }
        /<!-- store-api:end -->/ { skip = 0; next }
        !skip { print }' "$doc" >"$work/doc.md"
    cp "$work/doc.md" "$doc"
    echo "store_api.sh: updated $doc"
fi
