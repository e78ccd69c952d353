#!/usr/bin/env bash
# Fail if any C source in the project calls a function that is banned
# because it cannot bound its output or is not safe to use here:
# sprintf, vsprintf, strcpy, strcat, strtok, gets, rand, srand.
# Usage: scripts/check-banned.sh [SOURCE_DIR]
set -euo pipefail

root="${1:-$(cd "$(dirname "$0")/.." && pwd)}"
cd "$root"

pattern='(^|[^A-Za-z0-9_])(v?sprintf|strcpy|strcat|strtok|gets|s?rand)[[:space:]]*\('
mapfile -t files < <(find capture anonymize policy store detect api cli common collect tools tests \
    -name '*.c' -o -name '*.h' 2>/dev/null | sort)

status=0
for f in "${files[@]}"; do
    # Strip // and /* */ comments on a line before matching, so comments
    # that mention the names do not trip the check.
    if matches=$(sed -e 's#//.*$##' -e 's#/\*.*\*/##g' "$f" | grep -nE "$pattern"); then
        while IFS= read -r line; do
            echo "$f:$line: banned function; use snprintf, memcpy with a length, or randombytes_buf" >&2
        done <<<"$matches"
        status=1
    fi
done

if [ "$status" -eq 0 ]; then
    echo "check-banned: ${#files[@]} files clean"
fi
exit "$status"
