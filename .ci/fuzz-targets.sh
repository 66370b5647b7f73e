#!/usr/bin/env bash
# The cargo-fuzz targets of fuzz/ (load, step, fit, kernels, kfold, shuffle): each over its
# committed regressions (fuzz/regressions/<target>, written by `cargo run --example
# write_regressions` in fuzz/; `fit` reads the inputs of `step`, whose regressions it shares),
# then a bounded coverage-guided run. Any crash or failed assertion fails CI.
set -euo pipefail
cd "$(dirname "$0")/../fuzz"
seconds=${MICROTRAIN_FUZZ_SECONDS:-25}

if ! cargo +nightly --version >/dev/null 2>&1; then
    rustup toolchain install nightly --profile minimal
fi
if ! cargo +nightly fuzz --version >/dev/null 2>&1; then
    cargo install cargo-fuzz --locked
fi

# The committed regressions must be what the generator writes (a changed layout would
# otherwise leave them encoding something else).
cargo +nightly run --quiet --example write_regressions
if ! git diff --quiet -- regressions || [ -n "$(git ls-files --others -- regressions)" ]; then
    echo "fuzz/regressions differs from what write_regressions writes:" >&2
    git status --short -- regressions >&2
    exit 1
fi

cargo +nightly fuzz build -O
for target in load step fit kernels kfold shuffle; do
    corpus="regressions/$target"
    if [ "$target" = fit ]; then
        corpus=regressions/step
    fi
    echo "fuzz $target: regressions"
    cargo +nightly fuzz run -O "$target" "$corpus" -- -runs=0
    echo "fuzz $target: ${seconds} s"
    # A scratch corpus first (libFuzzer adds what it finds to the first directory), seeded
    # from the regressions.
    scratch=$(mktemp -d)
    cargo +nightly fuzz run -O "$target" "$scratch" "$corpus" -- \
        -max_total_time="$seconds" -rss_limit_mb=4096
    rm -rf "$scratch"
done
