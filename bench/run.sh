#!/usr/bin/env bash
# The benchmark entry point. First the dissection benchmark measures the
# CPU cost of the capture engine as a ratio to a bare libpcap
# read-and-count loop over the same file. Then bench_pseudonym measures
# the cost of one pseudonym with and without the per-epoch cache
# (2,000,000 calls over 2,000 hosts with Zipf-like reuse). Last come
# bench/peers.sh (peers and stage costs) and
# bench/store_api.sh (LMDB ingest, retention sweep, API), each with the
# same --build-dir, --smoke and --no-docs; see their --help.
#
# usage: bench/run.sh [--build-dir DIR] [--runs N] [--hours H] [--seed N]
#                     [--smoke] [--no-docs] [--only-dissection] [--install-peers]
#   --build-dir DIR  CMake build directory with bench/, cli/ and
#                    tools/demogen/ built (default: build)
#   --runs N         runs per program, alternating, median taken (default 5)
#   --hours H        length of the generated demo capture in hours (default 2)
#   --seed N         demo generator seed (default 1)
#   --repeat K       each program reads the file K times per run (default
#                    20), so that CPU times are well above GNU time's 10 ms
#                    resolution; flowveil ingest gets the file K times on
#                    its command line
#   --smoke          run each program once on a 1-hour capture, check that
#                    every run succeeds and counts the same packets, and
#                    time nothing; then peers.sh, store_api.sh and
#                    memory.sh in their smoke modes; docs are not touched
#   --only-dissection  skip peers.sh and store_api.sh
#   --no-docs        print the table but do not update docs/BENCHMARKS.md
#   --install-peers  first install the peers, wrk and GNU time from Debian
#                    with scripts/install-deps.sh (apt-get as root or
#                    through sudo), so that a fresh machine runs every row
#
# CPU time is user + system time from /usr/bin/time (GNU time) and peak
# RSS is its maximum resident set size. The full run writes the table and
# a machine description between the bench markers of docs/BENCHMARKS.md.
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
root="$(cd "$here/.." && pwd)"
build="$root/build"
runs=5
hours=2
seed=1
repeat=20
smoke=0
write_docs=1
others=1
install_peers=0

while [ $# -gt 0 ]; do
    case "$1" in
    --build-dir) build="$2"; shift 2 ;;
    --runs) runs="$2"; shift 2 ;;
    --hours) hours="$2"; shift 2 ;;
    --seed) seed="$2"; shift 2 ;;
    --repeat) repeat="$2"; shift 2 ;;
    --smoke) smoke=1; shift ;;
    --no-docs) write_docs=0; shift ;;
    --only-dissection) others=0; shift ;;
    --install-peers) install_peers=1; shift ;;
    -h | --help) sed -n '2,30p' "$0"; exit 0 ;;
    *) echo "run.sh: unknown option '$1'; see --help" >&2; exit 2 ;;
    esac
done

if [ "$smoke" = 1 ]; then
    runs=1
    hours=1
    repeat=1
    write_docs=0
fi
for value in "$runs" "$repeat"; do
    case "$value" in
    '' | *[!0-9]* | 0) echo "run.sh: --runs and --repeat take a positive integer, got '$value'" >&2; exit 2 ;;
    esac
done
if [ "$install_peers" = 1 ]; then
    # The Debian packages of the programs that peers.sh and store_api.sh
    # compare with or drive.
    "$root/scripts/install-deps.sh" time argus-server nfdump softflowd libndpi-bin tshark \
        python3 wrk curl
fi

bare="$build/bench/bench_bare_loop"
dissect="$build/bench/bench_dissect_only"
flowveil="$build/cli/flowveil"
demogen="$build/tools/demogen/flowveil-demogen"
pseudonym="$build/bench/bench_pseudonym"
for bin in "$bare" "$dissect" "$flowveil" "$demogen" "$pseudonym"; do
    if [ ! -x "$bin" ]; then
        echo "run.sh: $bin not found; build first (cmake --build $build)" >&2
        exit 1
    fi
done
if [ ! -x /usr/bin/time ]; then
    echo "run.sh: /usr/bin/time (GNU time) not found; install the 'time' package" >&2
    exit 1
fi

work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT
capture="$work/demo.pcap"
"$demogen" --output "$capture" --hours "$hours" --seed "$seed" >/dev/null

# run_once NAME CMD...: run CMD under GNU time, append "cpu_s rss_kb" to
# $work/NAME.times and keep the program's output in $work/NAME.out.
run_once() {
    local name="$1"
    shift
    if ! /usr/bin/time -f '%U %S %M' -o "$work/time.txt" "$@" >"$work/$name.out" 2>"$work/$name.err"; then
        echo "run.sh: $name failed:" >&2
        cat "$work/$name.err" >&2
        exit 1
    fi
    awk '{ printf "%.3f %d\n", $1 + $2, $3 }' "$work/time.txt" >>"$work/$name.times"
}

# Alternate the programs so that a slow phase of the machine hits each.
for _ in $(seq "$runs"); do
    run_once bare "$bare" "$capture" "$repeat"
    run_once dissect "$dissect" "$capture" "$repeat"
    rm -rf "$work/db"
    # ingest reads the same number of packets as the other two: the file
    # named $repeat times on its command line.
    ingest_files=()
    for _ in $(seq "$repeat"); do ingest_files+=("$capture"); done
    run_once ingest "$flowveil" ingest --policy "$root/policy/example-policy.yaml" \
        --db "$work/db" --now 1796025600 "${ingest_files[@]}"
done

packets_bare="$(awk '{ print $2 }' "$work/bare.out")"
packets_dissect="$(awk '{ print $2 }' "$work/dissect.out")"
if [ "$packets_bare" != "$packets_dissect" ]; then
    echo "run.sh: bare_loop read $packets_bare packets but dissect_only $packets_dissect" >&2
    exit 1
fi

if [ "$smoke" = 1 ]; then
    if ! "$pseudonym" --calls 20000 >"$work/pseudonym.out"; then
        echo "run.sh: bench_pseudonym failed" >&2
        exit 1
    fi
    echo "bench smoke: $packets_bare packets; bare_loop, dissect_only, flowveil ingest and" \
        "bench_pseudonym ran"
    if [ "$others" = 1 ]; then
        bash "$here/peers.sh" --smoke --build-dir "$build"
        bash "$here/store_api.sh" --smoke --build-dir "$build"
        bash "$here/memory.sh" --smoke --build-dir "$build"
    fi
    exit 0
fi

# Pseudonym cost: one line "off on hit_rate" per run.
for _ in $(seq "$runs"); do
    "$pseudonym" >"$work/pseudonym.out"
    awk '/^cache off/ { off = $3 } /^cache on/ { on = $3; rate = $7; sub(/%\)/, "", rate) }
         END { print off, on, rate }' "$work/pseudonym.out" >>"$work/pseudonym.times"
done

median_cpu() { sort -n -k1,1 "$work/$1.times" | awk '{ v[NR] = $1 } END { print (NR % 2) ? v[(NR + 1) / 2] : (v[NR / 2] + v[NR / 2 + 1]) / 2 }'; }
max_rss_mb() { awk '$2 > m { m = $2 } END { printf "%.1f", m / 1024 }' "$work/$1.times"; }

bare_cpu="$(median_cpu bare)"
packets_once=$((packets_bare / repeat))
table="$work/table.md"
{
    echo "| program | packets | median CPU s | packets per CPU s | peak RSS MiB | ratio to bare loop |"
    echo "|---|---:|---:|---:|---:|---:|"
    for row in "bare_loop:bare:$packets_bare" "dissect_only:dissect:$packets_bare" \
        "flowveil ingest:ingest:$packets_bare"; do
        IFS=: read -r label name packets <<<"$row"
        cpu="$(median_cpu "$name")"
        awk -v l="$label" -v p="$packets" -v c="$cpu" -v bp="$packets_bare" -v b="$bare_cpu" \
            -v r="$(max_rss_mb "$name")" \
            'BEGIN { pps = c > 0 ? sprintf("%.0f", p / c) : "n/a";
                     ratio = (b > 0 && p > 0) ? sprintf("%.2f", (c / p) / (b / bp)) : "n/a";
                     printf "| %s | %d | %.3f | %s | %s | %s |\n", l, p, c, pps, r, ratio }'
    done
    echo
    echo "| pseudonym (bench_pseudonym, median of $runs runs) | ns per call | cache hit rate |"
    echo "|---|---:|---:|"
    off="$(sort -n -k1,1 "$work/pseudonym.times" | awk '{ v[NR] = $1 } END { print v[int((NR + 1) / 2)] }')"
    on="$(sort -n -k2,2 "$work/pseudonym.times" | awk '{ v[NR] = $2; r[NR] = $3 } END { print v[int((NR + 1) / 2)], r[int((NR + 1) / 2)] }')"
    echo "| cache off (keyed BLAKE2b each call) | $off | n/a |"
    echo "| cache on | ${on% *} | ${on#* }% |"
} >"$table"
cat "$table"

if [ "$write_docs" = 1 ]; then
    doc="$root/docs/BENCHMARKS.md"
    commit="$(git -C "$root" rev-parse --short HEAD 2>/dev/null || echo unknown)"
    if ! git -C "$root" diff --quiet HEAD 2>/dev/null; then
        commit="$commit (with uncommitted changes)"
    fi
    section="$work/section.md"
    {
        echo "<!-- bench:begin -->"
        echo "Measured $(date -u +%Y-%m-%d) by \`bench/run.sh\` ($runs runs each, alternating) on"
        echo "a ${hours}-hour demo capture (\`flowveil-demogen --hours $hours --seed $seed\`, $packets_once packets),
read $repeat times per run by each program."
        echo
        echo "- CPU: $(lscpu | sed -n 's/^Model name: *//p' | head -1), $(nproc) cores available"
        echo "- kernel: $(uname -sr)"
        echo "- compiler: $(${CC:-cc} --version | head -1)"
        echo "- build type: $(sed -n 's/^CMAKE_BUILD_TYPE:[A-Z]*=//p' "$build/CMakeCache.txt")"
        echo "- commit: $commit"
        echo
        cat "$table"
        echo "<!-- bench:end -->"
    } >"$section"
    if [ ! -f "$doc" ] || ! grep -q '<!-- bench:begin -->' "$doc"; then
        echo "run.sh: $doc has no '<!-- bench:begin -->' marker; add the markers first" >&2
        exit 1
    fi
    awk -v f="$section" '
        /<!-- bench:begin -->/ { while ((getline line < f) > 0) print line; skip = 1; next }
        /<!-- bench:end -->/ { skip = 0; next }
        !skip { print }' "$doc" >"$work/doc.md"
    cp "$work/doc.md" "$doc"
    echo "run.sh: updated $doc"
fi

if [ "$others" = 1 ]; then
    docs_flag=()
    if [ "$write_docs" = 0 ]; then docs_flag=(--no-docs); fi
    bash "$here/peers.sh" --build-dir "$build" --runs "$runs" "${docs_flag[@]}"
    bash "$here/store_api.sh" --build-dir "$build" "${docs_flag[@]}"
fi
