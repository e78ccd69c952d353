#!/bin/bash
# Build the Debian package with CPack and check it without touching the
# host's package database:
#   1. configure SOURCE with the prefix /usr in a fresh build directory,
#      build it and run `cpack -G DEB`;
#   2. dpkg-deb -I: package name, Depends from dpkg-shlibdeps (libpcap,
#      libsodium, LMDB, libmicrohttpd, jansson, libyaml, libpsl), the
#      conffiles and an executable postinst that runs systemd-sysusers;
#   3. dpkg --root=ROOT --unpack into an empty root: the layout (binary,
#      dashboard, man page, units, sysusers.d file, settings file and
#      policy under /etc/flowveil), the conffiles registered in ROOT's
#      dpkg status, and the units' ExecStart naming the installed binary;
#   4. the unpacked binary runs (--version) and accepts the shipped
#      settings file (`serve --config ... --help` parses it).
# Not covered: the postinst itself, because dpkg runs it chrooted into
# ROOT, which contains no shell, and running it outside would create
# users on this host. It is only checked with `sh -n`. Installing on a
# fresh Debian 12 system needs a VM or container.
#
# usage: check-deb-package.sh SOURCE_DIR [WORK_DIR]
set -euo pipefail

source_dir=$(cd "$1" && pwd)
work=${2:-$(mktemp -d /tmp/flowveil-deb.XXXXXX)}
mkdir -p "$work"
build="$work/build"
root="$work/root"

fail() { echo "check-deb-package: FAIL: $*" >&2; exit 1; }

cmake -S "$source_dir" -B "$build" -DCMAKE_INSTALL_PREFIX=/usr -DCMAKE_BUILD_TYPE=Release \
      -DFLOWVEIL_TESTS=OFF -DFLOWVEIL_BENCH=OFF >"$work/configure.log"
cmake --build "$build" -j2 >"$work/build.log" 2>&1 || { tail -30 "$work/build.log"; fail "build failed"; }
(cd "$build" && cpack -G DEB >"$work/cpack.log" 2>&1) || { tail -30 "$work/cpack.log"; fail "cpack failed"; }
deb=$(ls "$build"/flowveil_*.deb)
echo "package: $deb"

info=$(dpkg-deb -I "$deb")
echo "$info" | grep -q '^ Package: flowveil$' || fail "Package field"
depends=$(echo "$info" | sed -n 's/^ Depends: //p')
for lib in libpcap0.8 libsodium23 liblmdb0 libmicrohttpd12 libjansson4 libyaml-0-2 libpsl5 libc6; do
    echo "$depends" | grep -q "$lib" || fail "Depends lacks $lib: $depends"
done
dpkg-deb -e "$deb" "$work/control"
grep -qx /etc/flowveil/flowveil.conf "$work/control/conffiles" || fail "conffiles lacks flowveil.conf"
grep -qx /etc/flowveil/policy.yaml "$work/control/conffiles" || fail "conffiles lacks policy.yaml"
[ -x "$work/control/postinst" ] || fail "postinst is not executable"
grep -q 'systemd-sysusers /usr/lib/sysusers.d/flowveil.conf' "$work/control/postinst" ||
    fail "postinst does not run systemd-sysusers on the packaged file"
sh -n "$work/control/postinst" || fail "postinst has a syntax error"

# An empty root with a dpkg database of its own.
rm -rf "$root"
mkdir -p "$root/var/lib/dpkg/info" "$root/var/lib/dpkg/updates"
: >"$root/var/lib/dpkg/status"
dpkg --root="$root" --force-depends --unpack "$deb" >"$work/dpkg.log" 2>&1 ||
    { cat "$work/dpkg.log"; fail "dpkg --unpack"; }
status=$(dpkg --root="$root" -s flowveil)
echo "$status" | grep -q '^Status: install ok unpacked$' || fail "dpkg status: $status"
echo "$status" | grep -q '/etc/flowveil/flowveil.conf' || fail "conffile not registered"

for f in usr/bin/flowveil usr/share/flowveil/web/index.html usr/share/man/man8/flowveil.8 \
         usr/share/flowveil/example-policy.yaml usr/share/flowveil/example-flowveil.conf \
         usr/lib/systemd/system/flowveil-capture.service \
         usr/lib/systemd/system/flowveil-serve.service usr/lib/sysusers.d/flowveil.conf; do
    [ -e "$root/$f" ] || fail "missing /$f"
done
# dpkg --unpack leaves conffiles as FILE.dpkg-new; configure renames them.
for f in etc/flowveil/flowveil.conf etc/flowveil/policy.yaml; do
    [ -e "$root/$f.dpkg-new" ] || [ -e "$root/$f" ] || fail "missing /$f"
done
for unit in flowveil-capture flowveil-serve; do
    grep -q '^ExecStart=/usr/bin/flowveil .*--config /etc/flowveil/flowveil.conf' \
        "$root/usr/lib/systemd/system/$unit.service" || fail "$unit ExecStart"
done

"$root/usr/bin/flowveil" --version | grep -q '^flowveil ' || fail "binary does not run"
"$root/usr/bin/flowveil" serve --config "$root/etc/flowveil/flowveil.conf.dpkg-new" --help \
    >/dev/null ||
    fail "the shipped settings file does not parse"
echo "check-deb-package: OK ($(dpkg-deb -c "$deb" | wc -l) entries)"
