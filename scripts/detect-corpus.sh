#!/usr/bin/env bash
# Run the detectors over every capture of the shared corpus and print which
# alerts fire on which capture.
#
# Each capture is ingested on its own into a fresh store. The policy's
# zones are the private ranges (10/8, 172.16/12, 192.168/16, fc00::/7),
# every detector runs with its defaults, and the learning period is cut
# to its minimum of one hour, so baselines can judge the longer captures. The run fails
# when the policy is rejected, or when ingest of a capture is killed by a
# signal or prints a sanitizer report. An ingest that exits with status 1
# (ndpi-fuzz-2021-10-13.pcap is cut short, for example) is listed as
# "error" with its last message but does not fail the run. Alerts never
# fail the run: they are listed for the reader.
#
# Usage: scripts/detect-corpus.sh [--bin FLOWVEIL] [--corpus DIR] [--keep DIR]
#   --bin     the flowveil binary (default build/cli/flowveil)
#   --corpus  the corpus directory holding pcaps/ (default $FLOWVEIL_CORPUS,
#             else ../shared/corpus beside the checkout)
#   --keep    write the stores, policy and per-capture logs into DIR and
#             keep them (default: a temporary directory, removed at exit)
set -euo pipefail

root="$(cd "$(dirname "$0")/.." && pwd)"
bin="$root/build/cli/flowveil"
corpus="${FLOWVEIL_CORPUS:-$root/../shared/corpus}"
keep=""

while [ $# -gt 0 ]; do
    case "$1" in
        --bin) bin="${2:?--bin needs a path}"; shift 2 ;;
        --corpus) corpus="${2:?--corpus needs a directory}"; shift 2 ;;
        --keep) keep="${2:?--keep needs a directory}"; shift 2 ;;
        -h|--help) sed -n '2,20p' "$0" | sed 's/^# \{0,1\}//'; exit 0 ;;
        *) echo "detect-corpus: error: unknown option '$1'; see --help" >&2; exit 2 ;;
    esac
done

if [ ! -x "$bin" ]; then
    echo "detect-corpus: error: $bin is not an executable; build flowveil or pass --bin" >&2
    exit 2
fi
if [ ! -d "$corpus/pcaps" ]; then
    echo "detect-corpus: error: $corpus/pcaps not found; set FLOWVEIL_CORPUS or pass --corpus" >&2
    exit 2
fi
if ! command -v jq >/dev/null; then
    echo "detect-corpus: error: jq is missing; install the Debian package jq" >&2
    exit 2
fi

if [ -n "$keep" ]; then
    work="$keep"
    mkdir -p "$work"
else
    work="$(mktemp -d)"
    trap 'rm -rf "$work"' EXIT
fi

# A fixed time keeps the runs repeatable: 2027-01-01T00:00:00Z, after every
# capture's traffic, so retention never drops a record during the run.
now=1798761600

cat >"$work/policy.yaml" <<'EOF'
version: 1
zones:
  - name: private4
    networks: [10.0.0.0/8, 172.16.0.0/12, 192.168.0.0/16]
  - name: private6
    networks: ["fc00::/7"]
retention:
  flows: 3650d
  dns: 3650d
  tls: 3650d
  http: 3650d
  alerts: 3650d
  dhcp: 3650d
  ssh: 3650d
detect:
  learning_period: 1h
EOF

if ! "$bin" policy check "$work/policy.yaml" >"$work/policy.out" 2>&1; then
    echo "detect-corpus: error: the corpus policy was rejected:" >&2
    cat "$work/policy.out" >&2
    exit 1
fi

failed=0
errors=0
total=0
printf '%-52s %-7s %s\n' "capture" "ingest" "alerts by detector"
for pcap in "$corpus"/pcaps/*; do
    name="$(basename "$pcap")"
    total=$((total + 1))
    db="$work/db-$name"
    rm -rf "$db"
    status=0
    "$bin" ingest --policy "$work/policy.yaml" --db "$db" --now "$now" --allow-future-now "$pcap" \
        >"$work/$name.out" 2>"$work/$name.err" || status=$?
    if [ "$status" -gt 128 ] || grep -qE 'ERROR: (AddressSanitizer|LeakSanitizer)|runtime error:' \
        "$work/$name.err"; then
        printf '%-52s %-7s %s\n' "$name" "CRASH" "exit status $status; see below"
        sed 's/^/    /' "$work/$name.err" | tail -n 20
        failed=$((failed + 1))
        continue
    fi
    if [ "$status" -ne 0 ]; then
        errors=$((errors + 1))
        printf '%-52s %-7s %s\n' "$name" "error" \
            "exit status $status: $(grep -m 1 -E 'error|warning' "$work/$name.err" | cut -c1-160)"
    fi
    # A store that ingest left incomplete may hold no alerts class at all.
    "$bin" export --db "$db" --class alerts --now "$now" >"$work/$name.alerts" \
        2>>"$work/$name.err" || true
    counts="$(jq -r '.detector' "$work/$name.alerts" | sort | uniq -c |
        awk '{printf "%s%s %d", sep, $2, $1; sep=", "}')"
    if [ "$status" -eq 0 ]; then
        printf '%-52s %-7s %s\n' "$name" "ok" "${counts:--}"
    else
        printf '%-52s %-7s %s\n' "" "" "alerts: ${counts:--}"
    fi
done

echo
echo "alerts per capture (detector, severity, host, peer:port, summary):"
for alerts in "$work"/*.alerts; do
    [ -s "$alerts" ] || continue
    echo "  $(basename "$alerts" .alerts):"
    jq -r '"    \(.detector) \(.severity) \(.host) \(.peer // "-"):\(.peer_port // 0) \(.summary)"' \
        "$alerts"
done

echo
echo "detect-corpus: $total captures: $((total - failed)) without a crash," \
    "$errors of them with an ingest error, $failed crashed"
[ "$failed" -eq 0 ]
