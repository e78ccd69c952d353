#!/bin/bash
# Highest replay rate without packet loss, for `flowveil capture` and for
# `tcpdump -w /dev/null`, measured the same way.
#
# A network namespace with a veth pair is created (and deleted at exit).
# For each rate, the capturer listens on one end and tcpreplay sends
# --pps RATE on the other, a fixed duration's worth of packets from a
# capture of the demo generator's "mixed" profile (DNS, TLS, HTTP, QUIC,
# bulk TCP and small UDP). A step counts as lossless when the capturer
# reports zero kernel drops and at least as many received packets as
# tcpreplay sent. On Linux libpcap's received count includes the frames
# the kernel then dropped, so the drop count is what decides. The
# rate printed is the one tcpreplay achieved, which can fall short of
# the requested one at high rates.
#
# Needs root, ip, tcpreplay and tcpdump. Not a unit test: the result
# depends on the machine and on other load (run it on an idle machine).
#
# usage: bench/drop-rate.sh FLOWVEIL_BIN DEMOGEN_BIN [RATE...]
#   RATE: packets per second, or "max" for tcpreplay --topspeed
#   environment: SECONDS_PER_STEP (default 3), FLOWVEIL_ARGS (extra
#   capture options, for example "--workers 2 --buffer-size 128")
set -euo pipefail

flowveil=${1:?usage: drop-rate.sh FLOWVEIL_BIN DEMOGEN_BIN [RATE...]}
demogen=${2:?usage: drop-rate.sh FLOWVEIL_BIN DEMOGEN_BIN [RATE...]}
shift 2
rates=("$@")
[ ${#rates[@]} -gt 0 ] || rates=(25000 50000 100000 200000 300000 400000 max)
seconds=${SECONDS_PER_STEP:-3}
source_dir=$(cd "$(dirname "$0")/.." && pwd)

[ "$(id -u)" -eq 0 ] || { echo "drop-rate: needs root (network namespace)" >&2; exit 2; }
for tool in ip tcpreplay tcpdump; do
    command -v "$tool" >/dev/null || { echo "drop-rate: $tool not found" >&2; exit 2; }
done

ns="fvdrop$$"
work=$(mktemp -d /tmp/flowveil-drop.XXXXXX)
cleanup() {
    ip netns del "$ns" 2>/dev/null || true
    rm -rf "$work"
}
trap cleanup EXIT

ip netns add "$ns"
ip -n "$ns" link add va type veth peer name vb
ip netns exec "$ns" sysctl -qw net.ipv6.conf.all.disable_ipv6=1 net.ipv6.conf.default.disable_ipv6=1
ip -n "$ns" link set va up
ip -n "$ns" link set vb up

pcap="$work/mixed.pcap"
"$demogen" --profile mixed --flows 40000 --output "$pcap" >/dev/null
packets_in_file=$(tcpdump -r "$pcap" -nq 2>/dev/null | wc -l)

# Replay RATE pps for SECONDS ("max": as fast as tcpreplay can, the
# file's packet count); print "sent achieved_pps".
replay() {
    local speed limit out
    if [ "$1" = max ]; then
        speed=(--topspeed)
        limit=$packets_in_file
    else
        speed=(--pps "$1")
        limit=$(( $1 * seconds ))
    fi
    out=$(ip netns exec "$ns" tcpreplay -i va "${speed[@]}" --loop 0 --limit "$limit" \
          "$pcap" 2>&1)
    local sent achieved
    sent=$(echo "$out" | sed -n 's/.*Successful packets: *\([0-9]*\).*/\1/p')
    achieved=$(echo "$out" | sed -n 's/.*Rated: .*, \([0-9.]*\) pps.*/\1/p' | head -1)
    echo "${sent:-0} ${achieved%.*}"
}

# flowveil: received and kernel drops from its exit summary line
# "vb: N packets received, dropped kernel=K interface=I".
run_flowveil() {
    local rate=$1 db="$work/db-$1" err="$work/flowveil-$1.err"
    # shellcheck disable=SC2086
    ip netns exec "$ns" "$flowveil" capture --policy "$source_dir/policy/example-policy.yaml" \
        --db "$db" -i vb --log stderr ${FLOWVEIL_ARGS:-} 2>"$err" &
    local pid=$!
    for _ in $(seq 100); do grep -q "capturing on" "$err" 2>/dev/null && break; sleep 0.1; done
    read -r sent achieved < <(replay "$rate")
    sleep 1
    kill -INT "$pid"
    wait "$pid" || true
    local line received dropped
    line=$(grep 'vb: .* packets received' "$err" | tail -1)
    received=$(echo "$line" | sed -n 's/.*vb: \([0-9]*\) packets received.*/\1/p')
    dropped=$(echo "$line" | sed -n 's/.*dropped kernel=\([0-9]*\).*/\1/p')
    echo "$sent ${achieved:-0} ${received:-0} ${dropped:-unknown}"
    rm -rf "$db"
}

# tcpdump: "N packets received by filter" and "N packets dropped by kernel".
run_tcpdump() {
    local rate=$1 err="$work/tcpdump-$1.err"
    ip netns exec "$ns" tcpdump -i vb -w /dev/null -B 65536 2>"$err" &
    local pid=$!
    for _ in $(seq 100); do grep -q "listening on" "$err" 2>/dev/null && break; sleep 0.1; done
    read -r sent achieved < <(replay "$rate")
    sleep 1
    kill -INT "$pid"
    wait "$pid" || true
    local received dropped
    received=$(sed -n 's/^\([0-9]*\) packets received by filter.*/\1/p' "$err")
    dropped=$(sed -n 's/^\([0-9]*\) packets dropped by kernel.*/\1/p' "$err")
    echo "$sent ${achieved:-0} ${received:-0} ${dropped:-unknown}"
}

echo "capture file: $packets_in_file packets (demogen mixed), $seconds s per step"
echo "capturer  requested_pps  achieved_pps  sent  received  kernel_drops  lossless"
best_flowveil=0
best_tcpdump=0
for rate in "${rates[@]}"; do
    for who in flowveil tcpdump; do
        read -r sent achieved received dropped < <("run_$who" "$rate")
        lossless=no
        if [ "$dropped" = "0" ] && [ "$received" -ge "$sent" ] && [ "$sent" -gt 0 ]; then
            lossless=yes
            if [ "$who" = flowveil ] && [ "$achieved" -gt "$best_flowveil" ]; then
                best_flowveil=$achieved
            fi
            if [ "$who" = tcpdump ] && [ "$achieved" -gt "$best_tcpdump" ]; then
                best_tcpdump=$achieved
            fi
        fi
        printf '%-9s %13s %13s %8s %9s %13s  %s\n' "$who" "$rate" "$achieved" "$sent" \
               "$received" "$dropped" "$lossless"
    done
done
echo "highest lossless rate: flowveil capture $best_flowveil pps, tcpdump -w /dev/null $best_tcpdump pps"
