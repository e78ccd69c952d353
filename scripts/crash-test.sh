#!/usr/bin/env bash
# Long crash-consistency run: kill `flowveil ingest` and `flowveil capture`
# with SIGKILL at random points (default 1,000 kills, one in ten of them
# for capture, which needs root) and check the store after each kill.
#
#   scripts/crash-test.sh [BUILD_DIR] [KILLS]
#
# BUILD_DIR defaults to build/ (configured and built by scripts/test.sh or
# by hand); KILLS to 1000. Set FLOWVEIL_CRASH_SEED to repeat a run: the
# test prints its seed. The CI suite runs the same test with 200 kills
# (ctest label "crash").
set -euo pipefail

root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
build=${1:-$root/build}
kills=${2:-1000}

if [ ! -f "$build/CTestTestfile.cmake" ]; then
    echo "crash-test: no configured build in $build; run" \
        "'cmake -S $root -B $build && cmake --build $build' first" >&2
    exit 2
fi
case $kills in
    '' | *[!0-9]*)
        echo "crash-test: KILLS must be a whole number, not '$kills'" >&2
        exit 2
        ;;
esac

cmake --build "$build" --target test_crash_consistency flowveil -j 2

# The test's ctest TIMEOUT (900 s) fits the suite's 200 kills, not 1,000,
# and ctest's --timeout does not override it. So run the test program
# directly, with the environment and working directory ctest would give it.
mapfile -t env_and_cmd < <(ctest --test-dir "$build" --show-only=json-v1 \
    -R '^test_crash_consistency$' | python3 -c '
import json, sys
test = json.load(sys.stdin)["tests"][0]
props = {p["name"]: p["value"] for p in test.get("properties", [])}
print(props.get("WORKING_DIRECTORY", "."))
for item in props.get("ENVIRONMENT", []):
    print(item)
print(test["command"][0])
')
if [ "${#env_and_cmd[@]}" -lt 2 ]; then
    echo "crash-test: ctest in $build does not list test_crash_consistency" >&2
    exit 2
fi
work_dir=${env_and_cmd[0]}
program=${env_and_cmd[-1]}
test_env=("${env_and_cmd[@]:1:${#env_and_cmd[@]}-2}")

start=$(date +%s)
(cd "$work_dir" && env "${test_env[@]}" FLOWVEIL_CRASH_KILLS="$kills" "$program")
echo "crash-test: $kills kills passed in $(($(date +%s) - start)) s"
