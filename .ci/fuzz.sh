#!/usr/bin/env bash
# Fuzz smoke run: build every target in fuzz/ and run each for FUZZ_SECONDS
# (default 45) from its seed corpus, FUZZ_JOBS targets at a time (default: one
# per core). Fails if a target does not build, crashes, takes over 10 s on one
# input or runs out of memory. See fuzz/README.md.
#
#   bash .ci/fuzz.sh                            # all targets, 45 s each
#   FUZZ_SECONDS=10 bash .ci/fuzz.sh            # quicker
#   bash .ci/fuzz.sh policy_toml audit_chain    # only these targets
#
# Works on the stable toolchain: cargo-fuzz passes `-Z` flags (sanitizer,
# coverage passes) to rustc, which RUSTC_BOOTSTRAP=1 lets stable accept. The
# fuzz crate is its own workspace with its own target dir (fuzz/target), so this
# never touches the main build. New corpus entries go to a temporary directory;
# the seeds under fuzz/corpus/ are only read. A crashing input is kept under
# fuzz/artifacts/<target>/ and printed as hex.
set -euo pipefail
cd "$(dirname "$0")/.."
export CARGO_TERM_COLOR=never
export RUSTC_BOOTSTRAP=1

FUZZ_SECONDS="${FUZZ_SECONDS:-45}"
FUZZ_JOBS="${FUZZ_JOBS:-$(nproc 2>/dev/null || echo 1)}"
# address works on stable x86_64 Linux; `none` runs about twice as fast.
FUZZ_SANITIZER="${FUZZ_SANITIZER:-address}"
# release (default) or dev: dev uses fuzz/Cargo.toml's [profile.dev] (opt-level 1,
# debug assertions on), which builds several times faster; CI uses it.
FUZZ_PROFILE="${FUZZ_PROFILE:-release}"
profile_flag=()
if [ "$FUZZ_PROFILE" = dev ]; then
    profile_flag=(--dev)
fi
CARGO_FUZZ_VERSION="0.13.2"

if ! cargo fuzz --version >/dev/null 2>&1; then
    echo "== installing cargo-fuzz $CARGO_FUZZ_VERSION"
    cargo install cargo-fuzz --locked --version "$CARGO_FUZZ_VERSION"
fi
cargo fuzz --version

cd fuzz
if [ "$#" -gt 0 ]; then
    targets="$*"
else
    targets="$(cargo fuzz list)"
fi

echo "== cargo fuzz build (sanitizer: $FUZZ_SANITIZER, profile: $FUZZ_PROFILE)"
t0=$(date +%s)
cargo fuzz build "${profile_flag[@]}" --sanitizer "$FUZZ_SANITIZER"
echo "build: $(($(date +%s) - t0)) s"

work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT
touch "$work/.start"

# Runs one target; its log goes to $work/<target>.log, its exit code to $work/<target>.rc.
fuzz_one() {
    local t="$1" rc=0
    mkdir -p "$work/$t" "corpus/$t"
    # The first corpus dir receives new inputs (temporary); the seeds are read only.
    cargo fuzz run "${profile_flag[@]}" --sanitizer "$FUZZ_SANITIZER" "$t" "$work/$t" "corpus/$t" -- \
        -max_total_time="$FUZZ_SECONDS" -timeout=10 -rss_limit_mb=2048 \
        -print_final_stats=1 >"$work/$t.log" 2>&1 || rc=$?
    echo "$rc" >"$work/$t.rc"
}

echo "== fuzzing each target for ${FUZZ_SECONDS}s, $FUZZ_JOBS at a time"
t0=$(date +%s)
running=0
for t in $targets; do
    fuzz_one "$t" &
    running=$((running + 1))
    if [ "$running" -ge "$FUZZ_JOBS" ]; then
        wait -n || true
        running=$((running - 1))
    fi
done
wait || true
echo "fuzzing: $(($(date +%s) - t0)) s"

failed=()
summary=()
for t in $targets; do
    log="$work/$t.log"
    if [ "$(cat "$work/$t.rc" 2>/dev/null || echo 1)" = 0 ]; then
        runs=$(sed -n 's/^stat::number_of_executed_units: *//p' "$log" | tail -1)
        rate=$(sed -n 's/^stat::average_exec_per_sec: *//p' "$log" | tail -1)
        cov=$(grep -o 'cov: [0-9]*' "$log" | tail -1 | cut -d' ' -f2)
        rss=$(sed -n 's/^stat::peak_rss_mb: *//p' "$log" | tail -1)
        summary+=("$(printf '%-16s ok     %10s runs  %7s exec/s  cov %6s  rss %5s MB' \
            "$t" "${runs:-?}" "${rate:-?}" "${cov:-?}" "${rss:-?}")")
    else
        failed+=("$t")
        summary+=("$(printf '%-16s FAILED' "$t")")
        echo "---- $t failed; last lines of its log:"
        tail -n 80 "$log" || true
        grep -m1 -A1 "panicked at" "$log" || true
        # Only inputs this run wrote (artifacts/ keeps earlier ones too).
        for a in $(find "artifacts/$t" -type f -newer "$work/.start" 2>/dev/null); do
            echo "---- input $a (first 1024 bytes, hex):"
            head -c 1024 "$a" | od -An -tx1 | head -n 64
            echo "replay: cd fuzz && RUSTC_BOOTSTRAP=1 cargo fuzz run ${profile_flag[*]} --sanitizer $FUZZ_SANITIZER $t $a"
        done
    fi
done

echo "== summary (${FUZZ_SECONDS}s per target, sanitizer $FUZZ_SANITIZER)"
printf '%s\n' "${summary[@]}"
if [ "${#failed[@]}" -gt 0 ]; then
    echo "fuzzing found problems in: ${failed[*]}"
    exit 1
fi
echo "all fuzz targets ran clean"
