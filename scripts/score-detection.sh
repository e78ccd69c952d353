#!/usr/bin/env bash
# Measure the detectors on a generated scenario. The script generates it
# with flowveil-scengen, ingests it with its own policy, exports the
# alerts and scores them against the ground truth with flowveil-score.
# The scorer prints precision and recall per detector as a table, and
# writes them as JSON to score.json.
#
# Usage: scripts/score-detection.sh [--build DIR] [--keep DIR] [SCENGEN OPTIONS]
#   --build DIR  the build directory holding cli/flowveil and
#                tools/scengen/ (default build)
#   --keep DIR   write the scenario, store, alerts and score.json into DIR
#                and keep them (default: a temporary directory, removed
#                at exit)
#   Every other option goes to flowveil-scengen, for example --small,
#   --seed N, --days D, --hosts H (see flowveil-scengen --help).
#
# Exit status: that of flowveil-score (0 targets met, 1 missed, 2 bad
# input), or 2 when a step before it fails.
set -euo pipefail

root="$(cd "$(dirname "$0")/.." && pwd)"
build="$root/build"
keep=""
gen_args=()

while [ $# -gt 0 ]; do
    case "$1" in
        --build) build="${2:?--build needs a directory}"; shift 2 ;;
        --keep) keep="${2:?--keep needs a directory}"; shift 2 ;;
        -h|--help) sed -n '2,18p' "$0" | sed 's/^# \{0,1\}//'; exit 0 ;;
        --output-dir) echo "score-detection: error: use --keep DIR instead of --output-dir" >&2
                      exit 2 ;;
        *) gen_args+=("$1"); shift ;;
    esac
done

flowveil="$build/cli/flowveil"
scengen="$build/tools/scengen/flowveil-scengen"
score="$build/tools/scengen/flowveil-score"
for tool in "$flowveil" "$scengen" "$score"; do
    if [ ! -x "$tool" ]; then
        echo "score-detection: error: $tool is missing; build the targets flowveil," \
             "flowveil-scengen and flowveil-score or pass --build" >&2
        exit 2
    fi
done
if ! command -v jq >/dev/null; then
    echo "score-detection: error: jq is missing; install the Debian package jq" >&2
    exit 2
fi

if [ -n "$keep" ]; then
    work="$keep"
    mkdir -p "$work"
else
    work="$(mktemp -d)"
    trap 'rm -rf "$work"' EXIT
fi
rm -rf "$work/scenario" "$work/db"

"$scengen" --output-dir "$work/scenario" ${gen_args[@]+"${gen_args[@]}"} || exit 2

# Ingest at the fixed time scengen suggests (an hour after the last day),
# so every record falls into one key epoch and the scorer can recompute
# the planted hosts' pseudonyms. The scenario's dates are fixed, so that
# time may lie after today's clock, which ingest accepts only with
# --allow-future-now.
now="$(jq -r '.ingest_now_s' "$work/scenario/scenario.json")"

"$flowveil" ingest --policy "$work/scenario/policy.yaml" --db "$work/db" --now "$now" \
    --allow-future-now "$work/scenario/scenario.pcap" || exit 2
"$flowveil" export --db "$work/db" --class alerts --now "$now" \
    --output "$work/alerts.jsonl" || exit 2

status=0
"$score" --truth "$work/scenario/truth.jsonl" --alerts "$work/alerts.jsonl" \
    --key "$work/db/pseudonym.key" --json "$work/score.json" || status=$?
exit "$status"
