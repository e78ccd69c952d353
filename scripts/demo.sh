#!/usr/bin/env bash
# Show flowveil on a fresh Debian 12 machine. The script installs the
# dependencies, builds, and generates the demo capture: a small office
# network with a planted beacon and a data exfiltration. It ingests the
# capture with the example policy and serves the dashboard on
# 127.0.0.1:$FLOWVEIL_PORT (default 8080), printing the password of the
# dashboard user admin.
# Run as root or as a user with sudo rights. Safe to run again: the demo
# store is rebuilt from scratch each time.
set -euo pipefail

root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$root"
port="${FLOWVEIL_PORT:-8080}"
log_dir="$root/build/logs"

# Run a command with its output in a log file; print the log if it fails.
quiet() {
    local name=$1
    shift
    mkdir -p "$log_dir"
    if ! "$@" >"$log_dir/$name.log" 2>&1; then
        echo "demo: '$*' failed; the end of $log_dir/$name.log follows" >&2
        tail -n 60 "$log_dir/$name.log" >&2
        exit 1
    fi
}

bash scripts/install-deps.sh

echo "demo: building in build/"
quiet configure cmake -S . -B build -DCMAKE_BUILD_TYPE=RelWithDebInfo
quiet build cmake --build build -j "$(nproc)" --target flowveil flowveil-demogen

echo "demo: generating demo/demo.pcap"
mkdir -p demo
quiet demogen build/tools/demogen/flowveil-demogen --output demo/demo.pcap

echo "demo: ingesting it into demo/db with policy/example-policy.yaml"
rm -rf demo/db
build/cli/flowveil ingest --policy policy/example-policy.yaml --db demo/db demo/demo.pcap

web_args=()
if [ -d web ]; then
    web_args=(--web "$root/web")
fi
# The store is new, so serve creates the user admin on its first start;
# the demo gives it a fresh random password and prints it.
password=$(head -c 15 /dev/urandom | base64 | tr '+/' 'xy')
umask 077
printf '%s\n' "$password" >demo/admin-password
echo "demo: dashboard at http://127.0.0.1:$port/ (stop with Ctrl-C)"
echo "demo: log in as user 'admin' with password $password"
echo "demo: an API token for scripts: build/cli/flowveil token create NAME --role analyst --db demo/db"
exec build/cli/flowveil serve --db demo/db --policy policy/example-policy.yaml \
    --listen "127.0.0.1:$port" --admin-password-file demo/admin-password "${web_args[@]}"
