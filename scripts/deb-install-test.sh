#!/bin/bash
# Install the Debian package on a fresh Debian 12 (bookworm) root file
# system and check it there, then purge it and check what is left.
#
#   1. scripts/check-deb-package.sh builds and checks the .deb in WORK;
#   2. debootstrap --variant=minbase creates WORK/root from the Debian
#      mirror that apt uses on this machine (the first deb822 URIs line in
#      /etc/apt/sources.list.d/*.sources, or the first "deb" line of
#      /etc/apt/sources.list), with the bookworm, bookworm-updates and
#      bookworm-security suites as a fresh installation has them;
#   3. `apt-get install ./flowveil_*.deb` inside the root, which fetches
#      the package's Depends from that mirror and runs its postinst;
#   4. inside the root: `flowveil --version`, the gzipped manual page,
#      copyright and changelog.Debian.gz, the users and the group, the
#      store directory's owner and mode, `flowveil policy check` of the
#      installed policy, and `flowveil ingest` of a generated capture as
#      the user flowveil-capture into /var/lib/flowveil;
#   5. `apt-get purge flowveil`: binary, units, /etc/flowveil,
#      /var/lib/flowveil, the users and the group must be gone;
#   6. steps 3 and 5 again after installing systemd, procps and man-db,
#      which minbase lacks. This time the postinst takes its
#      systemd-sysusers path. Before the purge it also checks `man -w
#      flowveil` and runs this machine's `systemd-analyze --root=ROOT
#      verify` on the installed units.
#
# Needs root, debootstrap, network access to the Debian mirror and disk
# space in WORK for a minimal Debian root with systemd. Not run by CI,
# because it downloads a root file system.
# /proc is not mounted in the root: nothing run there needs it.
#
# usage: deb-install-test.sh SOURCE_DIR [WORK_DIR]
#   KEEP_ROOT=1 leaves WORK/root in place for inspection.
set -euo pipefail

if [ $# -lt 1 ]; then
    echo "usage: deb-install-test.sh SOURCE_DIR [WORK_DIR]" >&2
    exit 2
fi
source_dir=$(cd "$1" && pwd)
work=${2:-$(mktemp -d /tmp/flowveil-deb-install.XXXXXX)}
mkdir -p "$work"
work=$(cd "$work" && pwd)
root="$work/root"
script_dir=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)

passed=()
fail() { echo "deb-install-test: FAIL: $*" >&2; exit 1; }
pass() { echo "deb-install-test: ok: $*"; passed+=("$*"); }
in_root() { chroot "$root" /usr/bin/env -i PATH=/usr/sbin:/usr/bin:/sbin:/bin LANG=C.UTF-8 "$@"; }

[ "$(id -u)" -eq 0 ] || fail "run as root: debootstrap and chroot need it"
command -v debootstrap >/dev/null || fail "debootstrap is missing; install it with: apt-get install debootstrap"

# Unmount whatever is mounted below the root (this script mounts nothing,
# but a package's maintainer script could), then delete the root unless
# KEEP_ROOT is set.
cleanup() {
    if [ -d "$root" ]; then
        while read -r mnt; do
            umount -l "$mnt" 2>/dev/null || true
        done < <(awk -v r="$root/" 'index($2, r) == 1 { print $2 }' /proc/mounts | sort -r)
        if [ "${KEEP_ROOT:-0}" != 1 ]; then
            rm -rf "$root"
        fi
    fi
}
trap cleanup EXIT

# The mirror apt uses here: deb822 .sources files first, then the
# one-line format.
mirror=""
for f in /etc/apt/sources.list.d/*.sources; do
    [ -e "$f" ] || continue
    mirror=$(awk '/^URIs:/ && $2 !~ /security/ { print $2; exit }' "$f")
    [ -n "$mirror" ] && break
done
if [ -z "$mirror" ] && [ -e /etc/apt/sources.list ]; then
    mirror=$(awk '$1 == "deb" && $0 !~ /security/ { for (i = 2; i <= NF; i++) if ($i ~ /^[a-z]+:\/\//) { print $i; exit } }' \
             /etc/apt/sources.list)
fi
[ -n "$mirror" ] || fail "no Debian mirror found in /etc/apt/sources.list{,.d}"
security=${mirror%/debian}/debian-security
echo "mirror: $mirror (security: $security)"

# 1. The package.
bash "$script_dir/check-deb-package.sh" "$source_dir" "$work/pkg" || fail "check-deb-package.sh"
deb=$(ls "$work"/pkg/build/flowveil_*.deb)
version=$(dpkg-deb -f "$deb" Version)
pass "package $(basename "$deb") built and checked"

# 2. A fresh root file system.
rm -rf "$root"
debootstrap --variant=minbase bookworm "$root" "$mirror" >"$work/debootstrap.log" 2>&1 ||
    { tail -20 "$work/debootstrap.log"; fail "debootstrap"; }
cat >"$root/etc/apt/sources.list" <<EOF
deb $mirror bookworm main
deb $mirror bookworm-updates main
deb $security bookworm-security main
EOF
in_root grep -q '^VERSION_ID="12"' /etc/os-release || fail "the new root is not Debian 12"
pass "debootstrap --variant=minbase bookworm"

# 3. Install with apt, which resolves Depends from the mirror.
cp "$deb" "$root/tmp/"
in_root apt-get update -q >"$work/apt-update.log" 2>&1 ||
    { tail -20 "$work/apt-update.log"; fail "apt-get update in the root"; }
in_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -q "/tmp/$(basename "$deb")" \
    >"$work/apt-install.log" 2>&1 || { tail -30 "$work/apt-install.log"; fail "apt-get install"; }
in_root dpkg -s flowveil | grep -q '^Status: install ok installed$' || fail "dpkg status after install"
pass "apt-get install pulled the Depends and configured flowveil $version"

# 4. Inside the root.
in_root flowveil --version | grep -q "^flowveil " || fail "flowveil --version"
pass "flowveil --version: $(in_root flowveil --version | head -1)"

for f in /usr/share/man/man8/flowveil.8.gz /usr/share/doc/flowveil/copyright \
         /usr/share/doc/flowveil/changelog.Debian.gz; do
    [ -f "$root$f" ] || fail "missing $f"
done
gzip -t "$root/usr/share/man/man8/flowveil.8.gz" || fail "flowveil.8.gz is not valid gzip"
zcat "$root/usr/share/man/man8/flowveil.8.gz" | grep -q '^\.TH FLOWVEIL 8' || fail "man page header"
pass "man page /usr/share/man/man8/flowveil.8.gz, copyright, changelog.Debian.gz"

for u in flowveil-capture flowveil-serve; do
    entry=$(in_root getent passwd "$u") || fail "user $u was not created"
    gid=$(echo "$entry" | cut -d: -f4)
    [ "$(in_root getent group flowveil | cut -d: -f3)" = "$gid" ] ||
        fail "$u's primary group is not flowveil: $entry"
done
store=$(in_root stat -c '%U:%G %a' /var/lib/flowveil) || fail "/var/lib/flowveil missing"
[ "$store" = "flowveil-capture:flowveil 2770" ] || fail "/var/lib/flowveil is $store"
pass "users flowveil-capture and flowveil-serve in group flowveil; /var/lib/flowveil $store"

in_root flowveil policy check /etc/flowveil/policy.yaml >"$work/policy-check.log" 2>&1 ||
    { cat "$work/policy-check.log"; fail "flowveil policy check /etc/flowveil/policy.yaml"; }
pass "flowveil policy check /etc/flowveil/policy.yaml"

# A small capture: a DNS query and its answer between an internal host
# and 9.9.9.9. 10.2.0.10 lies in the example policy's zone office and in
# no monitoring group, so it gets full records (192.168.0.0/16 is the
# aggregate-only guest group).
python3 - "$root/tmp/small.pcap" <<'EOF'
import struct, sys

def csum(b):
    s = sum(struct.unpack("!%dH" % (len(b) // 2), b))
    s = (s >> 16) + (s & 0xFFFF)
    return (~(s + (s >> 16))) & 0xFFFF

def udp_frame(src, dst, sport, dport, payload, mac_src, mac_dst):
    udp = struct.pack("!HHHH", sport, dport, 8 + len(payload), 0) + payload
    ip = struct.pack("!BBHHHBBH4s4s", 0x45, 0, 20 + len(udp), 1, 0, 64, 17, 0,
                     bytes(src), bytes(dst))
    ip = ip[:10] + struct.pack("!H", csum(ip)) + ip[12:]
    return mac_dst + mac_src + b"\x08\x00" + ip + udp

qname = b"\x07example\x03com\x00"
query = struct.pack("!HHHHHH", 0x1234, 0x0100, 1, 0, 0, 0) + qname + b"\x00\x01\x00\x01"
answer = (struct.pack("!HHHHHH", 0x1234, 0x8180, 1, 1, 0, 0) + qname + b"\x00\x01\x00\x01"
          + b"\xc0\x0c\x00\x01\x00\x01\x00\x00\x01\x2c\x00\x04" + bytes([93, 184, 216, 34]))
host, resolver = [10, 2, 0, 10], [9, 9, 9, 9]
mac_host, mac_gw = b"\x02\x00\x00\x00\x00\x0a", b"\x02\x00\x00\x00\x00\x01"
frames = [udp_frame(host, resolver, 40000, 53, query, mac_host, mac_gw),
          udp_frame(resolver, host, 53, 40000, answer, mac_gw, mac_host)]
with open(sys.argv[1], "wb") as f:
    f.write(struct.pack("<IHHiIII", 0xA1B2C3D4, 2, 4, 0, 0, 65535, 1))
    for i, frame in enumerate(frames):
        f.write(struct.pack("<IIII", 1767225600, 1000 * i, len(frame), len(frame)))
        f.write(frame)
EOF
chmod 0644 "$root/tmp/small.pcap"
in_root setpriv --reuid flowveil-capture --regid flowveil --init-groups \
    flowveil ingest --policy /etc/flowveil/policy.yaml --db /var/lib/flowveil /tmp/small.pcap \
    >"$work/ingest.log" 2>&1 || { cat "$work/ingest.log"; fail "flowveil ingest as flowveil-capture"; }
# One flow, and a DNS record for the query and one for the answer.
grep -qE 'committed [0-9]+ records up to packet 2: flows=1 dns=2 ' "$work/ingest.log" ||
    { cat "$work/ingest.log"; fail "ingest did not store the flow and both DNS records"; }
[ "$(in_root stat -c '%U %a' /var/lib/flowveil/pseudonym.key)" = "flowveil-capture 600" ] ||
    fail "pseudonym.key is not flowveil-capture 0600"
pass "flowveil ingest as flowveil-capture stored the flow and both DNS records in /var/lib/flowveil"

# 5. Purge.
purge_and_check() {
    in_root env DEBIAN_FRONTEND=noninteractive apt-get purge -y -q flowveil \
        >"$work/apt-purge.log" 2>&1 || { tail -30 "$work/apt-purge.log"; fail "apt-get purge"; }
    for f in /usr/bin/flowveil /etc/flowveil /var/lib/flowveil \
             /usr/lib/systemd/system/flowveil-capture.service /usr/share/doc/flowveil; do
        [ ! -e "$root$f" ] || fail "$f is still there after purge"
    done
    for u in flowveil-capture flowveil-serve; do
        ! in_root getent passwd "$u" >/dev/null || fail "user $u is still there after purge"
    done
    ! in_root getent group flowveil >/dev/null || fail "group flowveil is still there after purge"
}
purge_and_check
pass "apt-get purge removed the files, /etc/flowveil, /var/lib/flowveil, the users and the group"

# 6. The same with systemd, procps and man-db, as on a standard
# installation: the postinst creates the accounts with systemd-sysusers
# this time, and the units can be verified against the root's systemd.
in_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends \
    systemd procps man-db >"$work/apt-systemd.log" 2>&1 ||
    { tail -30 "$work/apt-systemd.log"; fail "apt-get install systemd procps man-db"; }
in_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -q "/tmp/$(basename "$deb")" \
    >"$work/apt-install2.log" 2>&1 || { tail -30 "$work/apt-install2.log"; fail "apt-get install with systemd"; }
for u in flowveil-capture flowveil-serve; do
    in_root getent passwd "$u" >/dev/null || fail "systemd-sysusers did not create $u"
done
[ "$(in_root stat -c '%U:%G %a' /var/lib/flowveil)" = "flowveil-capture:flowveil 2770" ] ||
    fail "/var/lib/flowveil after the install with systemd"
pass "install with systemd present: systemd-sysusers created the users"

manpath=$(in_root man -w flowveil) || fail "man -w flowveil"
[ "$manpath" = /usr/share/man/man8/flowveil.8.gz ] || fail "man -w flowveil gives $manpath"
pass "man -w flowveil: $manpath"

# This machine's systemd-analyze reads the units and the targets they
# name from the root. --man=no: the manual page was checked above, and
# the host's man(1) cannot see the root's pages.
if command -v systemd-analyze >/dev/null; then
    if systemd-analyze --root="$root" --man=no verify \
           /usr/lib/systemd/system/flowveil-capture.service \
           /usr/lib/systemd/system/flowveil-serve.service >"$work/verify.log" 2>&1; then
        pass "systemd-analyze --root verify of both units"
    else
        cat "$work/verify.log"
        fail "systemd-analyze verify"
    fi
else
    echo "deb-install-test: skipped: systemd-analyze is not installed here"
fi

purge_and_check
pass "apt-get purge with systemd present removed everything again"

echo "deb-install-test: OK: flowveil $version on Debian $(cat "$root/etc/debian_version"), $(date -u +%Y-%m-%d)"
for p in "${passed[@]}"; do
    echo "  - $p"
done
