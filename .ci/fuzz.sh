#!/usr/bin/env bash
# A bounded, longer property-test run than `cargo test` does: more cases and two other
# fixed seeds, so the run is reproducible (a failure prints the seed to rerun with).
set -euo pipefail
cd "$(dirname "$0")/.."
for seed in 1 2; do
    echo "properties: 16384 cases per property, seed $seed"
    PROPTEST_CASES=16384 MICROTRAIN_PROPTEST_SEED=$seed timeout 600 \
        cargo test --release --test properties
done
