#!/usr/bin/env bash
# Copy the dashboard's third-party files from npm into web/vendor/.
#
# The versions are pinned in package.json and package-lock.json at the
# repository root; `npm ci` installs exactly those into node_modules/
# (not committed). The copies in web/vendor/ are committed, so building,
# installing and serving flowveil never needs npm or the network. Run
# this script after changing a version in package.json (then
# `npm install --save-exact` to update the lock file) and commit the
# changed files in web/vendor/.
#
# usage: scripts/vendor-web.sh [--check]
#   --check  copy nothing; exit 1 if web/vendor/ differs from what npm ci
#            installs (for CI or a review)
set -euo pipefail

root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$root"

check=false
case "${1:-}" in
    "") ;;
    --check) check=true ;;
    *)
        echo "vendor-web: unknown option '$1'; usage: scripts/vendor-web.sh [--check]" >&2
        exit 2
        ;;
esac

if ! command -v npm >/dev/null 2>&1; then
    echo "vendor-web: npm was not found; install Debian's npm package" >&2
    exit 1
fi

# --ignore-scripts: the packages only need to be unpacked, never run.
npm ci --ignore-scripts --no-audit --no-fund >/dev/null

# Source file in node_modules, then its name in web/vendor/.
files=(
    "uplot/dist/uPlot.esm.js" "uPlot.esm.js"
    "uplot/dist/uPlot.min.css" "uPlot.min.css"
    "uplot/LICENSE" "uPlot.LICENSE"
)

status=0
mkdir -p web/vendor
for ((i = 0; i < ${#files[@]}; i += 2)); do
    src="node_modules/${files[i]}"
    dst="web/vendor/${files[i + 1]}"
    if [ ! -f "$src" ]; then
        echo "vendor-web: $src is missing after npm ci; check the package version in package.json" >&2
        exit 1
    fi
    if $check; then
        if ! cmp -s "$src" "$dst"; then
            echo "vendor-web: $dst differs from $src; run scripts/vendor-web.sh and commit web/vendor/" >&2
            status=1
        fi
    else
        install -m 0644 "$src" "$dst"
        echo "vendor-web: $src -> $dst"
    fi
done
exit "$status"
