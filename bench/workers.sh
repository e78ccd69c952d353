#!/usr/bin/env bash
# Measure `flowveil ingest --workers N` against the single-threaded ingest
# on one generated capture: median wall and CPU seconds of alternating
# runs, packets per wall second and the speedup over --workers 1.
#
#   bench/workers.sh --build-dir build [--runs 5] [--workers "1 2"]
#                    [--capture FILE] [--write-doc]
#
# Without --capture it generates the mixed benchmark capture with
# flowveil-demogen (--profile mixed, seed 1, about 2 million packets).
# --write-doc replaces the text between the workers markers in
# docs/BENCHMARKS.md. --smoke runs each setting once on a 2,000-flow
# capture and checks only that the runs succeed.
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
source_dir="$(cd "$here/.." && pwd)"
build_dir=""
runs=5
workers_list="1 2"
capture=""
write_doc=0
smoke=0

while [[ $# -gt 0 ]]; do
    case "$1" in
    --build-dir) build_dir="$2"; shift 2 ;;
    --runs) runs="$2"; shift 2 ;;
    --workers) workers_list="$2"; shift 2 ;;
    --capture) capture="$2"; shift 2 ;;
    --write-doc) write_doc=1; shift ;;
    --smoke) smoke=1; runs=1; shift ;;
    -h|--help) sed -n '2,13p' "$0"; exit 0 ;;
    *) echo "workers.sh: unknown option '$1'; see --help" >&2; exit 2 ;;
    esac
done
if [[ -z "$build_dir" ]]; then
    echo "workers.sh: missing --build-dir DIR (a configured and built flowveil tree)" >&2
    exit 2
fi
flowveil="$build_dir/cli/flowveil"
demogen="$build_dir/tools/demogen/flowveil-demogen"
for program in "$flowveil" /usr/bin/time; do
    if [[ ! -x "$program" ]]; then
        echo "workers.sh: $program not found; build flowveil and install GNU time" >&2
        exit 1
    fi
done

work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT

if [[ -z "$capture" ]]; then
    if [[ ! -x "$demogen" ]]; then
        echo "workers.sh: $demogen not found; build the flowveil-demogen target" >&2
        exit 1
    fi
    capture="$work/mixed.pcap"
    flows=270000
    [[ $smoke -eq 1 ]] && flows=2000
    "$demogen" --profile mixed --seed 1 --flows "$flows" --output "$capture" >/dev/null
fi

policy="$source_dir/policy/example-policy.yaml"
now=1767225600

# One ingest into a fresh store; prints "wall cpu packets".
run_once() {
    local workers="$1" db="$work/db-$1"
    rm -rf "$db"
    /usr/bin/time -f "%e %U %S" -o "$work/time" \
        "$flowveil" ingest --policy "$policy" --db "$db" --now "$now" --workers "$workers" \
        "$capture" 2>"$work/log"
    local packets
    packets="$(sed -n 's/.*notice: \([0-9]*\) packets (.*/\1/p' "$work/log" | tail -1)"
    read -r wall user sys <"$work/time"
    echo "$wall $(echo "$user + $sys" | bc) $packets"
}

median() { sort -g | awk '{ v[NR] = $1 } END { print (NR % 2) ? v[(NR + 1) / 2] : (v[NR / 2] + v[NR / 2 + 1]) / 2 }'; }

declare -A walls cpus
packets=0
for ((r = 1; r <= runs; r++)); do
    for w in $workers_list; do
        read -r wall cpu pk < <(run_once "$w")
        walls[$w]+="$wall "
        cpus[$w]+="$cpu "
        packets="$pk"
    done
done

if [[ $smoke -eq 1 ]]; then
    echo "workers.sh: smoke run passed ($packets packets per run)"
    exit 0
fi

base_wall=""
table="| workers | median wall s | median CPU s | packets per wall s | speedup (wall) |"$'\n'
table+="|---:|---:|---:|---:|---:|"$'\n'
for w in $workers_list; do
    mw="$(tr ' ' '\n' <<<"${walls[$w]}" | grep . | median)"
    mc="$(tr ' ' '\n' <<<"${cpus[$w]}" | grep . | median)"
    [[ -z "$base_wall" ]] && base_wall="$mw"
    pps="$(echo "$packets / $mw" | bc)"
    speedup="$(echo "scale=2; $base_wall / $mw" | bc)"
    table+="| $w | $mw | $mc | $pps | $speedup |"$'\n'
done

commit="$(git -C "$source_dir" rev-parse --short HEAD 2>/dev/null || echo unknown)"
if [[ -n "$(git -C "$source_dir" status --porcelain --untracked-files=no 2>/dev/null)" ]]; then
    commit+=" with uncommitted changes"
fi
report="Measured $(date -u +%Y-%m-%d) by \`bench/workers.sh --runs $runs\` ($runs runs per setting, alternating)
on \`$(basename "$capture")\` ($packets packets), with the example policy.

- CPU: $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | sed 's/^ //'), $(nproc) cores available
- load average before the runs: $(cut -d' ' -f1-3 /proc/loadavg)
- commit: $commit

$table"
echo "$report"

if [[ $write_doc -eq 1 ]]; then
    doc="$source_dir/docs/BENCHMARKS.md"
    python3 - "$doc" "$report" <<'EOF'
import sys
path, report = sys.argv[1], sys.argv[2]
text = open(path).read()
begin, end = "<!-- workers:begin -->", "<!-- workers:end -->"
if begin not in text or end not in text:
    sys.exit(f"workers.sh: {path} has no {begin} ... {end} markers")
head, rest = text.split(begin, 1)
_, tail = rest.split(end, 1)
open(path, "w").write(head + begin + "\n" + report + end + tail)
EOF
fi
