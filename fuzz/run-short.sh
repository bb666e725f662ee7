#!/usr/bin/env bash
# Short, bounded fuzzing (a developer's run, `just fuzz`; CI replays the seeds on stable instead,
# docs/decisions/0008-fuzzing-in-ci.md): builds every target once with nightly, then runs each from
# its committed seeds (fuzz/seeds/<target>) for FUZZ_SECONDS (default 10) seconds, one process
# on one core (no -jobs: libFuzzer would then log to fuzz-N.log instead of the output).
# Prints one line per target; exits non-zero when any target crashes or fails to build.
# Installs nightly (minimal profile) and cargo-fuzz when missing. See fuzz/README.md.
set -euo pipefail

cd "$(dirname "$0")"
seconds="${FUZZ_SECONDS:-10}"
# Extra flags for `cargo fuzz build/run`, e.g. FUZZ_BUILD_FLAGS=-O to reuse a build made without
# debug assertions. Default: none (release with debug assertions and overflow checks).
read -r -a build_flags <<<"${FUZZ_BUILD_FLAGS:-}"

if ! rustup toolchain list | grep -q '^nightly'; then
    echo "fuzz: installing the nightly toolchain (minimal profile)"
    rustup toolchain install nightly --profile minimal
fi
if ! cargo fuzz --version >/dev/null 2>&1; then
    echo "fuzz: installing cargo-fuzz"
    cargo install cargo-fuzz --locked
fi

cargo +nightly fuzz build ${build_flags[@]+"${build_flags[@]}"}
targets="$(cargo +nightly fuzz list)"

failed=0
for target in $targets; do
    mkdir -p "corpus/$target"
    log="$(mktemp)"
    # corpus/<target> (ignored by git) takes what the run finds; seeds/<target> is read only.
    if cargo +nightly fuzz run ${build_flags[@]+"${build_flags[@]}"} "$target" "corpus/$target" "seeds/$target" -- \
        -max_total_time="$seconds" -timeout=10 -rss_limit_mb=2048 >"$log" 2>&1; then
        runs="$(grep -Eo '^Done [0-9]+ runs' "$log" | grep -Eo '[0-9]+' || echo '?')"
        echo "fuzz: $target: ok, $runs runs in ${seconds}s, no crash"
    else
        failed=1
        echo "fuzz: $target: FAILED (crash, timeout or build error); last lines of its log:"
        tail -n 40 "$log" | sed 's/^/    /'
        grep -E 'Test unit written to|artifact' "$log" | sed 's/^/    /' || true
    fi
    rm -f "$log"
done
exit "$failed"
