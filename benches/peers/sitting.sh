#!/usr/bin/env bash
# One sitting of the peer comparison in README's performance table: microtrain against dfdx
# 0.13 on the reference network at B = 1, 8, 32, 128 (native and default builds, $ROUNDS rounds,
# default 3, alternating), the same microtrain binaries with flush-to-zero set in MXCSR (`FTZ=1`, a
# diagnostic of what subnormals cost), the tutorial's 10 epochs, and Keras/JAX on the
# tutorial (keras_tutorial.py). Prints one JSON line per measurement.
#
#   MT_NATIVE=... MT_DEFAULT=... DFDX_NATIVE=... DFDX_DEFAULT=... bash benches/peers/sitting.sh
#
# The four binaries are the peer timing programs of this folder (`microtrain-mlp`, built against
# this checkout with its `std` feature by `microtrain-mlp/build.sh . native` and `. default`;
# `dfdx-mlp`, built with and without `RUSTFLAGS="-C target-cpu=native"`).
set -eu
cd "$(dirname "$0")/../.."
echo "# sitting $(date -u +%FT%TZ), load $(cut -d' ' -f1-3 /proc/loadavg), $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2)"
echo "# uptime: $(uptime)"
for round in $(seq "${ROUNDS:-3}"); do
    echo "# round $round"
    "$MT_NATIVE" steps | sed 's/^{/{"build":"native",/'
    RAYON_NUM_THREADS=1 "$DFDX_NATIVE" | sed 's/^{/{"build":"native",/'
    "$MT_DEFAULT" steps | sed 's/^{/{"build":"default",/'
    RAYON_NUM_THREADS=1 "$DFDX_DEFAULT" | sed 's/^{/{"build":"default",/'
done
FTZ=1 "$MT_NATIVE" steps 2>/dev/null | sed 's/^{/{"build":"native",/'
FTZ=1 "$MT_DEFAULT" steps 2>/dev/null | sed 's/^{/{"build":"default",/'
for round in $(seq "${ROUNDS:-3}"); do
    "$MT_NATIVE" tutorial | sed 's/^{/{"build":"native",/'
    "$MT_DEFAULT" tutorial | sed 's/^{/{"build":"default",/'
done
python3 benches/peers/keras_tutorial.py
echo "# end $(date -u +%FT%TZ), load $(cut -d' ' -f1-3 /proc/loadavg)"
echo "# uptime: $(uptime)"
