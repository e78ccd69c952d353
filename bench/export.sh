#!/usr/bin/env bash
# Export throughput: records per second from export/ to librdkafka's
# in-process mock cluster and, over IPFIX/UDP, to nfdump's nfcapd on
# 127.0.0.1. Each measurement runs N times and the median is printed.
# After the IPFIX runs nfdump reads nfcapd's file back and the script
# checks that every data record arrived (two per flow record).
#
# usage: bench/export.sh [--build-dir DIR] [--records N] [--runs N]
#   --build-dir DIR  CMake build directory with bench/bench_export built
#                    (default: build)
#   --records N      flow records per run (default 200000)
#   --runs N         runs per destination, median taken (default 3)
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
root="$(cd "$here/.." && pwd)"
build="$root/build"
records=200000
runs=3

while [ $# -gt 0 ]; do
    case "$1" in
    --build-dir) build="$2"; shift 2 ;;
    --records) records="$2"; shift 2 ;;
    --runs) runs="$2"; shift 2 ;;
    -h | --help) sed -n '2,13p' "$0"; exit 0 ;;
    *) echo "export.sh: unknown option '$1'; see --help" >&2; exit 2 ;;
    esac
done
bench="$build/bench/bench_export"
if [ ! -x "$bench" ]; then
    echo "export.sh: $bench is missing; build it with: cmake --build $build --target bench_export" >&2
    exit 1
fi

# Print the median of the "records/s" figures on standard input.
median_rate() {
    sed -n 's/.*: \([0-9]*\) records\/s.*/\1/p' | sort -n | awk '{a[NR]=$1} END {print a[int((NR+1)/2)]}'
}

echo "kafka mock cluster, $records records, $runs runs:"
for _ in $(seq "$runs"); do
    "$bench" kafka-mock "$records" | tee /dev/stderr
done 2>&1 >/dev/null | tee /tmp/flowveil-bench-kafka.txt
echo "median: $(median_rate < /tmp/flowveil-bench-kafka.txt) records/s"

if ! command -v nfcapd >/dev/null || ! command -v nfdump >/dev/null; then
    echo "export.sh: nfcapd or nfdump is missing (Debian package nfdump); IPFIX run skipped" >&2
    exit 0
fi
work="$(mktemp -d)"
trap 'kill "$nfcapd_pid" 2>/dev/null || true; rm -rf "$work"' EXIT
port=$(python3 -c 'import socket; s=socket.socket(socket.AF_INET, socket.SOCK_DGRAM); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
# A larger socket buffer (-B) so that nfcapd, not the kernel, is the limit.
nfcapd -b 127.0.0.1 -p "$port" -w "$work" -t 3600 -B 8388608 >"$work/nfcapd.log" 2>&1 &
nfcapd_pid=$!
sleep 1
echo "ipfix over UDP to nfcapd, $records records, $runs runs:"
for _ in $(seq "$runs"); do
    "$bench" ipfix "127.0.0.1:$port" "$records" | tee /dev/stderr
done 2>&1 >/dev/null | tee /tmp/flowveil-bench-ipfix.txt
echo "median: $(median_rate < /tmp/flowveil-bench-ipfix.txt) records/s"
sleep 1
kill -TERM "$nfcapd_pid"
wait "$nfcapd_pid" || true
received=$(nfdump -R "$work" -q -o csv 2>/dev/null | grep -c . || true)
expected=$((records * runs * 2))
echo "nfcapd stored $received of $expected data records"
