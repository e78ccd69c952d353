#!/bin/bash
# Build the Debian package with CPack and check it without touching the
# host's package database:
#   1. configure SOURCE with the prefix /usr in a fresh build directory,
#      build it and run `cpack -G DEB`;
#   2. dpkg-deb -I: package name, a Debian revision, and a Description
#      with a summary line and a different extended description. Depends
#      from dpkg-shlibdeps must name every shared library the binary
#      links. The conffiles, and executable maintainer scripts: postinst (runs
#      systemd-sysusers, creates /var/lib/flowveil), prerm (stops the
#      units) and postrm (deletes the store and the users on purge only);
#   3. dpkg --root=ROOT --unpack into an empty root: the layout (binary,
#      dashboard, gzipped man page, copyright in the DEP-5 format with
#      uPlot's licence, changelog.Debian.gz, units, sysusers.d file,
#      settings file and policy under /etc/flowveil), the conffiles
#      registered in ROOT's dpkg status, and the units' ExecStart naming
#      the installed binary;
#   4. the unpacked binary runs (--version) and accepts the shipped
#      settings file (`serve --config ... --help` parses it);
#   5. lintian, when installed, reports no error (E:) tag; warnings are
#      printed.
# Not covered: running the maintainer scripts, because dpkg runs them
# chrooted into ROOT, which contains no shell, and running them outside
# would create users on this host. They are only checked with `sh -n`.
# scripts/deb-install-test.sh installs the package on a fresh Debian 12
# root file system and runs them there.
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
version=$(dpkg-deb -f "$deb" Version)
case "$version" in
    *-[0-9]*) ;;
    *) fail "Version $version has no Debian revision, so changelog.Debian.gz would be misnamed" ;;
esac
# Description: the summary, then at least two lines of extended text that
# do not repeat it.
description=$(dpkg-deb -f "$deb" Description)
summary=$(echo "$description" | head -1)
[ "$(echo "$description" | wc -l)" -ge 3 ] || fail "Description has no extended text: $description"
echo "$description" | tail -n +2 | grep -qiF "$summary" && fail "the extended Description repeats the summary"
# Depends must name the package of every shared library the binary
# needs: resolve each NEEDED entry with ldd and find its package with
# dpkg -S.
depends=$(echo "$info" | sed -n 's/^ Depends: //p')
for lib in libpcap0.8 libsodium23 liblmdb0 libmicrohttpd12 libjansson4 libyaml-0-2 libpsl5 \
           libglib2.0-0 libnettle8 libfixbuf9 librdkafka1 libc6; do
    echo "$depends" | grep -q "$lib" || fail "Depends lacks $lib: $depends"
done
needed=$(objdump -p "$build/cli/flowveil" | awk '$1 == "NEEDED" { print $2 }')
resolved=$(ldd "$build/cli/flowveil")
for so in $needed; do
    path=$(echo "$resolved" | awk -v so="$so" '$1 == so && $2 == "=>" { print $3 }')
    # With merged /usr, dpkg lists a library under only one of /lib and
    # /usr/lib.
    pkg=$({ dpkg -S "$path" 2>/dev/null || dpkg -S "/usr$path" 2>/dev/null; } | head -1 | cut -d: -f1) ||
        true
    [ -n "$pkg" ] || fail "no installed package owns $so ($path)"
    echo "$depends" | grep -q "\b$pkg\b" || fail "Depends lacks $pkg (for $so): $depends"
done
dpkg-deb -e "$deb" "$work/control"
grep -qx /etc/flowveil/flowveil.conf "$work/control/conffiles" || fail "conffiles lacks flowveil.conf"
grep -qx /etc/flowveil/policy.yaml "$work/control/conffiles" || fail "conffiles lacks policy.yaml"
for script in postinst prerm postrm; do
    [ -x "$work/control/$script" ] || fail "$script is missing or not executable"
    sh -n "$work/control/$script" || fail "$script has a syntax error"
done
grep -q 'systemd-sysusers /usr/lib/sysusers.d/flowveil.conf' "$work/control/postinst" ||
    fail "postinst does not run systemd-sysusers on the packaged file"
grep -q 'install -d -o flowveil-capture -g flowveil -m 2770 /var/lib/flowveil' \
    "$work/control/postinst" || fail "postinst does not create /var/lib/flowveil"
grep -q 'deb-systemd-invoke stop flowveil-serve.service flowveil-capture.service' \
    "$work/control/prerm" || fail "prerm does not stop the units"
# postrm deletes the store and the accounts only inside its purge branch.
purge_branch=$(sed -n '/^if \[ "\$1" = "purge" \]; then$/,/^fi$/p' "$work/control/postrm")
for step in 'rm -rf /var/lib/flowveil' 'userdel "$u"' 'groupdel flowveil'; do
    echo "$purge_branch" | grep -qF "$step" || fail "postrm's purge branch lacks: $step"
    [ "$(grep -cF "$step" "$work/control/postrm")" = "$(echo "$purge_branch" | grep -cF "$step")" ] ||
        fail "postrm runs '$step' outside its purge branch"
done

# An empty root with a dpkg database of its own.
rm -rf "$root"
mkdir -p "$root/var/lib/dpkg/info" "$root/var/lib/dpkg/updates"
: >"$root/var/lib/dpkg/status"
dpkg --root="$root" --force-depends --unpack "$deb" >"$work/dpkg.log" 2>&1 ||
    { cat "$work/dpkg.log"; fail "dpkg --unpack"; }
status=$(dpkg --root="$root" -s flowveil)
echo "$status" | grep -q '^Status: install ok unpacked$' || fail "dpkg status: $status"
echo "$status" | grep -q '/etc/flowveil/flowveil.conf' || fail "conffile not registered"

for f in usr/bin/flowveil usr/share/flowveil/web/index.html usr/share/man/man8/flowveil.8.gz \
         usr/share/doc/flowveil/copyright usr/share/doc/flowveil/changelog.Debian.gz \
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

[ ! -e "$root/usr/share/man/man8/flowveil.8" ] || fail "the man page is also installed uncompressed"
zcat "$root/usr/share/man/man8/flowveil.8.gz" | grep -q '^\.TH FLOWVEIL 8' || fail "flowveil.8.gz"
zcat "$root/usr/share/doc/flowveil/changelog.Debian.gz" | head -1 |
    grep -q "^flowveil ($version) " || fail "changelog.Debian.gz does not start with version $version"
copyright="$root/usr/share/doc/flowveil/copyright"
grep -qx 'Format: https://www.debian.org/doc/packaging-manuals/copyright-format/1.0/' "$copyright" ||
    fail "copyright is not in the DEP-5 format"
grep -q '^Files: usr/share/flowveil/web/vendor/uPlot.esm.js$' "$copyright" ||
    fail "copyright lacks the vendored uPlot"
grep -q '^License: Expat$' "$copyright" || fail "copyright lacks uPlot's Expat licence"
for f in $(sed -n 's/^Files: \(usr\/.*\)/\1/p; s/^       \(usr\/.*\)/\1/p' "$copyright"); do
    [ -e "$root/$f" ] || fail "copyright names /$f, which the package does not contain"
done

"$root/usr/bin/flowveil" --version | grep -q '^flowveil ' || fail "binary does not run"
"$root/usr/bin/flowveil" serve --config "$root/etc/flowveil/flowveil.conf.dpkg-new" --help \
    >/dev/null ||
    fail "the shipped settings file does not parse"
if command -v lintian >/dev/null 2>&1; then
    # --allow-root: this script runs as root in CI, and lintian warns
    # about that otherwise.
    lintian --allow-root "$deb" >"$work/lintian.log" 2>&1 || true
    cat "$work/lintian.log"
    ! grep -q '^E: ' "$work/lintian.log" || fail "lintian reports errors (above)"
else
    echo "check-deb-package: lintian is not installed; skipped (apt-get install lintian)"
fi
echo "check-deb-package: OK ($(dpkg-deb -c "$deb" | wc -l) entries)"
