#!/usr/bin/env bash
# Builds every fuzz target and runs each one for a while; exits non-zero when
# any target finds an input that crashes it (panic, timeout, out of memory),
# after saying where that input was saved.
#
#   fuzz/run.sh [--seconds N] [--jobs J] [TARGET...]
#
# --seconds N  how long each target runs (default 30; e.g. 3600 for an hour)
# --jobs J     parallel fuzzing processes per target (libFuzzer -fork; default 1)
# TARGET       some of the targets in fuzz/fuzz_targets/ (default: all)
#
# Needs cargo-fuzz (`cargo install cargo-fuzz --locked`). The stable
# compiler accepts the -Z flags cargo-fuzz passes with RUSTC_BOOTSTRAP=1.
# Without a sanitizer: the code under test forbids unsafe, and a build
# without one is faster to make and to run.
set -euo pipefail
cd "$(dirname "$0")"

seconds=30
jobs=1
targets=()
while [ $# -gt 0 ]; do
    case "$1" in
        --seconds) seconds="$2"; shift 2 ;;
        --jobs) jobs="$2"; shift 2 ;;
        -h|--help) sed -n '2,16p' "$0" | sed 's/^# \{0,1\}//'; exit 0 ;;
        -*) echo "unknown option $1" >&2; exit 2 ;;
        *) targets+=("$1"); shift ;;
    esac
done

export RUSTC_BOOTSTRAP=1
build=(--release --sanitizer none)
if [ ${#targets[@]} -eq 0 ]; then
    mapfile -t targets < <(cargo fuzz list)
fi

cargo fuzz build "${build[@]}"

failed=()
for target in "${targets[@]}"; do
    # New inputs go to a scratch corpus; the checked-in seeds stay as they are
    # (grow them with `cargo fuzz cmin`, see README.md).
    scratch="target/corpus/$target"
    mkdir -p "$scratch" "corpus/$target" "artifacts/$target"
    options=(-max_total_time="$seconds" -timeout=10 -rss_limit_mb=2048 -print_final_stats=1)
    if [ "$jobs" -gt 1 ]; then
        options+=(-fork="$jobs")
    fi
    echo "== $target: ${seconds}s" >&2
    if ! cargo fuzz run "${build[@]}" "$target" "$scratch" "corpus/$target" -- "${options[@]}"; then
        failed+=("$target")
        echo "== $target FAILED; the input is saved in fuzz/artifacts/$target/:" >&2
        ls -t "artifacts/$target" | head -n 5 | sed "s|^|   fuzz/artifacts/$target/|" >&2
    fi
done

if [ ${#failed[@]} -gt 0 ]; then
    echo "== crashes in: ${failed[*]}" >&2
    echo "   reproduce: RUSTC_BOOTSTRAP=1 cargo fuzz run --release --sanitizer none TARGET fuzz/artifacts/TARGET/FILE" >&2
    echo "   minimise:  RUSTC_BOOTSTRAP=1 cargo fuzz tmin --release --sanitizer none TARGET fuzz/artifacts/TARGET/FILE" >&2
    exit 1
fi
echo "== no crash in ${#targets[@]} targets" >&2
