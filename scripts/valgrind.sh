#!/usr/bin/env bash
# Run the unit tests (tests/unit/) of a normal, non-sanitizer build under
# valgrind's memcheck and fail on any memory error or definite or
# indirect leak. LeakSanitizer already checks the same tests in the
# -DFLOWVEIL_SANITIZE=ON build; valgrind also detects reads of uninitialised memory
# and works on the optimised binary that ships.
#
#   scripts/valgrind.sh [--build DIR] [--jobs J] [--only REGEX]
#
#   --build DIR    a configured and built tree (default build/)
#   --jobs J       tests run at once (default 2)
#   --only REGEX   only the tests whose name matches REGEX
#
# Each test runs with the environment and working directory that ctest
# gives it; the valgrind log of a failing test is kept in
# DIR/valgrind/NAME.log. Tests run 20 to 50 times slower under valgrind,
# so the script sets FLOWVEIL_TEST_TIMEOUT_SCALE (default 10), by which
# the tests multiply their socket receive timeouts (tu_timeout_scale).
set -euo pipefail

root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
build="$root/build"
jobs=2
only=""

while [ $# -gt 0 ]; do
    case "$1" in
        --build) build=${2:?--build needs a build directory}; shift ;;
        --jobs) jobs=${2:?--jobs needs a count}; shift ;;
        --only) only=${2:?--only needs a regular expression}; shift ;;
        -h|--help) sed -n '2,18p' "${BASH_SOURCE[0]}"; exit 0 ;;
        *) echo "valgrind: unknown option '$1'; see --help" >&2; exit 2 ;;
    esac
    shift
done

if ! command -v valgrind >/dev/null 2>&1; then
    echo "valgrind: valgrind is not installed; run 'apt-get install valgrind'" >&2
    exit 1
fi
if [ ! -f "$build/CTestTestfile.cmake" ]; then
    echo "valgrind: '$build' is not a configured build tree; build with scripts/test.sh or pass --build DIR" >&2
    exit 1
fi
build=$(cd "$build" && pwd)
out="$build/valgrind"
mkdir -p "$out"

# One line per unit test: name, working directory, environment
# (NAME=VALUE separated by \x1f) and the command, all separated by \x1e.
list="$out/tests.txt"
(cd "$build" && ctest --show-only=json-v1) | perl -MJSON::PP -e '
    local $/;
    my $j = decode_json(<STDIN>);
    for my $t (@{$j->{tests}}) {
        my @cmd = @{$t->{command} || []};
        next unless @cmd && $cmd[0] =~ m{/tests/unit/};
        my ($dir, @env) = ("");
        for my $p (@{$t->{properties} || []}) {
            $dir = $p->{value} if $p->{name} eq "WORKING_DIRECTORY";
            @env = @{$p->{value}} if $p->{name} eq "ENVIRONMENT";
        }
        print join("\x1e", $t->{name}, $dir, join("\x1f", @env), @cmd), "\n";
    }
' >"$list"
if [ -n "$only" ]; then
    awk -F '\x1e' -v re="$only" '$1 ~ re' "$list" >"$list.only"
    mv "$list.only" "$list"
fi
if [ ! -s "$list" ]; then
    echo "valgrind: no unit test found in $build (is it built?)" >&2
    exit 1
fi

run_one() {
    local line=$1 name dir env_text
    local -a fields env cmd
    IFS=$'\x1e' read -r -a fields <<<"$line"
    name=${fields[0]}
    dir=${fields[1]:-$build}
    env_text=${fields[2]}
    cmd=("${fields[@]:3}")
    env=()
    [ -z "$env_text" ] || IFS=$'\x1f' read -r -a env <<<"$env_text"
    local log="$out/$name.log" start=$SECONDS status
    set +e
    (cd "$dir" && env "${env[@]}" valgrind --quiet --error-exitcode=99 --leak-check=full \
        --errors-for-leak-kinds=definite,indirect --show-leak-kinds=definite,indirect \
        --track-origins=yes --trace-children=no --log-file="$log" "${cmd[@]}" \
        >"$out/$name.out" 2>&1)
    status=$?
    set -e
    if [ "$status" -eq 0 ]; then
        rm -f "$log" "$out/$name.out"
        echo "ok $name $((SECONDS - start))s"
    elif [ "$status" -eq 99 ]; then
        echo "FAIL $name: memory error or leak; see $log"
    else
        echo "FAIL $name: exit status $status under valgrind; see $out/$name.out"
    fi
}
export -f run_one
export build out
export FLOWVEIL_TEST_TIMEOUT_SCALE="${FLOWVEIL_TEST_TIMEOUT_SCALE:-10}"

results="$out/results.txt"
# The verdicts are read from $results, so a non-zero status of xargs
# must not end the script before the summary.
tr '\n' '\0' <"$list" | xargs -0 -P "$jobs" -I{} bash -c 'run_one "$1"' _ {} | tee "$results" || true
failed=$(grep -c '^FAIL' "$results" || true)
total=$(wc -l <"$results")
echo "valgrind: $total unit tests under memcheck, $failed failing"
[ "$failed" -eq 0 ]
