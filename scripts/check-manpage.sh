#!/usr/bin/env bash
# Check the manual page against the binary, so the page cannot fall
# behind the commands:
#  1. groff renders the page with every warning enabled (-ww) and prints
#     no warning or error;
#  2. every command that `flowveil --help` lists, and every
#     "flowveil COMMAND [SUBCOMMAND]" form in each command's --help usage,
#     has a section heading (.SS) in the page;
#  3. every long option (--name) in each command's --help appears in the
#     rendered page.
# Usage: scripts/check-manpage.sh PAGE FLOWVEIL_BINARY
set -euo pipefail

if [ "$#" -ne 2 ]; then
    echo "usage: $0 PAGE FLOWVEIL_BINARY" >&2
    exit 2
fi
page=$1
bin=$2

if ! command -v groff >/dev/null 2>&1; then
    echo "check-manpage: groff not found; install it with scripts/install-deps.sh (package groff-base)" >&2
    exit 1
fi

status=0
fail() {
    echo "check-manpage: $page: $*" >&2
    status=1
}

# 1. Render with all warnings. -z discards the output, so only warnings reach stderr.
warnings=$(groff -man -Tutf8 -ww -z "$page" 2>&1 || echo "groff exited with status $?")
if [ -n "$warnings" ]; then
    fail "groff reported problems:"
    echo "$warnings" >&2
fi

# Plain ASCII text without bold or underline, for the option search.
text=$(groff -man -Tascii -P-cbou "$page" 2>/dev/null)
headings=$(grep -E '^\.SS ' "$page" | sed -e 's/\\-/-/g')

# 2. The command list: the indented words between "Commands:" and the
#    next blank line of the main help.
mapfile -t commands < <("$bin" --help | sed -n '/^Commands:/,/^$/p' | awk 'NF > 0 && $1 != "Commands:" { print $1 }')
if [ "${#commands[@]}" -lt 5 ]; then
    fail "read only ${#commands[@]} commands from '$bin --help'; has its 'Commands:' list changed?"
fi

forms=0
options=0
for cmd in "${commands[@]}"; do
    if ! grep -qE "^\\.SS \"flowveil $cmd( |\")" <<<"$headings"; then
        fail "command '$cmd' from 'flowveil --help' has no .SS \"flowveil $cmd ...\" heading"
    fi
    [ "$cmd" = version ] && continue

    help=$("$bin" "$cmd" --help)

    # Usage forms: "flowveil CMD" plus a lowercase subcommand word, if any.
    while read -r form; do
        forms=$((forms + 1))
        if ! grep -qF ".SS \"$form" <<<"$headings"; then
            fail "usage form '$form' from 'flowveil $cmd --help' has no .SS heading"
        fi
    done < <(grep -oE "flowveil $cmd( [a-z][a-z-]*)?" <<<"$help" | sort -u)

    while read -r option; do
        options=$((options + 1))
        if ! grep -qF -- "$option" <<<"$text"; then
            fail "option '$option' from 'flowveil $cmd --help' does not appear in the page"
        fi
    done < <(grep -oE -- '--[a-z][a-z-]*' <<<"$help" | sort -u)
done

if [ "$status" -eq 0 ]; then
    echo "check-manpage: $page renders cleanly and documents ${#commands[@]} commands," \
         "$forms usage forms and $options long options"
fi
exit "$status"
