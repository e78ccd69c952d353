#!/usr/bin/env bash
# Run the whole flowveil test suite on Debian 12:
#   1. install the dependencies (scripts/install-deps.sh), plus Node.js,
#      npm and Chromium for the dashboard browser test when missing, and
#      playwright-core with `npm ci` in tests/browser;
#   2. build with -Werror in build/ and run ctest, browser test included
#      (label "browser");
#   3. run cppcheck and clang-tidy (scripts/static-analysis.sh), and
#      build everything with clang and -Werror in build-clang/;
#   4. build with AddressSanitizer and UndefinedBehaviorSanitizer in
#      build-asan/ and run ctest again without the browser test, which
#      already ran once in step 2;
#   5. build the libFuzzer harnesses with clang in build-fuzz/, replay
#      their seeds and the corpus captures once (scripts/fuzz.sh
#      --replay), then fuzz each harness for FLOWVEIL_FUZZ_SECONDS
#      (default 60) seconds, two at a time (about 10 minutes for 18
#      harnesses; FLOWVEIL_FUZZ_SECONDS=0 skips this part). Skipped when
#      clang or its fuzzer runtime is missing, except with CI=true, where
#      that is a failure.
# Every stage runs even after a failing test stage, so one run reports
# everything; the exit status is non-zero if any stage failed. Build
# output goes to build/logs/ and is printed only when a build fails.
# Set FLOWVEIL_CORPUS to read the capture corpus from another place
# than ../shared/corpus.
set -euo pipefail

root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$root"
jobs=$(nproc)
log_dir="$root/build/logs"
failed=()

# Run a command with its output in a log file; print the log and stop if it fails.
quiet() {
    local name=$1
    shift
    mkdir -p "$log_dir"
    if ! "$@" >"$log_dir/$name.log" 2>&1; then
        echo "test: '$*' failed; the end of $log_dir/$name.log follows" >&2
        tail -n 80 "$log_dir/$name.log" >&2
        exit 1
    fi
}

# The browser test needs Chromium and Node.js. Install them only when
# the commands are missing, because a Node.js installed from another
# source (NodeSource's nodejs bundles npm) conflicts with Debian's npm
# package.
extra=()
browser_dir="tests/browser"
if [ -f "$browser_dir/package.json" ]; then
    command -v chromium >/dev/null 2>&1 || extra+=(chromium)
    command -v node >/dev/null 2>&1 || extra+=(nodejs)
    command -v npm >/dev/null 2>&1 || extra+=(npm)
fi
bash scripts/install-deps.sh "${extra[@]}"

# playwright-core, at the version pinned in package-lock.json. It must be
# in place before ctest runs, because the browser test fails without it.
if [ -f "$browser_dir/package.json" ]; then
    echo "== npm packages for the browser test ($browser_dir)"
    if [ -f "$browser_dir/package-lock.json" ]; then
        quiet npm-install npm ci --prefix "$browser_dir" --prefer-offline --no-audit --no-fund
    else
        quiet npm-install npm install --prefix "$browser_dir" --no-audit --no-fund
    fi
fi

# The end-to-end and corpus tests compare flowveil with tshark's answers
# for public captures that live outside the repository.
corpus="${FLOWVEIL_CORPUS:-$root/../shared/corpus}"
if [ ! -d "$corpus/pcaps" ] || [ ! -d "$corpus/expected" ]; then
    echo "test: the capture corpus was not found at $corpus (it needs pcaps/ and expected/);" \
        "put it at ../shared/corpus beside the checkout or set FLOWVEIL_CORPUS" >&2
    exit 1
fi
corpus=$(cd "$corpus" && pwd)

cmake_args=(-DCMAKE_BUILD_TYPE=RelWithDebInfo "-DFLOWVEIL_CORPUS=$corpus")

echo "== build with -Werror (build/)"
quiet configure cmake -S . -B build -DFLOWVEIL_WERROR=ON -DFLOWVEIL_SANITIZE=OFF "${cmake_args[@]}"
quiet build cmake --build build -j "$jobs"

echo "== ctest (build/)"
# Everything the browser test needs was installed above, so a missing
# piece is a failure here, not a skip.
export FLOWVEIL_REQUIRE_BROWSER=1
if ! (cd build && ctest --output-on-failure -j "$jobs"); then
    failed+=("ctest in build/")
fi

echo "== static analysis: cppcheck and clang-tidy (build-analysis/)"
if command -v cppcheck >/dev/null 2>&1 && command -v clang-tidy >/dev/null 2>&1; then
    if ! bash scripts/static-analysis.sh; then
        failed+=("static analysis")
    fi
elif [ "${CI:-}" = true ]; then
    echo "test: cppcheck or clang-tidy is missing; scripts/install-deps.sh installs both" >&2
    failed+=("static analysis (tools missing)")
else
    echo "test: skipping static analysis: cppcheck or clang-tidy is not installed"
fi

# clang warns about things gcc does not (-Wcast-align on x86, GNU
# extensions under -Wpedantic); build the product with it once, no tests.
echo "== build with clang and -Werror (build-clang/)"
if command -v clang >/dev/null 2>&1; then
    # A subshell, because quiet exits on failure and the later stages
    # should still run.
    if ! (CC=clang quiet configure-clang cmake -S . -B build-clang -DFLOWVEIL_WERROR=ON \
              -DFLOWVEIL_SANITIZE=OFF "${cmake_args[@]}" &&
          quiet build-clang cmake --build build-clang -j "$jobs"); then
        failed+=("clang build")
    fi
elif [ "${CI:-}" = true ]; then
    echo "test: clang is missing; scripts/install-deps.sh installs it" >&2
    failed+=("clang build (no clang)")
else
    echo "test: skipping the clang build: clang is not installed"
fi

echo "== build with ASan and UBSan (build-asan/)"
quiet configure-asan cmake -S . -B build-asan -DFLOWVEIL_SANITIZE=ON "${cmake_args[@]}"
quiet build-asan cmake --build build-asan -j "$jobs"

echo "== ctest under the sanitizers (build-asan/), without the browser test"
export ASAN_OPTIONS="detect_leaks=1"
export UBSAN_OPTIONS="halt_on_error=1:print_stacktrace=1"
if ! (cd build-asan && ctest --output-on-failure -j "$jobs" -LE browser); then
    failed+=("ctest in build-asan/")
fi

echo "== fuzz harness replay (build-fuzz/)"
fuzzer_runtime=$(clang -print-file-name=libclang_rt.fuzzer-x86_64.a 2>/dev/null || true)
if command -v clang >/dev/null 2>&1 && [ -f "$fuzzer_runtime" ]; then
    if ! FLOWVEIL_CORPUS="$corpus" bash scripts/fuzz.sh --replay --jobs "$jobs"; then
        failed+=("fuzz replay")
    fi
    fuzz_seconds="${FLOWVEIL_FUZZ_SECONDS:-60}"
    if [ "$fuzz_seconds" != 0 ]; then
        echo "== fuzzing each harness for $fuzz_seconds s, 2 at a time (build-fuzz/)"
        if ! FLOWVEIL_CORPUS="$corpus" bash scripts/fuzz.sh --seconds "$fuzz_seconds" --jobs 2; then
            failed+=("fuzzing")
        fi
    fi
elif [ "${CI:-}" = true ]; then
    echo "test: clang with the libFuzzer runtime is missing; scripts/install-deps.sh installs clang and libclang-rt-14-dev" >&2
    failed+=("fuzz replay (no clang)")
else
    echo "test: skipping the fuzz replay: clang with the libFuzzer runtime is not installed"
fi

if [ "${#failed[@]}" -ne 0 ]; then
    echo "test: FAILED: ${failed[*]}" >&2
    exit 1
fi
echo "test: all stages passed"
