#!/usr/bin/env bash
# Build the libFuzzer harnesses of tests/fuzz/ with clang in build-fuzz/
# and run them under AddressSanitizer, UndefinedBehaviorSanitizer and
# LeakSanitizer.
#
#   scripts/fuzz.sh --replay           run every seed (tests/fuzz/seeds/)
#                                      and, for the capture-file harnesses,
#                                      every capture of the corpus once;
#                                      fails on any crash, leak or UB
#   scripts/fuzz.sh [--seconds N]      fuzz each harness for N seconds
#                                      (default 60) and print a summary;
#                                      fails when a harness found a crash
#   scripts/fuzz.sh --hours H          long campaign: H hours of wall time
#                                      in total, shared evenly between
#                                      the harnesses (J run at once)
#   scripts/fuzz.sh --coverage         after fuzzing (or alone), measure
#                                      the line coverage that each
#                                      harness's working corpus reaches on
#                                      its parser sources (clang source-
#                                      based coverage, llvm-profdata and
#                                      llvm-cov from Debian's llvm-14);
#                                      the table goes to
#                                      build-fuzz-cov/coverage.txt
#   options: --jobs J      harnesses run at once (default 2)
#            --only NAME   run only fuzz_NAME (repeatable)
#
# A libFuzzer dictionary in tests/fuzz/dicts/NAME.dict, where present, is
# passed to fuzz_NAME. Fuzzing keeps its working corpus in
# build-fuzz/fuzz-corpus/NAME/ (the seeds are copied there first, so the
# repository is never written) and crashing inputs in
# build-fuzz/fuzz-artifacts/NAME/. A crash found there
# becomes a regression seed: copy the input to tests/fuzz/seeds/NAME/
# once the bug is fixed, so --replay runs it in every CI run. Set
# FLOWVEIL_CORPUS to read the capture corpus from another place than
# ../shared/corpus; without it the corpus files are skipped.
set -euo pipefail

root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$root"
build="$root/build-fuzz"
seeds="$root/tests/fuzz/seeds"
mode=fuzz
seconds=60
hours=""
coverage=false
fuzz_asked=false
jobs=2
only=()

while [ $# -gt 0 ]; do
    case "$1" in
        --replay) mode=replay ;;
        --seconds) seconds=${2:?--seconds needs a number of seconds}; fuzz_asked=true; shift ;;
        --hours) hours=${2:?--hours needs a number of hours}; fuzz_asked=true; shift ;;
        --coverage) coverage=true ;;
        --jobs) jobs=${2:?--jobs needs a count}; shift ;;
        --only) only+=("fuzz_${2:?--only needs a harness name such as dns}"); shift ;;
        -h|--help) sed -n '2,36p' "${BASH_SOURCE[0]}"; exit 0 ;;
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

if [ -n "$hours" ]; then
    if ! [[ "$hours" =~ ^[0-9]+([.][0-9]+)?$ ]]; then
        echo "fuzz: invalid --hours '$hours'; give a number of hours such as 2 or 0.5" >&2
        exit 2
    fi
    # Every harness gets the same share of H hours on J parallel slots.
    seconds=$(awk -v h="$hours" -v j="$jobs" -v n="${#harnesses[@]}" \
        'BEGIN { s = int(h * 3600 * j / n); print (s < 1 ? 1 : s) }')
    echo "fuzz: $hours hours for ${#harnesses[@]} harnesses, $jobs at a time: $seconds seconds each"
fi

# Harnesses keep their temporary stores and files under TMPDIR. A RAM
# file system there spares the disk the LMDB commits of the audit-trail
# and API harnesses, which run thousands a minute.
if [ -z "${TMPDIR:-}" ] && [ -d /dev/shm ] && [ -w /dev/shm ]; then
    export TMPDIR=/dev/shm
fi

export ASAN_OPTIONS="detect_leaks=1:abort_on_error=1:symbolize=1"
export UBSAN_OPTIONS="halt_on_error=1:print_stacktrace=1"

# Extra inputs for a harness beyond its seeds: the example policy of the
# repository for the policy parser, and the corpus captures for the two
# harnesses that read capture files.
extra_inputs() {
    local name=$1
    [ "$name" = fuzz_policy ] && find "$root/policy" -maxdepth 1 -name '*.yaml'
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
    local dict=()
    [ -f "$root/tests/fuzz/dicts/${name#fuzz_}.dict" ] &&
        dict=("-dict=$root/tests/fuzz/dicts/${name#fuzz_}.dict")
    "$bin" -max_total_time="$seconds" -print_final_stats=1 -max_len="$(max_len "$name")" "${dict[@]}" \
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
export root build seeds corpus seconds

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

# Coverage: rebuild the harnesses with clang's source-based coverage in
# build-fuzz-cov/, replay each harness's working corpus (or its seeds
# when it was never fuzzed) once and report line coverage on the sources
# that harness targets.
parser_sources() {
    case "$1" in
        fuzz_packet) echo capture/cap_decode.c capture/cap_engine.c capture/cap_frag.c \
            capture/cap_tcpseq.c capture/cap_udp_apps.c capture/cap_http_conn.c ;;
        fuzz_pcap_file) echo capture/cap_pcap.c capture/cap_pcapng.c ;;
        fuzz_pcapng) echo capture/cap_pcapng.c ;;
        fuzz_policy) echo policy/pol_parse.c policy/pol_parse_addresses.inc \
            policy/pol_parse_detect.inc policy/pol_parse_domains.inc policy/pol_parse_escrow.inc \
            policy/pol_parse_groups.inc ;;
        fuzz_store_record) echo store/store_codec.c ;;
        fuzz_audit_decode) echo store/store_audit.c ;;
        fuzz_dns) echo capture/cap_dns.c ;;
        fuzz_tls) echo capture/cap_tls.c ;;
        fuzz_http) echo capture/cap_http.c ;;
        fuzz_dhcp) echo capture/cap_dhcp.c ;;
        fuzz_ssh) echo capture/cap_ssh.c ;;
        fuzz_quic) echo capture/cap_quic.c ;;
        fuzz_nbns) echo capture/cap_nbns.c ;;
        fuzz_api_params) echo api/api_params.c ;;
        fuzz_api_request) echo api/api.c api/api_auth.c api/api_routes.c api/api_params.c \
            api/api_top.c api/api_series.c api/api_alerts.c api/api_audit.c ;;
        fuzz_minimize) echo cli/minimize.c ;;
        fuzz_indicators) echo detect/det_indicators.c ;;
        fuzz_netflow) echo collect/col_decode.c ;;
        *) echo "" ;;
    esac
}

run_coverage() {
    local cov="$root/build-fuzz-cov" profdata llvmcov
    profdata=$(command -v llvm-profdata-14 || command -v llvm-profdata || true)
    llvmcov=$(command -v llvm-cov-14 || command -v llvm-cov || true)
    if [ -z "$profdata" ] || [ -z "$llvmcov" ]; then
        echo "fuzz: llvm-profdata or llvm-cov not found; install Debian's llvm-14 package" >&2
        return 1
    fi

    mkdir -p "$cov/logs" "$cov/profiles"
    if ! CC=clang cmake -S . -B "$cov" -DFLOWVEIL_FUZZ=ON -DFLOWVEIL_TESTS=OFF -DFLOWVEIL_BENCH=OFF \
            -DCMAKE_BUILD_TYPE=RelWithDebInfo \
            "-DCMAKE_C_FLAGS=-fprofile-instr-generate -fcoverage-mapping" \
            "-DCMAKE_EXE_LINKER_FLAGS=-fprofile-instr-generate" >"$cov/logs/configure.log" 2>&1 ||
       ! cmake --build "$cov" -j "$jobs" --target fuzzers >"$cov/logs/build.log" 2>&1; then
        echo "fuzz: building the coverage harnesses failed; the end of the log follows" >&2
        tail -n 60 "$cov/logs/configure.log" "$cov/logs/build.log" >&2
        return 1
    fi

    local table="$cov/coverage.txt"
    printf '%-20s %8s %8s %8s  %s\n' harness inputs lines covered sources >"$table"
    local name
    for name in "${harnesses[@]}"; do
        local bin="$cov/tests/fuzz/$name" inputs="$build/fuzz-corpus/$name"
        local sources
        sources=$(parser_sources "$name")
        [ -n "$sources" ] || continue
        if [ ! -d "$inputs" ] || [ -z "$(ls -A "$inputs")" ]; then
            inputs="$seeds/${name#fuzz_}"
        fi

        rm -f "$cov/profiles/$name".*.profraw
        # -runs=0 loads (and so executes) every input of the corpus once.
        LLVM_PROFILE_FILE="$cov/profiles/$name.%p.profraw" "$bin" -runs=0 \
            -max_len="$(max_len "$name")" "$inputs" >"$cov/logs/$name.log" 2>&1 || {
            echo "fuzz: $name failed while replaying $inputs for coverage; see $cov/logs/$name.log" >&2
            continue
        }

        "$profdata" merge -sparse "$cov/profiles/$name".*.profraw -o "$cov/profiles/$name.profdata"
        local total
        # shellcheck disable=SC2086
        total=$(cd "$root" && "$llvmcov" report "$bin" -instr-profile="$cov/profiles/$name.profdata" \
            $sources | awk '$1 == "TOTAL" { print $8, $10 }')
        printf '%-20s %8s %8s %8s  %s\n' "$name" "$(find "$inputs" -type f | wc -l)" \
            ${total:-"? ?"} "$sources" >>"$table"
    done
    cat "$table"
}

if [ "$coverage" = true ] && [ "$fuzz_asked" = false ]; then
    run_coverage
    exit $?
fi

results="$build/logs/summary.txt"
printf '%s\n' "${harnesses[@]}" | xargs -P "$jobs" -I{} bash -c 'fuzz_one {}' >"$results"
printf '%-20s %12s %8s %12s %8s\n' harness runs seconds new-coverage crashes
sort "$results" | while read -r name runs took cov crashes; do
    printf '%-20s %12s %8s %12s %8s\n' "$name" "$runs" "$took" "$cov" "$crashes"
done
if grep -qE ' [1-9][0-9]*$' "$results"; then
    echo "fuzz: crashing inputs are in $build/fuzz-artifacts/; rerun one with $build/tests/fuzz/fuzz_NAME FILE" >&2
    status=1
fi
if [ "$coverage" = true ]; then
    run_coverage || status=1
fi
exit "$status"
