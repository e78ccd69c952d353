#!/usr/bin/env bash
# Build the libFuzzer harnesses of tests/fuzz/ with clang in build-fuzz/
# and run them.
#
#   scripts/fuzz.sh --replay           run every seed (tests/fuzz/seeds/)
#                                      and, for the capture-file harnesses,
#                                      every capture of the corpus once;
#                                      fails on any crash, leak or UB
#   scripts/fuzz.sh [--seconds N]      fuzz each harness for N seconds
#                                      (default 60) and print a summary
#   options: --jobs J      harnesses run at once (default 2)
#            --only NAME   run only fuzz_NAME (repeatable)
#
# Fuzzing keeps its working corpus in build-fuzz/fuzz-corpus/NAME/ (the
# seeds are copied there first, so the repository is never written) and
# crashing inputs in build-fuzz/fuzz-artifacts/NAME/. Set FLOWVEIL_CORPUS
# to read the capture corpus from another place than ../shared/corpus;
# without it the corpus files are skipped.
set -euo pipefail

root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$root"
build="$root/build-fuzz"
seeds="$root/tests/fuzz/seeds"
mode=fuzz
seconds=60
jobs=2
only=()

while [ $# -gt 0 ]; do
    case "$1" in
        --replay) mode=replay ;;
        --seconds) seconds=${2:?--seconds needs a number of seconds}; shift ;;
        --jobs) jobs=${2:?--jobs needs a count}; shift ;;
        --only) only+=("fuzz_${2:?--only needs a harness name such as dns}"); shift ;;
        -h|--help) sed -n '2,20p' "${BASH_SOURCE[0]}"; exit 0 ;;
        *) echo "fuzz: unknown option '$1'; see --help" >&2; exit 2 ;;
    esac
    shift
done

if ! command -v clang >/dev/null 2>&1; then
    echo "fuzz: clang not found; install clang and libclang-rt-14-dev (scripts/install-deps.sh does)" >&2
    exit 1
fi

corpus="${FLOWVEIL_CORPUS:-$root/../shared/corpus}"
mkdir -p "$build/logs"
if ! CC=clang cmake -S . -B "$build" -DFLOWVEIL_FUZZ=ON -DFLOWVEIL_TESTS=OFF -DFLOWVEIL_BENCH=OFF \
        -DFLOWVEIL_WERROR=ON -DCMAKE_BUILD_TYPE=RelWithDebInfo >"$build/logs/configure.log" 2>&1 ||
   ! cmake --build "$build" -j "$(nproc)" --target fuzzers >"$build/logs/build.log" 2>&1; then
    echo "fuzz: building the harnesses failed; the end of the log follows" >&2
    tail -n 60 "$build/logs/configure.log" "$build/logs/build.log" >&2
    exit 1
fi

harnesses=()
if [ "${#only[@]}" -gt 0 ]; then
    harnesses=("${only[@]}")
else
    for dir in "$seeds"/*/; do
        harnesses+=("fuzz_$(basename "$dir")")
    done
fi

export ASAN_OPTIONS="detect_leaks=1:abort_on_error=1:symbolize=1"
export UBSAN_OPTIONS="halt_on_error=1:print_stacktrace=1"

# Extra inputs for a harness beyond its seeds: the corpus captures for
# the two harnesses that read capture files.
extra_inputs() {
    local name=$1
    [ -d "$corpus/pcaps" ] || return 0
    case "$name" in
        fuzz_pcap_file) find "$corpus/pcaps" -maxdepth 1 -type f \( -name '*.pcap' -o -name '*.pcapng' -o -name '*.cap' \) ;;
        fuzz_pcapng) find "$corpus/pcaps" -maxdepth 1 -type f -name '*.pcapng' ;;
    esac
}

max_len() {
    case "$1" in
        fuzz_pcap_file|fuzz_pcapng) echo 262144 ;;
        *) echo 16384 ;;
    esac
}

# Replay: every seed and extra input runs once; any failure fails.
replay_one() {
    local name=$1 bin="$build/tests/fuzz/$1" log="$build/logs/$1.replay.log"
    local inputs=()
    mapfile -t inputs < <(find "$seeds/${name#fuzz_}" -type f; extra_inputs "$name")
    if "$bin" -runs=1 "${inputs[@]}" >"$log" 2>&1; then
        echo "fuzz: $name replayed ${#inputs[@]} inputs"
    else
        echo "fuzz: $name FAILED on replay; the end of $log follows" >&2
        tail -n 40 "$log" >&2
        return 1
    fi
}

# Fuzz one harness for $seconds and write "name runs seconds newcov crashes".
fuzz_one() {
    local name=$1 bin="$build/tests/fuzz/$1" log="$build/logs/$1.fuzz.log"
    local work="$build/fuzz-corpus/$1" artifacts="$build/fuzz-artifacts/$1/"
    mkdir -p "$work" "$artifacts"
    cp -n "$seeds/${name#fuzz_}"/* "$work"/ 2>/dev/null || true
    while IFS= read -r f; do cp -n "$f" "$work"/; done < <(extra_inputs "$name")
    local start=$SECONDS
    "$bin" -max_total_time="$seconds" -print_final_stats=1 -max_len="$(max_len "$name")" \
        -timeout=10 -rss_limit_mb=4096 -artifact_prefix="$artifacts" "$work" >"$log" 2>&1 || true
    local took=$((SECONDS - start))
    local inited done_cov runs crashes
    inited=$(grep -m1 -oE 'INITED cov: [0-9]+' "$log" | grep -oE '[0-9]+$' || echo 0)
    done_cov=$(grep -oE '(DONE|NEW|REDUCE|pulse) +cov: [0-9]+' "$log" | tail -n1 | grep -oE '[0-9]+$' || echo "$inited")
    runs=$(grep -m1 -oE 'stat::number_of_executed_units: [0-9]+' "$log" | grep -oE '[0-9]+$' || echo '?')
    crashes=$(find "$artifacts" -type f | wc -l)
    printf '%s %s %s %s %s\n' "$name" "$runs" "$took" "$((done_cov - inited))" "$crashes"
}

export -f replay_one fuzz_one extra_inputs max_len
export build seeds corpus seconds

status=0
if [ "$mode" = replay ]; then
    printf '%s\n' "${harnesses[@]}" | xargs -P "$jobs" -I{} bash -c 'replay_one {}' || status=1
    if [ "$status" -ne 0 ]; then
        echo "fuzz: replay FAILED" >&2
    else
        echo "fuzz: replay passed for ${#harnesses[@]} harnesses"
    fi
    exit "$status"
fi

results="$build/logs/summary.txt"
printf '%s\n' "${harnesses[@]}" | xargs -P "$jobs" -I{} bash -c 'fuzz_one {}' >"$results"
printf '%-20s %12s %8s %12s %8s\n' harness runs seconds new-coverage crashes
sort "$results" | while read -r name runs took cov crashes; do
    printf '%-20s %12s %8s %12s %8s\n' "$name" "$runs" "$took" "$cov" "$crashes"
    [ "$crashes" -eq 0 ] || status=1
done
if grep -qE ' [1-9][0-9]*$' "$results"; then
    echo "fuzz: crashing inputs are in $build/fuzz-artifacts/; rerun one with $build/tests/fuzz/fuzz_NAME FILE" >&2
    exit 1
fi
