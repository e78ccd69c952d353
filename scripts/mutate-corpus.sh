#!/usr/bin/env bash
# Mutation test over the real captures of the corpus: corrupt bytes,
# truncate and splice the files of $FLOWVEIL_CORPUS/pcaps, ingest every
# mutant with `flowveil ingest` into a fresh store and check that
#   - the process exits by itself within --timeout seconds (no hang),
#   - it exits 0, or 1 with a "flowveil: error:" or "flowveil: warning:"
#     line, and never by a signal or with another status (a truncated
#     capture exits 1 after a warning that names the file and the cut),
#   - stderr holds no AddressSanitizer, UndefinedBehaviorSanitizer or
#     LeakSanitizer report (use the binary of the -DFLOWVEIL_SANITIZE=ON
#     build, build-asan/, to get them).
# The mutants are drawn from --seed with perl's generator, so a run is
# reproducible on the same perl version; a failing mutant is kept in
# --keep DIR with the log of its run.
#
#   scripts/mutate-corpus.sh [--count N] [--seed S] [--jobs J]
#                            [--timeout SECONDS] [--bin FLOWVEIL]
#                            [--keep DIR] [--long]
#
#   --count N     mutants (default 300, about 3 minutes under ASan on 2 cores)
#   --long        5000 mutants, for a campaign outside CI
#   --seed S      first seed (default 1); mutant i uses seed S+i
#   --jobs J      ingests run at once (default 2)
#   --timeout T   seconds one ingest may take (default 30)
#   --bin PATH    the flowveil binary (default build-asan/cli/flowveil)
#   --keep DIR    where failing mutants go (default build-asan/mutation-failures)
set -euo pipefail

root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
count=300
seed=1
jobs=2
timeout_s=30
bin="$root/build-asan/cli/flowveil"
keep="$root/build-asan/mutation-failures"

while [ $# -gt 0 ]; do
    case "$1" in
        --count) count=${2:?--count needs a number of mutants}; shift ;;
        --long) count=5000 ;;
        --seed) seed=${2:?--seed needs a number}; shift ;;
        --jobs) jobs=${2:?--jobs needs a count}; shift ;;
        --timeout) timeout_s=${2:?--timeout needs seconds}; shift ;;
        --bin) bin=${2:?--bin needs the path of the flowveil binary}; shift ;;
        --keep) keep=${2:?--keep needs a directory}; shift ;;
        -h|--help) sed -n '2,25p' "${BASH_SOURCE[0]}"; exit 0 ;;
        *) echo "mutate-corpus: unknown option '$1'; see --help" >&2; exit 2 ;;
    esac
    shift
done

for value in "$count" "$seed" "$jobs" "$timeout_s"; do
    if ! [[ "$value" =~ ^[0-9]+$ ]]; then
        echo "mutate-corpus: '$value' is not a whole number; see --help" >&2
        exit 2
    fi
done
if [ ! -x "$bin" ]; then
    echo "mutate-corpus: flowveil binary '$bin' not found; build it or pass --bin PATH" >&2
    exit 2
fi
corpus="${FLOWVEIL_CORPUS:-$root/../shared/corpus}"
if [ ! -d "$corpus/pcaps" ]; then
    echo "mutate-corpus: no captures at '$corpus/pcaps'; set FLOWVEIL_CORPUS to the corpus directory" >&2
    exit 2
fi

work=$(mktemp -d "${TMPDIR:-/tmp}/flowveil-mutate.XXXXXX")
trap 'rm -rf "$work"' EXIT
mkdir -p "$work/mutants"
mapfile -t sources < <(find "$corpus/pcaps" -maxdepth 1 -type f \
    \( -name '*.pcap' -o -name '*.pcapng' -o -name '*.cap' \) | sort)

# Write mutant I from the sorted source list. Each draws its own seed,
# so mutant I is the same whatever --count is.
perl -e '
    use strict; use warnings;
    my ($dir, $first, $count, @files) = @ARGV;
    sub slurp { local $/; open(my $f, "<:raw", $_[0]) or die "$_[0]: $!"; my $d = <$f>; $d }
    for my $i (0 .. $count - 1) {
        srand($first + $i);
        my $src = $files[int(rand(@files))];
        my $data = slurp($src);
        my $len = length $data;
        my $kind = int(rand(4));
        my $name;
        if ($kind == 0 && $len > 0) {
            # Corrupt 1..32 random bytes, biased to the first 64 bytes (headers).
            my $n = 1 + int(rand(32));
            for (1 .. $n) {
                my $at = rand() < 0.3 ? int(rand($len < 64 ? $len : 64)) : int(rand($len));
                substr($data, $at, 1) = chr(int(rand(256)));
            }
            $name = "flip";
        } elsif ($kind == 1 && $len > 0) {
            $data = substr($data, 0, int(rand($len)));
            $name = "truncate";
        } elsif ($kind == 2) {
            my $other = slurp($files[int(rand(@files))]);
            my $cut = $len > 0 ? int(rand($len)) : 0;
            my $from = length($other) > 0 ? int(rand(length $other)) : 0;
            $data = substr($data, 0, $cut) . substr($other, $from);
            $name = "splice";
        } else {
            # Repeat or insert a random block, which shifts every later record.
            my $at = $len > 0 ? int(rand($len)) : 0;
            my $block = rand() < 0.5 ? substr($data, $at, 1 + int(rand(256)))
                                     : join("", map { chr(int(rand(256))) } 1 .. 1 + int(rand(64)));
            substr($data, $at, 0) = $block;
            $name = "insert";
        }
        (my $base = $src) =~ s{.*/}{};
        my $out = sprintf("%s/%05d-%s-%s", $dir, $first + $i, $name, $base);
        open(my $f, ">:raw", $out) or die "$out: $!";
        print $f $data;
        close $f;
    }
' "$work/mutants" "$seed" "$count" "${sources[@]}"

policy="$work/policy.yaml"
cp "$root/policy/example-policy.yaml" "$policy"

export ASAN_OPTIONS="${ASAN_OPTIONS:-detect_leaks=1}"
export UBSAN_OPTIONS="${UBSAN_OPTIONS:-halt_on_error=1:print_stacktrace=1}"

# Ingest one mutant; print "ok NAME" or "FAIL NAME: reason".
check_one() {
    local mutant=$1 name db log status reason=""
    name=$(basename "$mutant")
    db="$work/db-$name"
    log="$work/$name.log"
    set +e
    timeout -k 5 "$timeout_s" "$bin" ingest --policy "$policy" --db "$db" "$mutant" >"$log" 2>&1
    status=$?
    set -e
    if [ "$status" -eq 124 ] || [ "$status" -eq 137 ]; then
        reason="no exit within $timeout_s s (hang)"
    elif [ "$status" -gt 1 ]; then
        reason="exit status $status (crash or signal)"
    elif grep -qE 'ERROR: (Address|Leak)Sanitizer|runtime error:' "$log"; then
        reason="sanitizer report"
    elif [ "$status" -eq 1 ] && ! grep -qE '^flowveil: (error|warning): ' "$log"; then
        reason="exit status 1 without a 'flowveil: error:' or 'flowveil: warning:' message"
    fi
    rm -rf "$db"
    if [ -n "$reason" ]; then
        mkdir -p "$keep"
        cp "$mutant" "$log" "$keep"/
        echo "FAIL $name: $reason"
    else
        rm -f "$log"
        echo "ok $name"
    fi
}
export -f check_one
export work bin policy timeout_s keep

start=$SECONDS
results="$work/results.txt"
find "$work/mutants" -type f | sort | xargs -P "$jobs" -I{} bash -c 'check_one "$1"' _ {} >"$results"
failures=$(grep -c '^FAIL' "$results" || true)
took=$((SECONDS - start))
grep '^FAIL' "$results" >&2 || true
echo "mutate-corpus: $count mutants of ${#sources[@]} captures (seeds $seed..$((seed + count - 1))) ingested in ${took} s; $failures failing"
if [ "$failures" -ne 0 ]; then
    echo "mutate-corpus: failing mutants and their logs are in $keep; rerun one with: $bin ingest --policy $root/policy/example-policy.yaml --db DIR FILE" >&2
    exit 1
fi
