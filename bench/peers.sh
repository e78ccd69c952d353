#!/usr/bin/env bash
# Peer comparison: flowveil and other flow and traffic tools on the same
# generated captures, in the same script, alternating runs.
#
# Captures (flowveil-demogen, deterministic):
#   mixed     --profile mixed: DNS, TLS, HTTP, QUIC, bulk TCP and small
#             UDP, about 2 million packets and 270,000 flows by default
#   synflood  --profile synflood: unanswered SYNs from many sources, one
#             flow each (4 million by default)
#
# Programs on the mixed capture, each run N times, alternating:
#   bare_loop        bench_bare_loop: libpcap read-and-count, the floor
#   dissect_only     bench_dissect_only: flowveil's capture engine with a
#                    counting sink (decoding, flows, protocol parsers)
#   flowveil ingest  every metadata class of the example policy,
#                    pseudonymization, encrypted LMDB storage, detectors
#   argus            argus -r FILE -w /dev/null
#   nfpcapd          nfpcapd -r FILE -w DIR (nfdump)
#   softflowd        softflowd -r FILE -n 127.0.0.1:PORT, NetFlow v5 to a
#                    UDP socket on loopback that this script opens and
#                    discards
#   ndpiReader       ndpiReader -i FILE -q (nDPI)
#   tshark           tshark -r FILE -q -z conv,ip
# Stage costs on the mixed capture, each a program of its own, run in
# the same alternation:
#   flows            bench_stage_flows: decoding and flow tracking, no
#                    application parsers (bench-only build of capture/)
#   + parsers        bench_dissect_only: DNS, TLS, HTTP, QUIC and other
#                    parsers
#   + metadata       bench_stages metadata: flow and DNS records built
#   + pseudonyms     bench_stages pseudonyms: keyed BLAKE2b (cached)
#   + store, plain   bench_stages store-plain: encoded records in LMDB,
#                    not encrypted (bench only)
#   + store, encrypted  bench_stages store-encrypted: store_put
# flowveil ingest adds the policy gate, TLS and HTTP records,
# aggregates, detectors and the resumable-ingest checkpoint to the last.
# On the synflood capture: flowveil ingest, argus and dissect_only, once
# each, for peak RSS, evicted flows and whether they finish.
#
# usage: bench/peers.sh [--build-dir DIR] [--runs N] [--flows N]
#                       [--syn-flows N] [--smoke] [--no-docs]
#   --build-dir DIR  CMake build directory with bench/, cli/ and
#                    tools/demogen/ built (default: build)
#   --runs N         runs per program on the mixed capture, median taken
#                    (default 3)
#   --flows N        conversations in the mixed capture (default 270000)
#   --syn-flows N    SYNs in the synflood capture (default 4000000)
#   --smoke          tiny captures (2,000 conversations, 20,000 SYNs), one
#                    run each, peers only where installed; checks that
#                    every program succeeds, times nothing, leaves the
#                    docs alone
#   --no-docs        print the tables but do not update docs/BENCHMARKS.md
#
# CPU time is user + system time from GNU time (/usr/bin/time), which
# counts every thread and child; peak RSS is its maximum resident set
# size. The full run writes the tables, the machine and the commit
# between the "peers" markers of docs/BENCHMARKS.md.
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
root="$(cd "$here/.." && pwd)"
build="$root/build"
runs=3
flows=270000
syn_flows=4000000
smoke=0
write_docs=1

while [ $# -gt 0 ]; do
    case "$1" in
    --build-dir) build="$2"; shift 2 ;;
    --runs) runs="$2"; shift 2 ;;
    --flows) flows="$2"; shift 2 ;;
    --syn-flows) syn_flows="$2"; shift 2 ;;
    --smoke) smoke=1; shift ;;
    --no-docs) write_docs=0; shift ;;
    -h | --help) awk 'NR > 1 && !/^#/ { exit } NR > 1' "$0"; exit 0 ;;
    *) echo "peers.sh: unknown option '$1'; see --help" >&2; exit 2 ;;
    esac
done
if [ "$smoke" = 1 ]; then
    runs=1
    flows=2000
    syn_flows=20000
    write_docs=0
fi
for value in "$runs" "$flows" "$syn_flows"; do
    case "$value" in
    '' | *[!0-9]* | 0) echo "peers.sh: --runs, --flows and --syn-flows take a positive integer, got '$value'" >&2; exit 2 ;;
    esac
done

bare="$build/bench/bench_bare_loop"
dissect="$build/bench/bench_dissect_only"
stage_flows="$build/bench/bench_stage_flows"
stages="$build/bench/bench_stages"
flowveil="$build/cli/flowveil"
demogen="$build/tools/demogen/flowveil-demogen"
for bin in "$bare" "$dissect" "$stage_flows" "$stages" "$flowveil" "$demogen"; do
    if [ ! -x "$bin" ]; then
        echo "peers.sh: $bin not found; build first (cmake --build $build)" >&2
        exit 1
    fi
done
if [ ! -x /usr/bin/time ]; then
    echo "peers.sh: /usr/bin/time (GNU time) not found; install the Debian package 'time'" >&2
    exit 1
fi

# Peers: program, Debian package. A missing peer is skipped with a
# message in smoke mode and stops a full run, so that a published table
# never lacks a column silently.
missing=()
for pair in argus:argus-server nfpcapd:nfdump softflowd:softflowd ndpiReader:libndpi-bin \
    tshark:tshark python3:python3; do
    if ! command -v "${pair%%:*}" >/dev/null; then
        missing+=("$pair")
    fi
done
if [ "${#missing[@]}" -gt 0 ]; then
    packages="$(printf '%s\n' "${missing[@]}" | cut -d: -f2 | sort -u | tr '\n' ' ')"
    if [ "$smoke" = 1 ]; then
        echo "peers.sh: not installed, skipped: ${missing[*]} (apt-get install $packages)" >&2
    else
        echo "peers.sh: peers missing: ${missing[*]}; install them with: apt-get install $packages (or run bench/run.sh --install-peers)" >&2
        exit 1
    fi
fi
have() { command -v "$1" >/dev/null; }

work="$(mktemp -d)"
sink_pid=""
cleanup() {
    if [ -n "$sink_pid" ]; then kill "$sink_pid" 2>/dev/null || true; fi
    rm -rf "$work"
}
trap cleanup EXIT

mixed="$work/mixed.pcap"
synflood="$work/synflood.pcap"
"$demogen" --profile mixed --flows "$flows" --output "$mixed" 2>"$work/demogen-mixed.txt"
"$demogen" --profile synflood --flows "$syn_flows" --output "$synflood" 2>"$work/demogen-syn.txt"

# softflowd exports NetFlow to this UDP socket on loopback, which reads
# and discards, so that softflowd's sends succeed as against a collector.
sink_port=""
if have softflowd && have python3; then
    python3 -c '
import socket, sys
s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
s.bind(("127.0.0.1", 0))
print(s.getsockname()[1], flush=True)
sys.stdout.close()
while True:
    s.recv(65536)
' >"$work/sink.port" &
    sink_pid=$!
    for _ in $(seq 50); do
        if [ -s "$work/sink.port" ]; then break; fi
        sleep 0.1
    done
    sink_port="$(cat "$work/sink.port")"
fi

# run_once NAME CMD...: run CMD under GNU time and append
# "cpu_s wall_s rss_kb" to $work/NAME.times; its output goes to
# $work/NAME.out and $work/NAME.err.
run_once() {
    local name="$1"
    shift
    if ! /usr/bin/time -f '%U %S %e %M' -o "$work/time.txt" "$@" >"$work/$name.out" 2>"$work/$name.err"; then
        echo "peers.sh: $name failed: $*" >&2
        tail -n 20 "$work/$name.err" >&2
        exit 1
    fi
    awk '{ printf "%.3f %.3f %d\n", $1 + $2, $3, $4 }' "$work/time.txt" >>"$work/$name.times"
}

# Each program on FILE, in the order of the table.
run_all() {
    local file="$1"
    run_once bare "$bare" "$file"
    run_once dissect "$dissect" "$file"
    rm -rf "$work/db"
    run_once ingest "$flowveil" ingest --policy "$root/policy/example-policy.yaml" \
        --db "$work/db" --now 1796025600 "$file"
    if have argus; then run_once argus argus -r "$file" -w /dev/null; fi
    if have nfpcapd; then
        rm -rf "$work/nfpcapd" && mkdir "$work/nfpcapd"
        run_once nfpcapd nfpcapd -r "$file" -w "$work/nfpcapd"
    fi
    if [ -n "$sink_port" ]; then
        run_once softflowd softflowd -r "$file" -n "127.0.0.1:$sink_port"
    fi
    if have ndpiReader; then run_once ndpireader ndpiReader -i "$file" -q; fi
    if have tshark; then run_once tshark tshark -r "$file" -q -z conv,ip; fi
    run_once stage_flows "$stage_flows" "$file"
    for stage in metadata pseudonyms store-plain store-encrypted; do
        rm -rf "$work/stage"
        run_once "stage_$stage" "$stages" "$stage" "$file" "$work/stage"
    done
}

for _ in $(seq "$runs"); do
    run_all "$mixed"
done

packets="$(awk '{ print $2 }' "$work/bare.out")"
packets_dissect="$(awk '{ print $2 }' "$work/dissect.out")"
if [ "$packets" != "$packets_dissect" ]; then
    echo "peers.sh: bare_loop read $packets packets but dissect_only $packets_dissect" >&2
    exit 1
fi
if ! grep -q "^flowveil: notice: $packets packets" "$work/ingest.err"; then
    echo "peers.sh: flowveil ingest did not report $packets packets:" >&2
    tail -n 3 "$work/ingest.err" >&2
    exit 1
fi

# Worst case: flowveil ingest and argus on the SYN flood.
rm -rf "$work/db"
mv "$work/ingest.err" "$work/ingest-mixed.err"
run_once syn_ingest "$flowveil" ingest --policy "$root/policy/example-policy.yaml" \
    --db "$work/db" --now 1796025600 "$synflood"
if have argus; then run_once syn_argus argus -r "$synflood" -w /dev/null; fi
# ingest prints its eviction counter only on SIGUSR1; bench_dissect_only
# runs the same engine with the same default flow-table bound (1,000,000
# flows) and prints it.
run_once syn_dissect "$dissect" "$synflood"
syn_packets="$(awk '{ print $2 }' "$work/syn_dissect.out")"
syn_evicted="$(awk '{ for (i = 1; i < NF; i++) if ($i == "evicted") print $(i + 1) }' "$work/syn_dissect.out")"

if [ "$smoke" = 1 ]; then
    ran="bare_loop dissect_only ingest"
    for name in argus nfpcapd softflowd ndpireader tshark; do
        if [ -f "$work/$name.times" ]; then ran="$ran $name"; fi
    done
    echo "peers smoke: $packets mixed packets and $syn_packets SYNs; ran $ran;" \
        "flowveil evicted ${syn_evicted:-?} flows on the SYN flood"
    exit 0
fi

median() { sort -n -k"$2","$2" "$work/$1.times" | awk -v c="$2" '{ v[NR] = $c } END { print (NR % 2) ? v[(NR + 1) / 2] : (v[NR / 2] + v[NR / 2 + 1]) / 2 }'; }
max_rss_mb() { awk '$3 > m { m = $3 } END { printf "%.1f", m / 1024 }' "$work/$1.times"; }

ingest_cpu="$(median ingest 1)"
table="$work/table.md"
{
    echo "| program | median CPU s | median wall s | peak RSS MiB | packets per CPU s | flowveil ingest / program (packets per CPU s) |"
    echo "|---|---:|---:|---:|---:|---:|"
    for row in "bare_loop (libpcap read, floor):bare" "dissect_only (flowveil capture engine):dissect" \
        "flowveil ingest (all metadata, pseudonyms, encrypted store):ingest" \
        "argus:argus" "nfpcapd (nfdump):nfpcapd" "softflowd:softflowd" \
        "ndpiReader (nDPI):ndpireader" "tshark -z conv,ip:tshark"; do
        label="${row%:*}"
        name="${row##*:}"
        if [ ! -f "$work/$name.times" ]; then continue; fi
        awk -v l="$label" -v p="$packets" -v c="$(median "$name" 1)" -v w="$(median "$name" 2)" \
            -v r="$(max_rss_mb "$name")" -v f="$ingest_cpu" \
            'BEGIN { pps = c > 0 ? sprintf("%.0f", p / c) : "n/a";
                     ratio = (c > 0 && f > 0) ? sprintf("%.2f", c / f) : "n/a";
                     printf "| %s | %.2f | %.2f | %s | %s | %s |\n", l, c, w, r, pps, ratio }'
    done
    echo
    echo "| stage (bench/stages.c, cumulative) | median CPU s | packets per CPU s | added CPU s |"
    echo "|---|---:|---:|---:|"
    previous=""
    for row in "decode and flow tracking:stage_flows" "+ application parsers:dissect" \
        "+ flow and DNS records:stage_metadata" "+ pseudonyms:stage_pseudonyms" \
        "+ LMDB store, not encrypted:stage_store-plain" \
        "+ LMDB store, encrypted:stage_store-encrypted" \
        "+ policy, TLS/HTTP records, aggregates, detectors (flowveil ingest):ingest"; do
        label="${row%:*}"
        name="${row##*:}"
        cpu="$(median "$name" 1)"
        awk -v l="$label" -v p="$packets" -v c="$cpu" -v prev="$previous" \
            'BEGIN { added = prev == "" ? "" : sprintf("%+.2f", c - prev);
                     pps = c > 0 ? p / c : 0;
                     printf "| %s | %.2f | %.0f | %s |\n", l, c, pps, added }'
        previous="$cpu"
    done
    echo
    echo "| SYN flood ($syn_packets SYNs, one flow each) | CPU s | wall s | peak RSS MiB | flows evicted |"
    echo "|---|---:|---:|---:|---:|"
    awk -v e="${syn_evicted:-n/a} (same engine)" '{ printf "| flowveil ingest | %.2f | %.2f | %.1f | %s |\n", $1, $2, $3 / 1024, e }' \
        "$work/syn_ingest.times"
    awk -v e="${syn_evicted:-n/a}" '{ printf "| dissect_only | %.2f | %.2f | %.1f | %s |\n", $1, $2, $3 / 1024, e }' \
        "$work/syn_dissect.times"
    if [ -f "$work/syn_argus.times" ]; then
        awk '{ printf "| argus | %.2f | %.2f | %.1f | n/a |\n", $1, $2, $3 / 1024 }' "$work/syn_argus.times"
    fi
} >"$table"
cat "$table"

if [ "$write_docs" = 1 ]; then
    doc="$root/docs/BENCHMARKS.md"
    commit="$(git -C "$root" rev-parse --short HEAD 2>/dev/null || echo unknown)"
    if ! git -C "$root" diff --quiet HEAD 2>/dev/null; then
        commit="$commit (with uncommitted changes)"
    fi
    versions="argus $(dpkg-query -W -f '${Version}' argus-server 2>/dev/null || echo '?'),"
    versions="$versions nfdump $(dpkg-query -W -f '${Version}' nfdump 2>/dev/null || echo '?'),"
    versions="$versions softflowd $(dpkg-query -W -f '${Version}' softflowd 2>/dev/null || echo '?'),"
    versions="$versions nDPI $(dpkg-query -W -f '${Version}' libndpi-bin 2>/dev/null || echo '?'),"
    versions="$versions tshark $(dpkg-query -W -f '${Version}' tshark 2>/dev/null || echo '?')"
    section="$work/section.md"
    {
        echo "<!-- peers:begin -->"
        echo "Measured $(date -u +%Y-%m-%d) by \`bench/peers.sh\` ($runs runs each, alternating, median)"
        echo "on \`flowveil-demogen --profile mixed --flows $flows\` ($packets packets) and"
        echo "\`--profile synflood --flows $syn_flows\` ($syn_packets packets)."
        echo
        echo "- CPU: $(lscpu | sed -n 's/^Model name: *//p' | head -1), $(nproc) cores available"
        echo "- memory: $(awk '/MemTotal/ { printf "%.0f GiB", $2 / 1048576 }' /proc/meminfo)"
        echo "- kernel: $(uname -sr)"
        echo "- compiler: $(${CC:-cc} --version | head -1)"
        echo "- build type: $(sed -n 's/^CMAKE_BUILD_TYPE:[A-Z]*=//p' "$build/CMakeCache.txt")"
        echo "- peers (Debian packages): $versions"
        echo "- commit: $commit"
        echo
        cat "$table"
        echo "<!-- peers:end -->"
    } >"$section"
    if [ ! -f "$doc" ] || ! grep -q '<!-- peers:begin -->' "$doc"; then
        echo "peers.sh: $doc has no '<!-- peers:begin -->' marker; add the markers first" >&2
        exit 1
    fi
    awk -v f="$section" '
        /<!-- peers:begin -->/ { while ((getline line < f) > 0) print line; skip = 1; next }
        /<!-- peers:end -->/ { skip = 0; next }
        !skip { print }' "$doc" >"$work/doc.md"
    cp "$work/doc.md" "$doc"
    echo "peers.sh: updated $doc"
fi
