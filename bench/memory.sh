#!/usr/bin/env bash
# bench/memory.sh: peak memory of flowveil ingest on the captures that
# try hardest to grow its state, against the capture engine's memory
# bound (cap_config.max_memory_bytes, default 256 MiB).
#
# usage: bench/memory.sh [--build-dir DIR] [--smoke] [--no-docs]
#
#   --build-dir DIR  build with flowveil, flowveil-demogen and
#                    bench_memory_probe (default: build)
#   --smoke          tiny captures and a 1 MiB engine bound; checks that
#                    every program runs, that the engine stays under its
#                    bound and that it evicts, and times nothing. Docs are
#                    not touched
#   --no-docs        print the table without writing docs/BENCHMARKS.md
#
# The captures come from flowveil-demogen (same bytes for the same
# options):
#   synflood   4,000,000 unanswered SYNs, one flow each
#   scan16     524,288 SYNs from one source over 10.1.0.0/16, eight ports
#   fragments  200,000 UDP datagrams none of whose fragments complete
#   dnsnames   2,000,000 lookups of distinct names, all NXDOMAIN
# For each: flowveil ingest with the example policy under GNU time
# (peak RSS of the whole process: engine, detectors, aggregates, LMDB
# pages), then bench_memory_probe, the capture engine alone with the
# default bound, which prints the bytes it counted against the bound.
# While ingest runs, /proc/PID/status is read every 100 ms for the split
# of the RSS: RssAnon is the process's own memory (heap, stacks), RssFile
# the file pages it has mapped, here nearly all LMDB map pages. Each of
# the two is the highest sample, so a peak shorter than 100 ms can be
# missed; the total from GNU time is exact.
# Requires GNU time at /usr/bin/time and pgrep.
set -euo pipefail

here="$(cd "$(dirname "$0")" && pwd)"
root="$(cd "$here/.." && pwd)"
build="$root/build"
smoke=0
docs=1

while [ $# -gt 0 ]; do
    case "$1" in
    --build-dir)
        [ $# -ge 2 ] || { echo "memory.sh: --build-dir needs a directory" >&2; exit 2; }
        build="$(cd "$2" && pwd)"
        shift 2
        ;;
    --smoke) smoke=1; docs=0; shift ;;
    --no-docs) docs=0; shift ;;
    -h | --help) sed -n '2,31p' "$0" | sed 's/^# \{0,1\}//'; exit 0 ;;
    *) echo "memory.sh: unknown option '$1'; see --help" >&2; exit 2 ;;
    esac
done

flowveil="$build/cli/flowveil"
demogen="$build/tools/demogen/flowveil-demogen"
probe="$build/bench/bench_memory_probe"
for prog in "$flowveil" "$demogen" "$probe"; do
    if [ ! -x "$prog" ]; then
        echo "memory.sh: $prog is missing; build the flowveil, flowveil-demogen and" \
            "bench_memory_probe targets in $build first" >&2
        exit 1
    fi
done
if [ ! -x /usr/bin/time ]; then
    echo "memory.sh: GNU time (/usr/bin/time) is missing; install the time package" >&2
    exit 1
fi
if ! command -v pgrep >/dev/null; then
    echo "memory.sh: pgrep is missing; install the procps package" >&2
    exit 1
fi

work="$(mktemp -d "${TMPDIR:-/tmp}/flowveil-memory.XXXXXX")"
trap 'rm -rf "$work"' EXIT

profiles="synflood scan16 fragments dnsnames"
declare -A flows
if [ "$smoke" = 1 ]; then
    flows=([synflood]=20000 [scan16]=5000 [fragments]=2000 [dnsnames]=10000)
    probe_bound=(--max-memory-mib 1)
else
    flows=([synflood]=4000000 [scan16]=524288 [fragments]=200000 [dnsnames]=2000000)
    probe_bound=()
fi

# value NAME LINE: the number after NAME in a "name value ..." line.
value() {
    awk -v k="$1" '{ for (i = 1; i < NF; i++) if ($i == k) { print $(i + 1); exit } }' <<<"$2"
}

# sample_rss PID OUT: read /proc/PID/status every 100 ms while PID runs
# and write the highest RssAnon and RssFile seen, in kB, to OUT.
sample_rss() {
    local pid="$1" out="$2" anon=0 file=0 a f
    while [ -r "/proc/$pid/status" ]; do
        read -r a f < <(awk '/^RssAnon:/ { a = $2 } /^RssFile:/ { f = $2 }
                             END { print a + 0, f + 0 }' "/proc/$pid/status" 2>/dev/null ||
            echo "0 0")
        [ "$a" -gt "$anon" ] && anon="$a"
        [ "$f" -gt "$file" ] && file="$f"
        sleep 0.1
    done
    echo "$anon $file" >"$out"
}

# ingest_sampled PCAP: flowveil ingest of PCAP into $work/db under GNU time
# (user s, system s and peak RSS kB to $work/time.txt), with sample_rss on
# the flowveil process (peaks to $work/rss.txt). Returns ingest's status.
ingest_sampled() {
    local timer pid rc=0 tries=0
    /usr/bin/time -f '%U %S %M' -o "$work/time.txt" "$flowveil" ingest \
        --policy "$root/policy/example-policy.yaml" --db "$work/db" --now 1796025600 \
        "$1" >"$work/ingest.out" 2>"$work/ingest.err" &
    timer=$!
    # GNU time forks flowveil; wait for the child to appear.
    pid=""
    while [ -z "$pid" ] && kill -0 "$timer" 2>/dev/null && [ "$tries" -lt 500 ]; do
        pid="$(pgrep -P "$timer" | head -n 1 || true)"
        [ -n "$pid" ] || sleep 0.01
        tries=$((tries + 1))
    done
    echo "0 0" >"$work/rss.txt"
    if [ -n "$pid" ]; then
        sample_rss "$pid" "$work/rss.txt" &
    fi
    wait "$timer" || rc=$?
    wait
    return "$rc"
}

load_before="$(cut -d' ' -f1-3 /proc/loadavg)"
rows=""
for profile in $profiles; do
    pcap="$work/$profile.pcap"
    "$demogen" --profile "$profile" --flows "${flows[$profile]}" --output "$pcap" 2>/dev/null

    rm -rf "$work/db"
    if ! ingest_sampled "$pcap"; then
        echo "memory.sh: flowveil ingest failed on the $profile capture:" >&2
        tail -n 5 "$work/ingest.err" >&2
        exit 1
    fi
    read -r user_s sys_s rss_kb <"$work/time.txt"
    read -r anon_kb file_kb <"$work/rss.txt"

    if ! line="$("$probe" "${probe_bound[@]}" "$pcap")"; then
        echo "memory.sh: bench_memory_probe failed on the $profile capture" >&2
        exit 1
    fi
    limit="$(value limit_bytes "$line")"
    peak="$(value peak_used_bytes "$line")"
    if [ "$peak" -gt "$limit" ]; then
        echo "memory.sh: the engine counted $peak bytes on the $profile capture, over its" \
            "bound of $limit" >&2
        exit 1
    fi
    if [ "$smoke" = 1 ] && [ "$profile" = synflood ] &&
        [ "$(value flows_evicted_memory "$line")" -eq 0 ]; then
        echo "memory.sh: a 1 MiB bound evicted no flow of $(value flows_created "$line")" >&2
        exit 1
    fi
    rm -f "$pcap"

    rows+="$(awk -v p="$profile" -v pk="$(value packets "$line")" -v u="$user_s" -v s="$sys_s" \
        -v r="$rss_kb" -v ra="$anon_kb" -v rf="$file_kb" -v l="$limit" -v e="$peak" \
        -v fl="$(value peak_flows "$line")" -v ev="$(value flows_evicted_memory "$line")" \
        -v fe="$(value frag_evicted "$line")" \
        'BEGIN { printf "| %s | %d | %.1f | %.1f | %.1f | %.2f | %.0f | %.1f | %d | %d | %d |\n",
                 p, pk, r / 1024, ra / 1024, rf / 1024, u + s, l / 1048576, e / 1048576, fl,
                 ev, fe }')"$'\n'
done
load_after="$(cut -d' ' -f1-3 /proc/loadavg)"

if [ "$smoke" = 1 ]; then
    echo "memory smoke: flowveil ingest and bench_memory_probe ran on $profiles; the engine" \
        "stayed under a 1 MiB bound and evicted"
    exit 0
fi

cpu="$(awk -F': ' '/^model name/ { print $2; exit }' /proc/cpuinfo)"
mem_gb="$(awk '/^MemTotal/ { printf "%.0f", $2 / 1048576 }' /proc/meminfo)"
table="$(
    cat <<EOF
Measured on $(date -u +%Y-%m-%d) with \`bench/memory.sh\`: $cpu, $(nproc) cores,
$mem_gb GiB RAM, $(uname -sr). Load average (1, 5, 15 min) $load_before
before and $load_after after. One run per capture. RssAnon (the
process's own memory) and RssFile (mapped file pages, nearly all of the
LMDB map) are the highest of samples taken every 100 ms, each at its own
moment, so they need not add up to the peak RSS.

| capture | packets | flowveil ingest peak RSS MiB | peak RssAnon MiB | peak RssFile MiB | ingest CPU s | engine bound MiB | engine peak MiB | engine peak flows | flows evicted for memory | fragment datagrams evicted |
|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|
${rows%$'\n'}
EOF
)"
printf '%s\n' "$table"

if [ "$docs" = 1 ]; then
    doc="$root/docs/BENCHMARKS.md"
    if ! grep -q '<!-- memory:begin -->' "$doc" || ! grep -q '<!-- memory:end -->' "$doc"; then
        echo "memory.sh: $doc has no memory:begin/memory:end markers; the table is above" >&2
        exit 1
    fi
    printf '%s\n' "$table" >"$work/table.md"
    awk -v tf="$work/table.md" '
        /<!-- memory:begin -->/ { print; while ((getline l < tf) > 0) print l; skip = 1; next }
        /<!-- memory:end -->/ { skip = 0 }
        !skip { print }' "$doc" >"$work/doc.md"
    cat "$work/doc.md" >"$doc"
    echo "memory.sh: wrote the table into $doc"
fi
