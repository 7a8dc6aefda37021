#!/usr/bin/env bash
# The one test command: formatting, lints, every Rust test (including the C/C++ tests in
# tests/tests/c_api.rs and the header freshness test in ffi/tests), docs, the no_std check
# and a fuzz smoke run. Stops at the first failing step; prints a summary either way.
#
# Environment:
#   CI=true              cargo-fuzz and valgrind are required instead of skipped when absent
#                        (proptest also stops shrinking on CI)
#   FUZZ_SECONDS=20      how long each fuzz target runs
#   MEMPLAN_VALGRIND=0|1 run the C test program under valgrind (default: 1 when installed)
#   CARGO_TARGET_DIR     honoured for the workspace; the fuzz crate always builds in
#                        fuzz/target (its RUSTFLAGS differ, sharing would force rebuilds)
set -euo pipefail
cd "$(dirname "$0")/.."

FUZZ_SECONDS="${FUZZ_SECONDS:-20}"
ci=false
if [[ "${CI:-}" == "true" || "${CI:-}" == "1" ]]; then ci=true; fi

summary=()
current=""
started=$SECONDS
step_start=$SECONDS

begin() {
    current="$1"
    step_start=$SECONDS
    printf '\n==== %s ====\n' "$current"
}
pass() { summary+=("ok    $current ($((SECONDS - step_start)) s)"); }
skip() {
    echo "SKIP: $1"
    summary+=("skip  $current: $1")
}
finish() {
    local status=$?
    printf '\n==== summary ====\n'
    for line in "${summary[@]}"; do echo "$line"; done
    if ((status != 0)); then
        echo "FAILED  $current (exit $status) after $((SECONDS - started)) s"
    else
        echo "PASSED  ${#summary[@]} steps in $((SECONDS - started)) s"
    fi
}
trap finish EXIT

# ---------------------------------------------------------------------------------------------
begin "rustfmt"
cargo fmt --all -- --check
cargo fmt --manifest-path tests/no_std_check/Cargo.toml -- --check
cargo fmt --manifest-path fuzz/Cargo.toml -- --check
pass

# ---------------------------------------------------------------------------------------------
begin "clippy"
cargo clippy --workspace --all-targets -- -D warnings
# The fuzz checks are linted here: memplan_core::fuzzing and memplan_ffi::fuzzing are compiled
# with their `fuzzing` features by memplan-tests (tests/tests/fuzz_*.rs). fuzz/fuzz_targets/
# holds only three-line wrappers.
cargo clippy --manifest-path tests/no_std_check/Cargo.toml -- -D warnings
pass

# ---------------------------------------------------------------------------------------------
begin "cargo test --workspace"
if [[ -z "${MEMPLAN_VALGRIND:-}" ]]; then
    if command -v valgrind >/dev/null; then
        export MEMPLAN_VALGRIND=1
    elif $ci; then
        echo "valgrind is required on CI (install it, or run .ci/run)" >&2
        exit 1
    else
        echo "note: valgrind not found; the C program is not run under valgrind"
    fi
fi
cargo test --workspace
pass

# ---------------------------------------------------------------------------------------------
begin "cargo doc"
RUSTDOCFLAGS="-Dwarnings" cargo doc --workspace --no-deps
pass

# ---------------------------------------------------------------------------------------------
begin "no_std check (tests/no_std_check)"
cargo build --manifest-path tests/no_std_check/Cargo.toml
no_std_bin="$(cargo build --manifest-path tests/no_std_check/Cargo.toml --message-format=json 2>/dev/null |
    sed -n 's/.*"executable":"\([^"]*\)".*/\1/p' | tail -n 1)"
if [[ -z "$no_std_bin" || ! -x "$no_std_bin" ]]; then
    echo "cannot find the memplan-no-std-check executable" >&2
    exit 1
fi
set +e
no_std_out="$("$no_std_bin")"
no_std_status=$?
set -e
echo "$no_std_out"
if ((no_std_status != 0)) || [[ "$no_std_out" != *"no_std check: ok"* ]]; then
    echo "no_std check failed with exit status $no_std_status" >&2
    exit 1
fi
pass

# ---------------------------------------------------------------------------------------------
begin "fuzz smoke (${FUZZ_SECONDS} s per target)"
if ! cargo fuzz --version >/dev/null 2>&1; then
    if $ci; then
        echo "cargo-fuzz is required on CI: cargo install cargo-fuzz --locked" >&2
        exit 1
    fi
    skip "cargo-fuzz not installed (cargo install cargo-fuzz --locked)"
else
    fuzz=(cargo +nightly fuzz)
    if ! cargo +nightly --version >/dev/null 2>&1; then
        # cargo-fuzz needs -Z flags (sanitizers); RUSTC_BOOTSTRAP lets stable accept them.
        # Cargo caches its rustc probe without RUSTC_BOOTSTRAP in the key: drop the cache.
        echo "note: no nightly toolchain; using stable with RUSTC_BOOTSTRAP=1"
        rm -f fuzz/target/.rustc_info.json
        export RUSTC_BOOTSTRAP=1
        fuzz=(cargo fuzz)
    fi
    targets=()
    while IFS= read -r t; do targets+=("$t"); done < <(cd fuzz && "${fuzz[@]}" list)
    if ((${#targets[@]} == 0)); then
        echo "no fuzz targets found" >&2
        exit 1
    fi
    for t in "${targets[@]}"; do
        echo "-- fuzz target $t"
        (cd fuzz && "${fuzz[@]}" build --target-dir target "$t")
        mkdir -p "fuzz/corpus/$t"
        seeds=()
        if [[ -d "fuzz/regressions/$t" ]]; then seeds+=("regressions/$t"); fi
        # New inputs go to corpus/$t (ignored by git); saved regressions are replayed first.
        (cd fuzz && "${fuzz[@]}" run --target-dir target "$t" "corpus/$t" "${seeds[@]}" -- \
            -max_total_time="$FUZZ_SECONDS" -timeout=30 -print_final_stats=1)
    done
    pass
fi
