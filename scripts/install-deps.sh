#!/usr/bin/env bash
# Install the Debian 12 packages that build and run flowveil, plus any
# extra package names given as arguments. Skips apt entirely when every
# package is already installed, so a second run is fast and offline.
# Runs apt as root, through sudo when the caller is not root.
# apt's output goes to a log file, which is printed only on failure.
#
# Usage: scripts/install-deps.sh [EXTRA_PACKAGE...]
set -euo pipefail

packages=(
    build-essential cmake pkg-config
    libpcap-dev libsodium-dev liblmdb-dev libmicrohttpd-dev
    libcmocka-dev libjansson-dev libyaml-dev nettle-dev libpsl-dev publicsuffix
    strace  # test dependency: the serve-has-no-key invariant test traces its opens
    clang libclang-rt-14-dev  # test dependency: the libFuzzer harnesses (scripts/fuzz.sh)
    groff-base  # test dependency: renders the manual page (scripts/check-manpage.sh)
    libfixbuf-dev librdkafka-dev  # export/: IPFIX and Kafka hand-off
    nfdump  # test dependency: nfcapd receives the IPFIX export (test_export_collectors)
    openssl curl  # test dependency: the HTTPS round trip in tests/unit/api_auth
    jq  # test dependency: scripts/detect-corpus.sh reads the exported alerts
    softflowd  # test dependency: exports NetFlow v9 and IPFIX to `flowveil collect` (test_collect_softflowd)
    cppcheck clang-tidy  # test dependency: scripts/static-analysis.sh
    "$@"
)

missing=()
for pkg in "${packages[@]}"; do
    status=$(dpkg-query -W -f='${db:Status-Status}' "$pkg" 2>/dev/null || true)
    if [ "$status" != "installed" ]; then
        missing+=("$pkg")
    fi
done
if [ "${#missing[@]}" -eq 0 ]; then
    echo "install-deps: all ${#packages[@]} packages already installed"
    exit 0
fi

if [ "$(id -u)" -eq 0 ]; then
    as_root=()
elif command -v sudo >/dev/null 2>&1; then
    as_root=(sudo)
else
    echo "install-deps: missing packages (${missing[*]}) and not root; run as root or install sudo" >&2
    exit 1
fi

log="${TMPDIR:-/tmp}/flowveil-install-deps.log"
echo "install-deps: installing ${missing[*]} (log: $log)"
export DEBIAN_FRONTEND=noninteractive
if ! { "${as_root[@]}" apt-get update &&
       "${as_root[@]}" apt-get install -y --no-install-recommends "${missing[@]}"; } >"$log" 2>&1; then
    echo "install-deps: apt-get failed; the end of $log follows" >&2
    tail -n 40 "$log" >&2
    exit 1
fi
