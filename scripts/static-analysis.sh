#!/usr/bin/env bash
# Run cppcheck and clang-tidy over the product sources with the checked-in
# configuration (.clang-tidy, and the cppcheck options below) and fail on
# any finding. A finding that is a false positive is silenced where it
# occurs, with a comment that says why:
#   cppcheck:   // cppcheck-suppress <id>   on the line before
#   clang-tidy: // NOLINT(<check>)          on the line itself
#
#   scripts/static-analysis.sh [--build-dir DIR]
#
# DIR must hold compile_commands.json (default: build-analysis/, which is
# configured here when missing). Tests, benchmarks and fuzz harnesses are
# not analysed: they are not shipped and use test-only idioms.
set -euo pipefail

root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$root"
build="$root/build-analysis"

while [ $# -gt 0 ]; do
    case "$1" in
        --build-dir) build=${2:?--build-dir needs a directory}; shift ;;
        -h|--help) sed -n '2,14p' "${BASH_SOURCE[0]}"; exit 0 ;;
        *) echo "static-analysis: unknown option '$1'; see --help" >&2; exit 2 ;;
    esac
    shift
done

for tool in cppcheck clang-tidy; do
    if ! command -v "$tool" >/dev/null 2>&1; then
        echo "static-analysis: '$tool' is not installed; run scripts/install-deps.sh" >&2
        exit 1
    fi
done

if [ ! -f "$build/compile_commands.json" ]; then
    cmake -S . -B "$build" -DCMAKE_EXPORT_COMPILE_COMMANDS=ON >/dev/null
fi

# Product sources only: every module folder that exists.
modules=()
for dir in common capture anonymize store policy detect api cli export collect tools/demogen tools/scengen; do
    [ -d "$dir" ] && modules+=("$dir")
done
mapfile -t sources < <(find "${modules[@]}" -maxdepth 1 -name '*.c' | sort)
includes=()
for dir in "${modules[@]}"; do
    includes+=(-I "$dir")
done

status=0
out=$(mktemp)
trap 'rm -f "$out"' EXIT

echo "== cppcheck (${#sources[@]} files)"
# --error-exitcode makes any finding fail; missingIncludeSystem only says
# that system headers were not searched, which is intended.
if ! cppcheck --std=c11 --quiet --inline-suppr --error-exitcode=1 -j "$(nproc)" \
        --enable=warning,performance,portability \
        --suppress=missingIncludeSystem "${includes[@]}" "${sources[@]}" 2>"$out"; then
    cat "$out"
    status=1
fi

echo "== clang-tidy (${#sources[@]} files)"
# clang-tidy prints its statistics on stderr; keep them apart and show
# them only when a run fails, so a crash or a bad compile command is
# reported instead of ending the output silently.
errors=$(mktemp)
if ! printf '%s\n' "${sources[@]}" |
        xargs -P "$(nproc)" -n 4 clang-tidy -p "$build" --quiet >"$out" 2>"$errors"; then
    echo "static-analysis: clang-tidy failed; its messages follow" >&2
    grep -v '^[0-9]* warnings\? generated\.$\|^Suppressed\|^Use -header-filter\|^Use -system-headers' \
        "$errors" | tail -n 40 >&2
    status=1
fi
rm -f "$errors"
if grep -q 'warning:\|error:' "$out"; then
    grep -A3 'warning:\|error:' "$out"
    status=1
fi

if [ "$status" -ne 0 ]; then
    echo "static-analysis: findings above; fix them or silence a false positive with a comment that says why" >&2
else
    echo "static-analysis: no findings"
fi
exit "$status"
