#!/usr/bin/env bash
# Miri over the scalar kernels on a big-endian target (s390x): undefined behaviour in the
# library's safe code, and byte order in `persist` (the version-1 fixtures were written on a
# little-endian machine; a big-endian round trip must give the same bytes). Miri cannot run
# on x86_64 here: `libm`'s `arch` feature uses inline assembly there, and not on s390x.
# The statistical shuffle and generator tests, the exhaustive byte-flip test, the many-classes k-fold test
# (`cfg_attr(miri, ignore)`) and Adam's 6,000-case bound test (`--skip`) are left out:
# millions of evaluations each, and nothing endian-specific. Two reliability tests run
# smaller under `cfg(miri)` with the same assertions: the update check's agreement with
# the step on 108 edge cases (4,000 natively), max-norm over 4 epochs (20).
set -euo pipefail
cd "$(dirname "$0")/.."
export CARGO_TERM_COLOR=never

if ! cargo +nightly --version >/dev/null 2>&1; then
    rustup toolchain install nightly --profile minimal
fi
if ! cargo +nightly miri --version >/dev/null 2>&1; then
    rustup component add miri rust-src --toolchain nightly
fi
target=s390x-unknown-linux-gnu
cargo +nightly miri setup --target "$target"
# Its own target directory: Miri's artifacts are not a normal build's.
export CARGO_TARGET_DIR=target/miri
cargo +nightly miri test -p microtrain --target "$target" --features scalar \
    --lib --test persist --test dropout --test validation --test reliability \
    -- --skip quick_update_tests_pass_only_finite_updates
