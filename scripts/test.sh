#!/usr/bin/env bash
# Run the whole flowveil test suite on Debian 12:
#   1. install the dependencies (scripts/install-deps.sh);
#   2. build with -Werror in build/ and run ctest;
#   3. run the dashboard browser test, when tests/browser has one and the
#      build defines its store-seeding tool;
#   4. build with AddressSanitizer and UndefinedBehaviorSanitizer in
#      build-asan/ and run ctest again.
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
# such a test exists and the commands are missing, because a Node.js
# installed from another source may conflict with Debian's npm package.
extra=()
browser_test="tests/browser/dashboard.test.mjs"
if [ -f "$browser_test" ]; then
    command -v chromium >/dev/null 2>&1 || extra+=(chromium)
    command -v node >/dev/null 2>&1 || extra+=(nodejs)
    command -v npm >/dev/null 2>&1 || extra+=(npm)
fi
bash scripts/install-deps.sh "${extra[@]}"

cmake_args=(-DCMAKE_BUILD_TYPE=RelWithDebInfo)
if [ -n "${FLOWVEIL_CORPUS:-}" ]; then
    cmake_args+=("-DFLOWVEIL_CORPUS=$FLOWVEIL_CORPUS")
fi

echo "== build with -Werror (build/)"
quiet configure cmake -S . -B build -DFLOWVEIL_WERROR=ON -DFLOWVEIL_SANITIZE=OFF "${cmake_args[@]}"
quiet build cmake --build build -j "$jobs"

echo "== ctest (build/)"
if ! (cd build && ctest --output-on-failure -j "$jobs"); then
    failed+=("ctest in build/")
fi

# Run the browser test unless ctest already has it registered.
# The listings go through variables because grep -q closing a pipe early
# would make the pipeline fail under pipefail.
if [ -f "$browser_test" ]; then
    registered=$(cd build && ctest -N)
    targets=$(cmake --build build --target help)
    if grep -qiE 'browser|dashboard' <<<"$registered"; then
        echo "== browser test: registered with ctest, already run"
    elif grep -q 'flowveil-seed-store' <<<"$targets"; then
        echo "== browser test ($browser_test)"
        quiet build-seed cmake --build build -j "$jobs" --target flowveil-seed-store
        if [ ! -f build/node/node_modules/playwright-core/index.mjs ]; then
            quiet npm-install npm install --prefix build/node --no-audit --no-fund playwright-core
        fi
        seed=$(find build -name flowveil-seed-store -type f -perm -u+x | head -n 1)
        if ! FLOWVEIL_BIN="$root/build/cli/flowveil" FLOWVEIL_SEED="$root/$seed" \
             PLAYWRIGHT_CORE="$root/build/node/node_modules/playwright-core/index.mjs" \
             node "$browser_test"; then
            failed+=("browser test")
        fi
    else
        echo "== browser test: skipped, the build does not define flowveil-seed-store"
    fi
fi

echo "== build with ASan and UBSan (build-asan/)"
quiet configure-asan cmake -S . -B build-asan -DFLOWVEIL_SANITIZE=ON "${cmake_args[@]}"
quiet build-asan cmake --build build-asan -j "$jobs"

echo "== ctest under the sanitizers (build-asan/)"
export ASAN_OPTIONS="detect_leaks=1"
export UBSAN_OPTIONS="halt_on_error=1:print_stacktrace=1"
if ! (cd build-asan && ctest --output-on-failure -j "$jobs"); then
    failed+=("ctest in build-asan/")
fi

if [ "${#failed[@]}" -ne 0 ]; then
    echo "test: FAILED: ${failed[*]}" >&2
    exit 1
fi
echo "test: all stages passed"
